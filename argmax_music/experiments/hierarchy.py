"""RESULTS.md table (f), the paper's comparison: a two-level stack against a one-level stack trained with the same
budget, judged on pieces they generate (notes, flatness, pitch classes, long-range structure); and the model card.

  python -m argmax_music.experiments.hierarchy --two_level=pretrained/piano --one_level=runs/piano/one_level \
      [--pieces=4] [--seeds=0,1] [--seconds=20] [--temperature=1.0,1.0,0] [--out=results/hierarchy.json] \
      [--card=pretrained/piano/README.md] [--one_level_from=results/hierarchy.json] [--other_priors=ROOT,ROOT]

Each stack reconstructs validation clips through each of its levels (decoders at temperature 0, onset note F1 vs
the score) and generates --pieces pieces per seed in --seeds; the figures of every piece (`metrics.figures`) are set
beside the same figures of 20-s training clips. Writes OUT (JSON), table (f) into RESULTS.md (replacing an older
table (f); `report.write_report` keeps it) and, with --card, the shipped model's card. --one_level_from takes the
one-level stack's figures (and, with --card, its example piece) from an earlier OUT instead of running it: for a
new level 2 or prior when the one-level prior's weights are gone; the earlier run must have used the same level 1,
seeds, pieces and seconds, and the table says where its row comes from. --other_priors takes stacks that are
--two_level with another prior, trained as its prior was but for the seed and the input noise (level1/ and level2/
linked to --two_level's): their pieces are generated too, one row each, and the findings give the spread over the
priors of each input noise and, with two noises, their difference.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from absl import flags

from argmax_music import audio, checkpoints, cli, config, evaluate, files, metrics, sharding, stack
from argmax_music.data import clips as clips_lib
from argmax_music.data import dataset
from argmax_music.experiments import stats
from argmax_music.metrics import figures

FLAGS = flags.FLAGS
SECTION = "## (f) Two levels against one: structure across 20-second pieces"
RESULTS = Path(__file__).resolve().parents[2] / "RESULTS.md"
NOISE = "prior.input_noise"  # The one prior key (beside the seed) that another prior of table (f) may change.


def stack_figures(
  root: Path, pieces: int, seeds: list[int], seconds: float, temperatures, reference, reconstruct: bool = True
):
  """One stack's reconstruction F1 through each level count (unless not `reconstruct`) and the figures of its
  generated pieces; returns the figures and the pieces."""
  levels, prior = stack.open_stack(root)
  temperatures = [temperatures[0], *temperatures[len(temperatures) - len(levels) :]]
  samplers = [stack.Sampler(levels, prior, temperatures, seed=seed, quiet=True) for seed in seeds]
  rate = samplers[0].sample_rate
  result = {"root": str(root), "levels": [s.describe() for s in levels], "prior": prior.describe()}
  result["prior_receptive_field_s"] = prior.task.model.receptive_field * math.prod(s.hop for s in levels) / rate
  result["prior_input_noise"] = prior.config.prior.input_noise
  result["prior_seed"] = prior.config.seed
  for used in range(1, len(levels) + 1 if reconstruct else 1):
    recon = evaluate.evaluate_stack(levels, None, clips=4, seconds=4.0, generate=0, levels_used=used)
    result[f"reconstruction_{used}_levels"] = recon["reconstruction"]["summary"]
  signals, start = [], time.monotonic()
  for sampler in samplers:
    signals += evaluate.generated(sampler, pieces, seconds)
  result["generate_seconds"] = time.monotonic() - start
  result["temperatures"] = temperatures
  result["generated"] = figures.generated_figures(signals, rate, reference)
  structure = per_piece(result, "structure")
  result["structure_median"] = float(np.median(structure)) if structure else math.nan
  return result, signals


def write_examples(folder: Path, pieces: dict[str, np.ndarray], data_dir: str, seconds: float) -> None:
  """FLACs of the first piece of each stack and of a real validation clip, and their spectrograms in one PNG."""
  data = dataset.PreparedDataset(data_dir)
  real = clips_lib.pick_clips(data, "validation", 1, int(seconds * data.rate))[0]
  pieces = pieces | {f"real: {Path(real.source).stem} at {real.start_s:.0f} s": audio.mu_law_decode(real.waveform)}
  for name, x in zip(("two_levels", "one_level", "real"), pieces.values(), strict=True):
    audio.save_audio(folder / f"example_{name}.flac", x, int(data.rate))
  audio.save_spectrogram_png(folder / "examples.png", pieces, int(data.rate))


def floors(result: dict) -> dict[str, bool]:
  """The floors a stack's generated pieces are held to, each met or not."""
  s, structure = result["generated"]["summary"], result["structure_median"]
  return {
    "notes/s >= 50% of the training audio's": s["notes_per_s"] >= 0.5 * s["training_notes_per_s"],
    "flatness within 4 dB of the training audio's": abs(s["flatness_db"] - s["training_flatness_db"]) <= 4,
    "pitch-class distance <= 1.5 x two halves of the corpus": s["pitch_class_distance"]
    <= 1.5 * s["training_pitch_class_halves_distance"],
    "structure >= 0.8 x real clips' and above different pieces'": structure >= 0.8 * s["training_structure_same_piece"]
    and structure > s["training_structure_different_pieces"],
  }


