"""Input pipeline throughput: training crops per second from a prepared dataset, as JSON.

python benchmarks/input_pipeline.py --data=data/piano_prepared [--crop=16000 --batch=8 --batches=200]
    [--threads=1,2] [--plot=input_pipeline.png]
"""

import json
import time

from absl import flags

from argmax_music import cli, plots
from argmax_music.data import dataset, pipeline

flags.DEFINE_string("data", "data/piano_prepared", "Prepared dataset.")
flags.DEFINE_integer("crop", 16000, "Timesteps per crop.")
flags.DEFINE_integer("batch", 8, "Crops per batch.")
flags.DEFINE_integer("batches", 200, "Batches timed.")
flags.DEFINE_list("threads", ["2"], "Reader thread counts to sweep, e.g. 1,2,4.")
flags.DEFINE_string("plot", None, "Write a PNG of throughput vs threads.")
FLAGS = flags.FLAGS


def measure(data: dataset.PreparedDataset, crop: int, batch: int, batches: int, threads: int) -> dict:
  it = pipeline.train_iterator(data, crop, batch, seed=0, threads=threads)
  next(it)  # Start the prefetch threads.
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  seconds = time.perf_counter() - start
  examples = batches * batch
  return {
    "crop": crop,
    "batch": batch,
    "threads": threads,
    "examples_per_s": examples / seconds,
    "timesteps_per_s": examples * crop / seconds,
    "audio_seconds_per_s": examples * crop / data.rate / seconds,
  }


def main(argv):
  del argv
  data = dataset.PreparedDataset(FLAGS.data)
  results = [measure(data, FLAGS.crop, FLAGS.batch, FLAGS.batches, int(t)) for t in FLAGS.threads]
  if FLAGS.plot:
    plots.save_panels(
      FLAGS.plot,
      [
        plots.Panel(
          f"input pipeline ({FLAGS.crop}-timestep crops)",
          "reader threads",
          "timesteps/s",
          {FLAGS.data: ([r["threads"] for r in results], [r["timesteps_per_s"] for r in results])},
        )
      ],
    )
  print(json.dumps({"benchmark": "input_pipeline", "data": FLAGS.data, "results": results}))


if __name__ == "__main__":
  cli.run(main)
