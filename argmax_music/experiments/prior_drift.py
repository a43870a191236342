"""How far a prior's generated codes drift from the codes it was trained on (issue 28; WORKSPACE.md, "A prior that
drifts less").

  python -m argmax_music.experiments.prior_drift --stacks=pretrained/piano[,ROOT,...] [--pieces=4] [--seeds=0,1]
      [--seconds=20] [--temperature=1.0] [--decode [--decoder_temperature=1.0,0] [--nosoft_codes]]

Each stack's prior generates --pieces pieces per seed (its top codes only: no level decodes them, so this takes
seconds), set beside the training codes of the prior (its data.dir): the entropy of the codes in consecutive 2-s
windows (pooled over pieces: does it fall as a piece goes on?), per piece the entropy, distinct codes and the share
of codes that repeat the one before, the KL divergence of the pieces' code frequencies from the training codes',
and the share of codes among the 8 most frequent in the training files' last second (a piece's final chord dying
away) against the training codes' own share; and by 5-s quarter, how surprised the prior is by its own pieces'
codes (their mean -log2 p under it, bits per code) beside its surprise at validation codes (their NLL): a prior
whose pieces turn more predictable to it than real music is has drifted into a state of its own. Prints JSON.

--decode also decodes them through the stack's levels (--decoder_temperature, --soft_codes) and, in each 5-s
quarter of the pieces, counts the notes the transcriber hears and measures how far their pitch classes (pooled over
the pieces) are from the training notes' (`metrics.figures`' pitch-class distance), beside the same figures for two
references of as many validation clips (the first --seconds of each file): their real top codes, and the prior's
one-step samples, each code drawn from the prior given the real codes before it. The gap between one-step samples
and the prior's own pieces is what it loses by continuing its own past rather than a real one (exposure bias).
Minutes per stack.
"""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from argmax_music import audio, cli, stack
from argmax_music.data import dataset
from argmax_music.metrics import figures, pitch_stats, transcription
from argmax_music.models import generate

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


def teacher_forced(prior: stack.Stage, codes: np.ndarray, keys: list[str] | None = None) -> np.ndarray:
  """The prior's distribution for each code of `codes` (pieces, codes) given the real codes before it (and, for a
  key-conditioned prior, each piece's key in `keys`): (pieces, codes, classes)."""
  model, params = prior.task.generator(prior.params)
  cond = prior.task.pieces_condition(keys, codes.shape[1]) if prior.task.keyed else None
  return np.asarray(stack.predicted_probabilities(model, params, np.asarray(codes, np.int32), cond))


def one_step_samples(probabilities: np.ndarray, seed: int, temperature: float = 1.0) -> np.ndarray:
  """A draw from each step's `teacher_forced` distribution: the codes with each replaced by the prior's sample
  given the real codes before it."""
  return np.asarray(generate.sample_logits(jax.random.key(seed), jnp.log(probabilities), temperature))


def surprise_bits(probabilities: np.ndarray, codes: np.ndarray, rate: float, window_s: float = 5.0) -> list[float]:
  """The prior's mean -log2 p of each code of `codes` (pieces, codes) under its `teacher_forced` distributions,
  in consecutive windows of `window_s` at `rate` codes per second (a shorter last one is left out)."""
  codes = np.asarray(codes, np.int32)
  bits = -np.log2(np.take_along_axis(probabilities, codes[..., None], -1)[..., 0])
  window = round(window_s * rate)
  return [round(float(bits[:, i : i + window].mean()), 3) for i in range(0, bits.shape[1] - window + 1, window)]


def window_figures(
  signals: list[np.ndarray], rate: int, pitch_classes: np.ndarray, window_s: float = 5.0
) -> dict[str, list[float]]:
  """Over all `signals` (float waveforms of equal length), in consecutive windows of `window_s` (a shorter last one
  is left out): detected notes per second, and the distance of the notes' pitch-class histogram from
  `pitch_classes` (`pitch_stats.histogram_distance`: 0 the same, 1 disjoint or no notes)."""
  notes = np.concatenate([transcription.transcribe(s, rate).notes for s in signals])
  edges = np.arange(0.0, len(signals[0]) / rate + 1e-9, window_s)
  window = np.digitize(notes[:, 0], edges) - 1  # Onsets past the last whole window get len(edges) - 1.
  counts = np.bincount(window, minlength=len(edges))[: len(edges) - 1]
  distance = lambda w: pitch_stats.histogram_distance(
    pitch_stats.pitch_class_histogram(notes[window == w]), pitch_classes
  )
  return {
    "notes_per_s_by_quarter": np.round(counts / (len(signals) * window_s), 3).tolist(),
    "pitch_class_distance_by_quarter": [round(distance(w), 3) for w in range(len(edges) - 1)],
  }