def per_piece(result: dict, key: str) -> list[float]:
  return [r[key] for r in result["generated"]["clips"] if key in r and not math.isnan(r[key])]


def spread(values: list[float], fmt: str = ".2f") -> str:
  if not values:
    return "-"
  mean, std = stats.mean_std(values)
  return f"{mean:{fmt}}" + ("" if math.isnan(std) else f" ± {std:{fmt}}")


def table_f(h: dict) -> list[str]:
  """Table (f) and its findings, from the JSON `main` writes (results/hierarchy.json)."""
  two, one = h["two_level"], h["one_level"]
  s = two["generated"]["summary"]
  lines = [
    SECTION,
    "",
    f"`{h['command']}` on {h['date']} ({h['machine']}). Each stack generated {h['pieces_per_stack']} pieces of "
    f"{h['seconds']:g} s (seeds {h['seeds']}; prior, then decoders top-down, at temperatures "
    f"{two['temperatures']} and {one['temperatures']}); mean ± std over pieces. Structure: the correlation of the "
    "pitch-class profiles of a piece's first and last 5 s (median over pieces). Training clips: "
    f"{s['training_notes_from']}, {h['seconds']:g}-s clips. Reconstruction: onset note F1 of 4 validation clips "
    "of 4 s at temperature 0 against their score, through level 1 alone and through every level. Training "
    "time: the minutes of the stages that differ (level 1 is shared), on the machine named."
    + (f" The one-level row is {one['from']}." if "from" in one else ""),
    "",
  ]
  header = ["stack", "prior sees", "prior input noise", "training (min)", "notes/s", "flatness (dB)"]
  header += ["pitch-class distance", "structure", "reconstruction F1 (level 1 / all)"]
  others = two.get("other_priors", [])
  shipped = f", prior seed {two['prior_seed']}" if others else ""
  rows = [stack_row(f"two levels (hop 8 x 8){shipped}", two)]
  rows += [stack_row(f"two levels, prior seed {r['prior_seed']}", r) for r in others]
  rows.append(stack_row("one level (hop 8)", one))
  rows.append(
    [
      "training clips",
      "-",
      "-",
      "-",
      f"{s['training_notes_per_s']:.2f}",
      f"{s['training_flatness_db']:.1f}",
      f"{s['training_pitch_class_halves_distance']:.2f} (two halves)",
      f"{s['training_structure_same_piece']:.2f} (different pieces: {s['training_structure_different_pieces']:.2f})",
      "-",
    ]
  )
  lines += ["| " + " | ".join(c) + " |" for c in (header, ["---"] * len(header), *rows)] + [""]
  lines += [f"- {f}" for f in findings(h)] + [""]
  return lines


def stack_row(name: str, r: dict) -> list[str]:
  """A stack's cells in table (f); '-' where a figure was not measured (another prior's reconstructions and time)."""
  f1 = [f"{r[f'reconstruction_{n}_levels']['onset_f1']:.2f}" for n in (1, 2) if f"reconstruction_{n}_levels" in r]
  return [
    name,
    f"{r['prior_receptive_field_s']:.1f} s",
    f"{r.get('prior_input_noise', 0.0):g}",
    f"{r['training_minutes']:.0f}" if "training_minutes" in r else "-",
    spread(per_piece(r, "notes_per_s")),
    spread(per_piece(r, "flatness_db"), ".1f"),
    f"{r['generated']['summary']['pitch_class_distance']:.2f}",
    f"{r['structure_median']:.2f}",
    " / ".join(f1) or "(as above)",
  ]


