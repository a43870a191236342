"""Input pipeline throughput: training crops per second from a prepared dataset, as JSON.

  python benchmarks/input_pipeline.py --data=data/piano_prepared [--crop=16000 --batch=8 --batches=200]
"""

import argparse
import json
import time

from argmax_music.data import dataset, pipeline


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--data", default="data/piano_prepared")
  parser.add_argument("--crop", type=int, default=16000)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--batches", type=int, default=200)
  parser.add_argument("--threads", type=int, default=2)
  args = parser.parse_args()
  data = dataset.PreparedDataset(args.data)
  it = pipeline.train_iterator(data, args.crop, args.batch, seed=0, threads=args.threads)
  next(it)  # Start the prefetch threads.
  start = time.perf_counter()
  for _ in range(args.batches):
    next(it)
  seconds = time.perf_counter() - start
  examples = args.batches * args.batch
  print(json.dumps({"benchmark": "input_pipeline", "crop": args.crop, "batch": args.batch,
                    "threads": args.threads, "examples_per_s": examples / seconds,
                    "timesteps_per_s": examples * args.crop / seconds,
                    "audio_seconds_per_s": examples * args.crop / data.rate / seconds}))


if __name__ == "__main__":
  main()
