"""How far a prior's generated codes drift from the codes it was trained on (issue 28; WORKSPACE.md, "A prior that
drifts less").

  python -m argmax_music.experiments.prior_drift --stacks=pretrained/piano[,ROOT,...] [--pieces=4] [--seeds=0,1]
      [--seconds=20] [--temperature=1.0]

Each stack's prior generates --pieces pieces per seed (its top codes only: no level decodes them, so this takes
seconds), set beside the training codes of the prior (its data.dir): the entropy of the codes in consecutive 2-s
windows (pooled over pieces: does it fall as a piece goes on?), per piece the entropy, distinct codes and the share
of codes that repeat the one before, the KL divergence of the pieces' code frequencies from the training codes',
and the share of codes among the 8 most frequent in the training files' last second (a piece's final chord dying
away) against the training codes' own share. Prints JSON.
"""

from __future__ import annotations

import functools
import json
import math

import numpy as np
from absl import flags

from argmax_music import cli, stack
from argmax_music.data import dataset

FLAGS = flags.FLAGS


def frequencies(codes: np.ndarray, classes: int, smoothing: float = 0.0) -> np.ndarray:
  """Each code's share of `codes`, with `smoothing` added to every count (so that a KL divergence is finite)."""
  counts = np.bincount(np.asarray(codes, np.int64).ravel(), minlength=classes) + smoothing
  return counts / counts.sum()


def entropy_bits(codes: np.ndarray, classes: int) -> float:
  """The entropy of the codes' frequencies, in bits."""
  p = frequencies(codes, classes)
  p = p[p > 0]
  return float(-(p * np.log2(p)).sum())


def code_figures(
  pieces: np.ndarray, training: list[np.ndarray], classes: int, rate: float, window_s: float = 2.0, endings: int = 8
) -> dict:
  """The drift figures (module docstring) of generated `pieces` (pieces, codes) against the `training` files'
  codes, at `rate` codes per second; `endings`: how many of the codes of the files' last second to count."""
  window = max(1, round(window_s * rate))
  real = frequencies(np.concatenate(training), classes, smoothing=1.0)
  generated = frequencies(pieces, classes, smoothing=1.0)
  last_second = np.concatenate([f[-round(rate) :] for f in training])
  ending_codes = np.argsort(frequencies(last_second, classes))[::-1][:endings]
  figures = {
    "window_entropy_bits": [
      entropy_bits(pieces[:, i : i + window], classes) for i in range(0, pieces.shape[1], window)
    ],
    "piece_entropy_bits": float(np.mean([entropy_bits(p, classes) for p in pieces])),
    "distinct_codes": float(np.mean([len(np.unique(p)) for p in pieces])),
    "repeats": float(np.mean(pieces[:, 1:] == pieces[:, :-1])),
    "kl_bits": float(np.sum(real * np.log2(real / generated))),
    "ending_codes_share": float(frequencies(pieces, classes)[ending_codes].sum()),
    "ending_codes_share_training": float(frequencies(np.concatenate(training), classes)[ending_codes].sum()),
  }
  return {k: np.round(v, 3).tolist() for k, v in figures.items()}


def main(argv):
  del argv
  out, seeds = {}, [int(s) for s in FLAGS.seeds.split(",")]
  for root in FLAGS.stacks.split(","):
    levels, prior = stack.open_stack(root)
    data = dataset.PreparedDataset(prior.config.data.dir)
    temperatures = [float(FLAGS.temperature)] * (len(levels) + 1)
    length = math.ceil(FLAGS.seconds * data.rate)
    pieces = np.concatenate(
      [stack.Sampler(levels, prior, temperatures, seed=s, quiet=True).prior_codes(FLAGS.pieces, length) for s in seeds]
    )
    training = [np.asarray(a) for a in data.arrays("train")]
    judge = functools.partial(code_figures, training=training, classes=prior.task.signal_classes, rate=data.rate)
    out[root] = {"prior": prior.describe()} | judge(pieces)
    real = [np.asarray(a[:length]) for a in data.arrays("validation") if len(a) >= length][: len(pieces)]
    out.setdefault(f"validation codes ({len(real)} files, their first {FLAGS.seconds:g} s)", judge(np.stack(real)))
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  flags.DEFINE_string("stacks", "pretrained/piano", "Stacks whose priors to sample (ROOT,ROOT).")
  flags.DEFINE_integer("pieces", 4, "Pieces per seed.")
  flags.DEFINE_string("seeds", "0,1", "Sampling seeds.")
  flags.DEFINE_float("seconds", 20.0, "Seconds per piece.")
  flags.DEFINE_float("temperature", 1.0, "The prior's sampling temperature.")
  cli.run(main, stack.StackError, dataset.DatasetError)