def findings(h: dict) -> list[str]:
  """Sentences written from table (f)'s numbers."""
  two, one = h["two_level"], h["one_level"]
  out = []
  for key, what, fmt in (("structure", "structure", ".2f"), ("notes_per_s", "notes/s", ".2f")):
    diff = stats.difference(per_piece(two, key), per_piece(one, key))
    if not diff.known:
      out.append(f"{what}: too few pieces with a value to compare the two stacks.")
      continue
    verdict = "a real difference" if diff.excludes_zero else "no difference the pieces can show"
    out.append(
      f"{what}: two levels minus one level {diff.estimate:+{fmt}} (95% CI {diff.low:+{fmt}} to {diff.high:+{fmt}}): "
      f"{verdict}."
    )
  if two.get("other_priors"):
    out += over_priors([two, *two["other_priors"]])
  for name, r in (("two levels", two), ("one level", one)):
    met = floors(r)
    missed = [k for k, ok in met.items() if not ok]
    out.append(
      f"{name}: {len(met) - len(missed)} of {len(met)} floors met"
      + (f"; not met: {'; '.join(missed)}." if missed else ".")
    )
  return out


def over_priors(priors: list[dict]) -> list[str]:
  """The two-level figures over priors of each input noise (each prior's mean is one value) and, with two noises,
  the difference of their notes/s."""
  noises = sorted({r["prior_input_noise"] for r in priors}, reverse=True)
  groups = {n: [r for r in priors if r["prior_input_noise"] == n] for n in noises}
  means = {n: [float(np.mean(per_piece(r, "notes_per_s"))) for r in group] for n, group in groups.items()}
  out = []
  for noise, group in groups.items():
    seeds = ", ".join(str(r["prior_seed"]) for r in group)
    structures = ", ".join(f"{r['structure_median']:.2f}" for r in group)
    met = ", ".join(str(sum(floors(r).values())) for r in group)
    out.append(
      f"two levels, prior input noise {noise:g}, over {len(group)} priors (seeds {seeds}): notes/s "
      f"{spread(means[noise])} (mean ± std of each prior's mean), structure medians {structures}, floors met {met} "
      "of 4."
    )
  if len(noises) == 2:
    diff = stats.difference(means[noises[0]], means[noises[1]])
    if diff.known:
      verdict = "a real difference" if diff.excludes_zero else "no difference these priors can show"
      out.append(
        f"notes/s: prior input noise {noises[0]:g} minus {noises[1]:g}, over priors' means, {diff.estimate:+.2f} "
        f"(95% CI {diff.low:+.2f} to {diff.high:+.2f}): {verdict}."
      )
  return out


def splice(path: Path, lines: list[str]) -> None:
  """Put table (f) into RESULTS.md: in place of an older one, else before the plots that follow the tables."""
  text = path.read_text().split("\n")
  if SECTION in text:
    start = text.index(SECTION)
    end = next((i for i in range(start + 1, len(text)) if text[i].startswith(("## ", "!["))), len(text))
    text[start:end] = lines
  else:
    at = next((i for i, line in enumerate(text) if line.startswith("![")), len(text))
    text[at:at] = lines
  files.atomic_write_bytes(path, "\n".join(text).encode())


