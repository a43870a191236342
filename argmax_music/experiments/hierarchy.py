"""RESULTS.md table (f), the paper's comparison: a two-level stack against a one-level stack trained with the same
budget, judged on pieces they generate (notes, flatness, pitch classes, long-range structure); and the model card.

  python -m argmax_music.experiments.hierarchy --two_level=pretrained/piano --one_level=runs/piano/one_level \
      [--pieces=4] [--seeds=0,1] [--seconds=20] [--temperature=1.0,1.0,0] [--out=results/hierarchy.json] \
      [--card=pretrained/piano/README.md] [--one_level_from=results/hierarchy.json] [--other_priors=ROOT,ROOT]
      [--other_priors_from=results/hierarchy.json] [--one_level_other_priors=ROOT,ROOT] [--soft_codes]
      [--guidance=1.0] [--autoguidance=0] [--results=RESULTS.md]

Each stack reconstructs validation clips through each of its levels (decoders at temperature 0, onset note F1 vs the
score) and generates --pieces pieces per seed in --seeds; the figures of every piece (`metrics.figures`) are set
beside the same figures of 20-s training clips. Writes OUT (JSON), table (f) into --results (the project's
RESULTS.md by default; in place of an older table (f); `report.write_report` keeps it) and, with --card, the shipped
model's card. --one_level_from takes the one-level stack's figures (and, with --card, its example piece) from an
earlier OUT instead of running it: for a new level 2 or prior when the one-level prior's weights are gone; the
earlier run must have used the same level 1, seeds, pieces and seconds, and the table says where its row comes from.
--other_priors takes stacks that are --two_level with another prior, trained as its prior was but for the seed and
the input noise (level1/ and level2/ linked to --two_level's): their pieces are generated too (with soft codes under
--soft_codes), one row each, and the findings give the spread over the priors of each input noise and, with two
noises, their difference; --other_priors_from takes those rows from an earlier OUT whose levels reconstructed as
these do (their priors' weights gone). --one_level_other_priors does the same for the one-level stack (stacks of
--one_level's level 1 and a prior trained as its prior was, but for the seed); with other priors on both sides, the
findings also compare the stacks over their priors. Beside the two-level stack, what a perfect prior would reach:
real level-2 codes of validation clips, decoded as the pieces are. --soft_codes decodes the two-level stack's
pieces (and real codes) a second time with soft codes (`stack.Sampler`), each its own row; the model card describes
that decoding. A key-conditioned prior samples each piece in a key drawn from its training data, guided towards it
by --guidance; the pieces' `key_agreement` says how many are in their key (the real codes': in their score's).
--autoguidance > 0 also guides each stack's prior away from the weaker prior in its ROOT/guide (`stack.Sampler`).
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import numpy as np
from absl import flags

from argmax_music import audio, checkpoints, cli, config, evaluate, files, metrics, sharding, stack
from argmax_music.data import clips as clips_lib
from argmax_music.data import dataset
from argmax_music.experiments import hierarchy_table
from argmax_music.experiments.hierarchy_table import per_piece
from argmax_music.metrics import figures

FLAGS = flags.FLAGS
RESULTS = Path(__file__).resolve().parents[2] / "RESULTS.md"
NOISE = "prior.input_noise"  # The one prior key (beside the seed) that another prior of table (f) may change.


def stack_figures(
  root: Path,
  pieces: int,
  seeds: list[int],
  seconds: float,
  temperatures,
  reference,
  reconstruct: bool = True,
  soft_codes: bool = False,
  guidance: float = 1.0,
  autoguidance: float = 0.0,
):
  """One stack's reconstruction F1 through each level count (unless not `reconstruct`) and the figures of its
  generated pieces (`soft_codes`, `guidance` and `autoguidance` as `stack.Sampler` takes them, the last away from
  ROOT/guide); returns the figures and the pieces."""
  levels, prior = stack.open_stack(root)
  guide = stack.Stage.load(root / "guide") if autoguidance else None
  temperatures = [temperatures[0], *temperatures[len(temperatures) - len(levels) :]]
  samplers = [
    stack.Sampler(
      levels,
      prior,
      temperatures,
      seed=seed,
      quiet=True,
      soft_codes=soft_codes,
      guidance=guidance,
      guide_prior=guide,
      autoguidance=autoguidance,
    )
    for seed in seeds
  ]
  rate = samplers[0].sample_rate
  result = {"root": str(root), "levels": [s.describe() for s in levels], "prior": prior.describe()}
  result["prior_receptive_field_s"] = prior.task.model.receptive_field * math.prod(s.hop for s in levels) / rate
  result["prior_input_noise"] = prior.config.prior.input_noise
  result["prior_seed"], result["prior_steps"] = prior.config.seed, prior.step
  for used in range(1, len(levels) + 1 if reconstruct else 1):
    recon = evaluate.evaluate_stack(levels, None, 4, 4.0, generate=0, levels_used=used, soft_codes=soft_codes)
    result[f"reconstruction_{used}_levels"] = recon["reconstruction"]["summary"]
  signals, asked, start = [], [], time.monotonic()
  for sampler in samplers:
    signals += evaluate.generated(sampler, pieces, seconds)
    asked += sampler.keys
  result["generate_seconds"] = time.monotonic() - start
  result["temperatures"], result["soft_codes"] = temperatures, soft_codes
  if prior.task.keyed:
    result["guidance"] = guidance
  if guide:
    result["autoguidance"], result["guide_steps"] = autoguidance, guide.step
  return result | judged_pieces(signals, rate, reference, asked or None), signals


def judged_pieces(signals: list[np.ndarray], rate: int, reference, asked_keys: list[str] | None = None) -> dict:
  """The figures of float pieces beside the training clips' (with the keys they were asked for, those of a
  key-conditioned prior's), and the median of their structure figure."""
  result = {"generated": figures.generated_figures(signals, rate, reference, asked_keys)}
  structure = per_piece(result, "structure")
  return result | {"structure_median": float(np.median(structure)) if structure else math.nan}