def decoded_figures(levels: list[stack.Stage], pieces: np.ndarray, pitch_classes: np.ndarray) -> dict:
  """`window_figures` of top codes (pieces, codes) decoded through `levels` with the --decode flags."""
  temperatures = [float(t) for t in FLAGS.decoder_temperature.split(",")]
  sampler = stack.Sampler(levels, None, temperatures, quiet=True, soft_codes=FLAGS.soft_codes)
  waveforms = sampler.decode(np.asarray(pieces, np.int32), len(levels))[-1]
  return window_figures([audio.mu_law_decode(w) for w in waveforms], sampler.sample_rate, pitch_classes)


@functools.cache
def training_pitch_classes(data_dir: str, seconds: float) -> np.ndarray:
  """The pitch-class histogram of a level-1 dataset's training notes (`figures.training_reference`), once per folder."""
  return figures.training_reference(data_dir, seconds=seconds).pitch_classes


@functools.cache
def prepared_codes(data_dir: str) -> tuple[float, list[np.ndarray], list[np.ndarray], list[str] | None]:
  """A prepared dataset's rate, training arrays, validation arrays and their keys (None where one has none), read
  once per folder."""
  data = dataset.PreparedDataset(data_dir)
  validation, scored = data.entries("validation"), data.file_keys("validation")
  keys = [scored[e["source"]] for e in validation] if len(scored) == len(validation) else None
  return data.rate, *([np.asarray(a) for a in data.arrays(split)] for split in ("train", "validation")), keys


def main(argv):
  del argv
  out, seeds = {}, [int(s) for s in FLAGS.seeds.split(",")]
  for root in FLAGS.stacks.split(","):
    levels, prior = stack.open_stack(root)
    rate, training, validation, validation_keys = prepared_codes(prior.config.data.dir)
    temperatures = [float(FLAGS.temperature)] * (len(levels) + 1)
    length = math.ceil(FLAGS.seconds * rate)
    samplers = [stack.Sampler(levels, prior, temperatures, seed=s, quiet=True) for s in seeds]
    pieces = np.concatenate([sampler.prior_codes(FLAGS.pieces, length) for sampler in samplers])
    keys = [key for sampler in samplers for key in sampler.keys]  # A key-conditioned prior's; else none.
    judge = functools.partial(code_figures, training=training, classes=prior.task.signal_classes, rate=rate)
    out[root] = {"prior": prior.describe()} | judge(pieces)
    long_enough = [i for i, a in enumerate(validation) if len(a) >= length][: len(pieces)]
    real = np.stack([validation[i][:length] for i in long_enough])
    real_keys = [validation_keys[i] for i in long_enough] if validation_keys else None
    on_real = teacher_forced(prior, real, real_keys)  # Once: for the surprise and for the one-step samples.
    out[root]["surprise_bits_by_quarter"] = surprise_bits(teacher_forced(prior, pieces, keys), pieces, rate)
    out[root]["validation_surprise_bits_by_quarter"] = surprise_bits(on_real, real, rate)
    # One reference per codes folder: stacks whose levels differ read different codes.
    name = f"validation codes of {prior.config.data.dir} ({len(real)} files, their first {FLAGS.seconds:g} s)"
    out.setdefault(name, judge(real))
    if FLAGS.decode:
      pitch_classes = training_pitch_classes(levels[0].config.data.dir, FLAGS.seconds)
      out[root] |= decoded_figures(levels, pieces, pitch_classes)
      one_step = one_step_samples(on_real, seeds[0], FLAGS.temperature)
      out[root]["one_step_samples"] = decoded_figures(levels, one_step, pitch_classes)
      if "notes_per_s_by_quarter" not in out[name]:
        out[name] |= decoded_figures(levels, real, pitch_classes)
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  flags.DEFINE_string("stacks", "pretrained/piano", "Stacks whose priors to sample (ROOT,ROOT).")
  flags.DEFINE_integer("pieces", 4, "Pieces per seed.")
  flags.DEFINE_string("seeds", "0,1", "Sampling seeds.")
  flags.DEFINE_float("seconds", 20.0, "Seconds per piece.")
  flags.DEFINE_float("temperature", 1.0, "The prior's sampling temperature.")
  flags.DEFINE_bool("decode", False, "Also decode the pieces: notes and pitch classes by quarter (minutes).")
  flags.DEFINE_string("decoder_temperature", "1.0,0", "With --decode: each level's temperature, top-down.")
  flags.DEFINE_bool("soft_codes", True, "With --decode: decode with soft codes (stack.Sampler).")
  cli.run(main, stack.StackError, dataset.DatasetError)