def main(argv):
  del argv
  metrics.require()
  from argmax_music import pretrained

  temperatures = [float(t) for t in FLAGS.temperature.split(",")]
  seeds = [int(s) for s in FLAGS.seeds.split(",")]
  two_root, one_root = Path(FLAGS.two_level), Path(FLAGS.one_level)
  levels, _ = stack.open_stack(two_root, with_prior=False)
  reference = figures.training_reference(levels[0].config.data.dir, seconds=FLAGS.seconds)
  h = {
    "command": "python -m argmax_music.experiments.hierarchy " + " ".join(f"--{k}={v}" for k, v in flag_values()),
    "date": time.strftime("%Y-%m-%d"),
    "machine": sharding.machine(),
    "seconds": FLAGS.seconds,
    "seeds": seeds,
    "pieces_per_stack": FLAGS.pieces * len(seeds),
  }
  minutes = training_minutes(two_root)
  others = [Path(root) for root in FLAGS.other_priors.split(",")] if FLAGS.other_priors else []
  for root in others:
    check_other_prior(root, two_root)
  earlier = earlier_run(Path(FLAGS.one_level_from), h) if FLAGS.one_level_from else None
  examples = {}
  for name, root in (("two_level", two_root), ("one_level", one_root)):
    label = f"{name.replace('_', ' ')} stack, seed {seeds[0]}"
    if name == "one_level" and earlier:
      if not same_level1(earlier, h["two_level"]):
        raise stack.StackError(f"--one_level_from={FLAGS.one_level_from}: level 1 reconstructs differently there")
      source = f"from {FLAGS.one_level_from} ({earlier['command']}, {earlier['date']}), not rerun"
      h[name] = {"from": source} | earlier[name]  # A row reused before keeps the run that made it.
      if FLAGS.card:
        examples[label] = audio.load_audio(Path(FLAGS.card).parent / "example_one_level.flac")
      continue
    h[name], pieces = stack_figures(root, FLAGS.pieces, seeds, FLAGS.seconds, temperatures, reference)
    h[name]["training_minutes"] = minutes[name]
    examples[label] = pieces[0]
  for root in others:
    other, _ = stack_figures(root, FLAGS.pieces, seeds, FLAGS.seconds, temperatures, reference, reconstruct=False)
    h["two_level"].setdefault("other_priors", []).append(other)
  h["floors"] = {name: floors(h[name]) for name in ("two_level", "one_level")}
  files.atomic_write_json(FLAGS.out, h)
  lines = table_f(h)
  splice(RESULTS, lines)
  if FLAGS.card:
    write_examples(Path(FLAGS.card).parent, examples, levels[0].config.data.dir, FLAGS.seconds)
    pretrained.write_card(Path(FLAGS.card), h)
  print("\n".join(lines))


def earlier_run(path: Path, h: dict) -> dict:
  """An earlier OUT, after checking that it generated as many pieces of the same length with the same seeds."""
  earlier = json.loads(path.read_text())
  differ = [k for k in ("seconds", "seeds", "pieces_per_stack") if earlier[k] != h[k]]
  if differ:
    raise stack.StackError(f"--one_level_from={path}: another {', '.join(differ)} than this run's")
  return earlier


def same_level1(earlier: dict, two_level: dict) -> bool:
  """Whether level 1 reconstructs as it did in the earlier run (the onset F1 through it, to 2 places)."""
  f1 = lambda r: round(r["reconstruction_1_levels"]["onset_f1"], 2)
  return f1(earlier["two_level"]) == f1(two_level)


def check_other_prior(root: Path, two_root: Path) -> None:
  """ROOT must hold --two_level's levels (linked) and a prior trained as its prior was, as far, but for the seed and
  the input noise."""
  (levels, prior), (two_levels, two_prior) = stack.find_stack(root), stack.find_stack(two_root)
  if prior is None or [p.resolve() for p in levels] != [p.resolve() for p in two_levels]:
    raise stack.StackError(
      f"--other_priors={root}: needs {two_root}'s levels there (level1/, level2/ as links to them) and a prior/"
    )
  trained = lambda workdir: config.run_config(checkpoints.read_run(workdir)["config"]).to_dict()
  differ = [k for k in config.differing_keys(trained(prior), trained(two_prior), ("prior", "train")) if k != NOISE]
  if differ:
    raise stack.StackError(f"--other_priors={root}: its prior differs from {two_prior}'s in {', '.join(differ)}")
  steps, shipped_steps = (stack.Stage.load(workdir).step for workdir in (prior, two_prior))
  if steps != shipped_steps:
    raise stack.StackError(f"--other_priors={root}: its prior is at step {steps}, {two_prior}'s at {shipped_steps}")


def flag_values():
  names = ("two_level", "one_level", "pieces", "seeds", "seconds", "temperature", "one_level_from", "other_priors")
  return [(k, FLAGS[k].value) for k in names if FLAGS[k].value is not None]


def training_minutes(two_root: Path) -> dict[str, float]:
  """Wall minutes of the stages each stack does not share with the other (training.json of the shipped model)."""
  record = json.loads((two_root / "training.json").read_text())["stages"]
  minutes = lambda *names: sum(record[n]["seconds"] for n in names) / 60
  return {"two_level": minutes("level2", "encode2", "prior"), "one_level": minutes("prior1")}


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
  flags.DEFINE_string("one_level_from", None, "An earlier OUT whose one-level figures to reuse (not rerun).")
  flags.DEFINE_string(
    "other_priors", None, "Stacks of --two_level's levels with priors from other seeds or input noises (ROOT,ROOT)."
  )
  flags.DEFINE_string("card", None, "Also write the shipped model's card here (pretrained/piano/README.md).")
  cli.run(main, metrics.MissingDependencies, stack.StackError)