Clips = tuple[list[clips_lib.Clip], list[str] | None]  # Real clips and their scores' keys (`validation_clips`).


def real_codes_figures(levels: list[stack.Stage], clips: Clips, temperatures, reference, soft_codes: bool) -> dict:
  """What a perfect prior would reach: the top codes of real clips (`validation_clips`), decoded through every level
  as generated pieces are, and judged as they are."""
  picked, keys = clips
  decoders = temperatures[len(temperatures) - len(levels) :]
  sampler = stack.Sampler(levels, None, decoders, quiet=True, soft_codes=soft_codes)
  _, decoded = sampler.reconstruct(np.stack([c.waveform for c in picked]))
  return judged_pieces([audio.mu_law_decode(w) for w in decoded], sampler.sample_rate, reference, keys)


def real_clips_figures(levels: list[stack.Stage], clips: Clips, reference) -> dict:
  """The clips `real_codes_figures` decodes, judged as their own audio: what the decoders lose of them."""
  picked, keys = clips
  rate = dataset.PreparedDataset(levels[0].config.data.dir).rate
  return judged_pieces([audio.mu_law_decode(c.waveform) for c in picked], rate, reference, keys)


def validation_clips(levels: list[stack.Stage], count: int, seconds: float) -> Clips:
  """`count` validation clips of `seconds` (whole codes of the top level) and the keys of their scores (None unless
  every clip's score has one)."""
  data_dir = levels[0].config.data.dir
  picked = evaluate.validation_clips(data_dir, count, seconds, math.prod(s.hop for s in levels))
  scored = dataset.PreparedDataset(data_dir).file_keys("validation")
  return picked, [scored[c.source] for c in picked] if all(c.source in scored for c in picked) else None


def write_examples(folder: Path, pieces: dict[str, np.ndarray], data_dir: str, seconds: float) -> None:
  """FLACs of the first piece of each stack and of a real validation clip, and their spectrograms in one PNG."""
  data = dataset.PreparedDataset(data_dir)
  real = clips_lib.pick_clips(data, "validation", 1, int(seconds * data.rate))[0]
  pieces = pieces | {f"real: {Path(real.source).stem} at {real.start_s:.0f} s": audio.mu_law_decode(real.waveform)}
  for name, x in zip(("two_levels", "one_level", "real"), pieces.values(), strict=True):
    audio.save_audio(folder / f"example_{name}.flac", x, int(data.rate))
  audio.save_spectrogram_png(folder / "examples.png", pieces, int(data.rate))


