"""Soak: train for many steps while checkpointing often; memory (RSS) must not grow with steps.

  python benchmarks/soak.py --data=data/piano_prepared [--config=cpu_demo --steps=300 --save_every=5]
      [--plot=soak.png]

Prints JSON: RSS after the first 10% of the steps and at the end, its growth, and the peak.
"""

import argparse
import importlib
import json
import resource
import tempfile
import threading
import time

from argmax_music import plots, train


def rss_mb() -> float:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--config", default="cpu_demo")
  parser.add_argument("--data", default="data/piano_prepared")
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--save_every", type=int, default=5)
  parser.add_argument("--plot", default=None, help="write a PNG of RSS over the run")
  args = parser.parse_args()
  config = importlib.import_module(f"configs.{args.config}").get_config()
  config.data.dir = args.data
  config.train.update(steps=args.steps, checkpoint_every=args.save_every, log_every=args.steps // 10,
                      eval_every=args.steps // 3)
  samples, done = [], threading.Event()

  def watch():
    while not done.wait(1.0):
      samples.append((time.monotonic(), rss_mb()))

  threading.Thread(target=watch, daemon=True).start()
  start = time.monotonic()
  with tempfile.TemporaryDirectory() as workdir:
    train.train(config, workdir)
  done.set()
  elapsed = time.monotonic() - start
  if args.plot:
    plots.save_panels(args.plot, [plots.Panel(
        f"host memory while training {args.steps} steps, checkpointing every {args.save_every}", "seconds",
        "RSS (MiB)", {args.config: ([t - start for t, _ in samples], [r for _, r in samples])})])
  early = [r for t, r in samples if t - start > 0.1 * elapsed] or [samples[0][1]]
  print(json.dumps({"benchmark": "soak", "config": args.config, "steps": args.steps, "save_every": args.save_every,
                    "seconds": elapsed, "rss_mb_at_10pct": early[0], "rss_mb_end": samples[-1][1],
                    "rss_growth_mb": samples[-1][1] - early[0],
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
  main()
