"""Soak: train for many steps while checkpointing often; memory (RSS) must not grow with steps.

  python benchmarks/soak.py --data=data/piano_prepared [--config=configs/cpu_demo.py --steps=300 --save_every=5]
      [--plot=soak.png]

Prints JSON: RSS after the first 10% of the steps and at the end, its growth, and the peak.
"""

import json
import resource
import tempfile
import threading
import time

from absl import flags

from argmax_music import cli, plots, train
from argmax_music import config as config_lib

flags.DEFINE_string("config", "configs/cpu_demo.py", "Config file[:variant].")
flags.DEFINE_string("data", "data/piano_prepared", "Prepared dataset.")
flags.DEFINE_integer("steps", 300, "Training steps.")
flags.DEFINE_integer("save_every", 5, "Checkpoint every this many steps.")
flags.DEFINE_string("plot", None, "Write a PNG of RSS over the run.")
FLAGS = flags.FLAGS


def rss_mb() -> float:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main(argv):
  del argv
  config = config_lib.load(
    FLAGS.config,
    [
      f"data.dir={FLAGS.data}",
      f"train.steps={FLAGS.steps}",
      f"train.checkpoint_every={FLAGS.save_every}",
      f"train.log_every={max(1, FLAGS.steps // 10)}",
      f"train.eval_every={max(1, FLAGS.steps // 3)}",
    ],
  )
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
  if FLAGS.plot:
    plots.save_panels(
      FLAGS.plot,
      [
        plots.Panel(
          f"host memory while training {FLAGS.steps} steps, checkpointing every {FLAGS.save_every}",
          "seconds",
          "RSS (MiB)",
          {FLAGS.config: ([t - start for t, _ in samples], [r for _, r in samples])},
        )
      ],
    )
  early = [r for t, r in samples if t - start > 0.1 * elapsed] or [samples[0][1]]
  print(
    json.dumps(
      {
        "benchmark": "soak",
        "config": FLAGS.config,
        "steps": FLAGS.steps,
        "save_every": FLAGS.save_every,
        "seconds": elapsed,
        "rss_mb_at_10pct": early[0],
        "rss_mb_end": samples[-1][1],
        "rss_growth_mb": samples[-1][1] - early[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      }
    )
  )


if __name__ == "__main__":
  cli.run(main)