def main(argv):
  del argv
  metrics.require()
  from argmax_music import pretrained

  temperatures = [float(t) for t in FLAGS.temperature.split(",")]
  seeds = [int(s) for s in FLAGS.seeds.split(",")]
  two_root, one_root = Path(FLAGS.two_level), Path(FLAGS.one_level)
  levels, _ = stack.open_stack(two_root, with_prior=False)
  reference = figures.training_reference(levels[0].config.data.dir, seconds=FLAGS.seconds)
  figures_of = functools.partial(  # A stack's figures, judged as every stack here is.
    stack_figures,
    pieces=FLAGS.pieces,
    seeds=seeds,
    seconds=FLAGS.seconds,
    temperatures=temperatures,
    reference=reference,
    guidance=FLAGS.guidance,
    autoguidance=FLAGS.autoguidance,
  )
  h = {
    "command": "python -m argmax_music.experiments.hierarchy " + " ".join(f"--{k}={v}" for k, v in flag_values()),
    "date": time.strftime("%Y-%m-%d"),
    "machine": sharding.machine(),
    "seconds": FLAGS.seconds,
    "seeds": seeds,
    "pieces_per_stack": FLAGS.pieces * len(seeds),
  }
  budget = training_budget(two_root)
  roots = lambda flag: [Path(root) for root in flag.split(",")] if flag else []
  others, one_others = roots(FLAGS.other_priors), roots(FLAGS.one_level_other_priors)
  for flag, roots_of, reference_root in (
    ("--other_priors", others, two_root),
    ("--one_level_other_priors", one_others, one_root),
  ):
    for root in roots_of:
      check_other_prior(root, reference_root, flag)
  if FLAGS.other_priors and FLAGS.other_priors_from:
    raise stack.StackError("give --other_priors (to rerun them) or --other_priors_from (to reuse them), not both")
  if FLAGS.one_level_other_priors and FLAGS.one_level_from:
    raise stack.StackError("give --one_level_other_priors or --one_level_from (its priors come with it), not both")
  earlier = earlier_run(Path(FLAGS.one_level_from), h, "--one_level_from") if FLAGS.one_level_from else None
  examples = {}
  for name, root in (("two_level", two_root), ("one_level", one_root)):
    label = f"{name.replace('_', ' ')} stack, seed {seeds[0]}"
    if name == "one_level" and earlier:
      if not same_levels(earlier, h["two_level"], (1,)):
        raise stack.StackError(f"--one_level_from={FLAGS.one_level_from}: level 1 reconstructs differently there")
      source = f"from {FLAGS.one_level_from} ({earlier['command']}, {earlier['date']}), not rerun"
      h[name] = {"from": source} | earlier[name]  # A row reused before keeps the run that made it.
      if FLAGS.card:
        examples[label] = audio.load_audio(Path(FLAGS.card).parent / "example_one_level.flac")
      continue
    h[name], pieces = figures_of(root)
    h[name] |= budget[name]
    examples[label] = pieces[0]
    if name == "two_level":
      clips = validation_clips(levels, FLAGS.pieces * len(seeds), FLAGS.seconds)  # Once: the same clips each time.
      real_codes = functools.partial(real_codes_figures, levels, clips, temperatures)
      h[name]["real_codes"] = real_codes(reference, soft_codes=False)
      h["real_clips"] = real_clips_figures(levels, clips, reference)
      if FLAGS.soft_codes:  # The same prior codes, decoded again with soft codes.
        h["two_level_soft"], pieces = figures_of(root, soft_codes=True)
        h["two_level_soft"] |= budget[name] | {"real_codes": real_codes(reference, soft_codes=True)}
        del examples[label]  # The card's example is its decoding's.
        examples[label + hierarchy_table.SOFT] = pieces[0]
  for root in others:  # Decoded as the shipped stack's pieces are, with soft codes under --soft_codes.
    other, _ = figures_of(root, reconstruct=False, soft_codes=FLAGS.soft_codes)
    h["two_level"].setdefault("other_priors", []).append(other)
  for root in one_others:
    other, _ = figures_of(root, reconstruct=False)
    h["one_level"].setdefault("other_priors", []).append(other)
  if FLAGS.other_priors_from:
    path = Path(FLAGS.other_priors_from)
    earlier = earlier_run(path, h, "--other_priors_from")
    if not same_levels(earlier, h["two_level"], (1, 2)):
      raise stack.StackError(f"--other_priors_from={path}: the levels reconstruct differently there")
    h["two_level"]["other_priors"] = earlier["two_level"]["other_priors"]
    h["two_level"]["other_priors_from"] = f"from {path} ({earlier['command']}, {earlier['date']}), not rerun"
  files.atomic_write_json(FLAGS.out, h)
  lines = hierarchy_table.table_f(h)
  hierarchy_table.splice(Path(FLAGS.results), lines)
  if FLAGS.card:
    write_examples(Path(FLAGS.card).parent, examples, levels[0].config.data.dir, FLAGS.seconds)
    pretrained.write_card(Path(FLAGS.card), h)
  print("\n".join(lines))


def earlier_run(path: Path, h: dict, flag: str) -> dict:
  """An earlier OUT (given as `flag`), after checking that it generated as many pieces of the same length with the
  same seeds."""
  earlier = json.loads(path.read_text())
  differ = [k for k in ("seconds", "seeds", "pieces_per_stack") if earlier[k] != h[k]]
  if differ:
    raise stack.StackError(f"{flag}={path}: another {', '.join(differ)} than this run's")
  return earlier


