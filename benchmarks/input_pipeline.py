"""Input pipeline throughput: training crops per second from a prepared dataset, as JSON.

  python benchmarks/input_pipeline.py --data=data/piano_prepared [--crop=16000 --batch=8 --batches=200]
      [--threads=1,2] [--plot=input_pipeline.png]
"""

import argparse
import json
import time

from argmax_music import plots
from argmax_music.data import dataset, pipeline


def measure(data: dataset.PreparedDataset, crop: int, batch: int, batches: int, threads: int) -> dict:
  it = pipeline.train_iterator(data, crop, batch, seed=0, threads=threads)
  next(it)  # Start the prefetch threads.
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  seconds = time.perf_counter() - start
  examples = batches * batch
  return {"crop": crop, "batch": batch, "threads": threads, "examples_per_s": examples / seconds,
          "timesteps_per_s": examples * crop / seconds, "audio_seconds_per_s": examples * crop / data.rate / seconds}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data", default="data/piano_prepared")
  parser.add_argument("--crop", type=int, default=16000)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--batches", type=int, default=200)
  parser.add_argument("--threads", default="2", help="reader thread counts to sweep, e.g. 1,2,4")
  parser.add_argument("--plot", default=None, help="write a PNG of throughput vs threads")
  args = parser.parse_args()
  data = dataset.PreparedDataset(args.data)
  results = [measure(data, args.crop, args.batch, args.batches, int(t)) for t in args.threads.split(",")]
  if args.plot:
    plots.save_panels(args.plot, [plots.Panel(
        f"input pipeline ({args.crop}-timestep crops)", "reader threads", "timesteps/s",
        {args.data: ([r["threads"] for r in results], [r["timesteps_per_s"] for r in results])})])
  print(json.dumps({"benchmark": "input_pipeline", "data": args.data, "results": results}))


if __name__ == "__main__":
  main()
