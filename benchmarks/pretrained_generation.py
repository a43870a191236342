"""Wall time to generate one piece from a shipped model at batch 1, split by stage (the prior, then each level).

  python benchmarks/pretrained_generation.py [--pretrained=piano] [--seconds=20] [--repeats=2]

Prints JSON: per stage the median seconds of --repeats timed runs (after one untimed run that compiles), their
sum, the real-time factor (seconds of audio per second of compute; >= 1 is faster than real time) and the machine.
On a CPU the decoders run in the native C++ sampler (ARGMAX_MUSIC_NATIVE=0: the JAX step); an autoguided prior (two
networks a step) runs on the JAX step.
"""

from __future__ import annotations

import json
import math
import statistics

from absl import flags

flags.DEFINE_string("pretrained", "piano", "A shipped model's name or folder.")
flags.DEFINE_float("seconds", 20.0, "Seconds of audio per piece.")
flags.DEFINE_integer("repeats", 2, "Timed runs (the median is reported).")
FLAGS = flags.FLAGS


def timed_run(sampler, seconds: float) -> dict[str, float]:
  """Seconds per stage of one generation: the prior's codes, then each level's decoder top-down."""
  top = sampler.prior_codes(1, math.ceil(seconds * sampler.sample_rate / sampler.top_hop()))
  sampler.decode(top, len(sampler.levels))
  return dict(sampler.seconds)


def main(argv):
  del argv
  from argmax_music import pretrained, sharding, stack

  root = pretrained.locate(FLAGS.pretrained)
  levels, prior = stack.open_stack(root)
  sampler = pretrained.card_sampler(root, levels, prior, quiet=True)
  timed_run(sampler, FLAGS.seconds)  # Compiles every stage at the timed runs' shapes.
  runs = [timed_run(sampler, FLAGS.seconds) for _ in range(FLAGS.repeats)]
  stages = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
  total = sum(stages.values())
  print(
    json.dumps(
      {
        "pretrained": str(root),
        "seconds_of_audio": FLAGS.seconds,
        "batch": 1,
        "soft_codes": sampler.soft_codes,
        "guidance": sampler.guidance,
        "autoguidance": sampler.autoguidance,
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
        "total_seconds": round(total, 2),
        "real_time_factor": round(FLAGS.seconds / total, 2),
        "machine": sharding.machine(),
      },
      indent=1,
    )
  )


if __name__ == "__main__":
  from argmax_music import cli

  cli.run(main)