def same_levels(earlier: dict, two_level: dict, levels: tuple[int, ...]) -> bool:
  """Whether the two-level stack reconstructs through each number of `levels` as it did in the earlier run (the
  onset F1, to 2 places)."""
  f1 = lambda r, n: round(r[f"reconstruction_{n}_levels"]["onset_f1"], 2)
  return all(f1(earlier["two_level"], n) == f1(two_level, n) for n in levels)


def check_other_prior(root: Path, stack_root: Path, flag: str = "--other_priors") -> None:
  """ROOT (given as `flag`) must hold STACK_ROOT's levels (linked) and a prior trained as its prior was, as far, but
  for the seed and the input noise."""
  (levels, prior), (stack_levels, stack_prior) = stack.find_stack(root), stack.find_stack(stack_root)
  if prior is None or [p.resolve() for p in levels] != [p.resolve() for p in stack_levels]:
    names = ", ".join(f"{p.name}/" for p in stack_levels)
    raise stack.StackError(f"{flag}={root}: needs {stack_root}'s levels there ({names} as links to them) and a prior/")
  trained = lambda workdir: config.run_config(checkpoints.read_run(workdir)["config"]).to_dict()
  differ = [k for k in config.differing_keys(trained(prior), trained(stack_prior), ("prior", "train")) if k != NOISE]
  if differ:
    raise stack.StackError(f"{flag}={root}: its prior differs from {stack_prior}'s in {', '.join(differ)}")
  steps, stack_steps = (stack.Stage.load(workdir).step for workdir in (prior, stack_prior))
  if steps != stack_steps:
    raise stack.StackError(f"{flag}={root}: its prior is at step {steps}, {stack_prior}'s at {stack_steps}")


def flag_values():
  names = ("two_level", "one_level", "pieces", "seeds", "seconds", "temperature", "one_level_from", "other_priors")
  names += ("other_priors_from", "one_level_other_priors", "soft_codes", "guidance", "autoguidance")
  return [(k, FLAGS[k].value) for k in names if FLAGS[k].value is not None]


def training_budget(two_root: Path) -> dict[str, dict]:
  """Wall minutes and training steps of the stages each stack does not share with the other (training.json of the
  shipped model)."""
  record = json.loads((two_root / "training.json").read_text())["stages"]
  budget = lambda *names: {
    "training_minutes": sum(record[n]["seconds"] for n in names) / 60,
    "training_steps": sum(record[n].get("steps", 0) for n in names),
  }
  upsampler = ["upsampler2"] if "upsampler2" in record else []  # Level 2's second decoder, where it has one.
  guides = [["guide"], ["guide1"]] if "guide" in record else [[], []]  # The weaker priors of autoguidance.
  return {
    "two_level": budget("level2", "encode2", *upsampler, "prior", *guides[0]),
    "one_level": budget("prior1", *guides[1]),
  }


if __name__ == "__main__":
  flags.DEFINE_string("two_level", "pretrained/piano", "The two-level stack (level1/, level2/, prior/).")
  flags.DEFINE_string("one_level", "runs/piano/one_level", "The one-level stack (level1/, prior/).")
  flags.DEFINE_integer("pieces", 4, "Pieces generated per seed and stack.")
  flags.DEFINE_string("seeds", "0,1", "Sampling seeds.")
  flags.DEFINE_float("seconds", 20.0, "Seconds per generated piece.")
  flags.DEFINE_string(
    "temperature",
    "1.0,1.0,0",
    "The prior's, then each level's top-down (the one-level stack takes the prior's and the last one).",
  )
  flags.DEFINE_string("out", "results/hierarchy.json", "The figures, as JSON.")
  flags.DEFINE_string("results", str(RESULTS), "The RESULTS.md whose table (f) to replace (or to add it to).")
  flags.DEFINE_string("one_level_from", None, "An earlier OUT whose one-level figures to reuse (not rerun).")
  flags.DEFINE_string(
    "other_priors", None, "Stacks of --two_level's levels with priors from other seeds or input noises (ROOT,ROOT)."
  )
  flags.DEFINE_string(
    "other_priors_from", None, "An earlier OUT whose other priors' rows to reuse (not rerun; the same levels)."
  )
  flags.DEFINE_string(
    "one_level_other_priors", None, "Stacks of --one_level's level 1 with priors from other seeds (ROOT,ROOT)."
  )
  flags.DEFINE_bool("soft_codes", False, "Also decode the two-level stack with soft codes (stack.Sampler).")
  flags.DEFINE_float("guidance", 1.0, "How far key-conditioned priors are guided towards each piece's key.")
  flags.DEFINE_float(
    "autoguidance", 0.0, "How far each stack's prior is guided away from the weaker prior in its ROOT/guide (0: none)."
  )
  flags.DEFINE_string("card", None, "Also write the shipped model's card here (pretrained/piano/README.md).")
  cli.run(main, metrics.MissingDependencies, stack.StackError)
