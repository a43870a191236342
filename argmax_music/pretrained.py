"""The shipped piano model: train it from nothing, export its parameters, find it by name.

  make pretrained      (= python -m argmax_music.pretrained [--root=runs/piano] [--out=pretrained/piano])

corpus (400 music21 pieces on fluidsynth's piano) -> prepare -> level 1 -> its codes -> level 2 -> its codes ->
level 2's decoder again, seeing 2 s, over those codes (the upsampler, shipped as level 2) -> the prior
(configs/piano.py) -> the one-level prior of RESULTS.md table (f) -> each one's guide (its recipe stopped at 2,500
steps: the weaker prior autoguidance moves away from) -> both priors again from other seeds (table (f)'s spread over
priors, guided by the same guides) -> the comparison of both stacks (`argmax_music.experiments.hierarchy`) -> OUT:
the shipped stages' parameters only (`checkpoints.export_params`), training.json (machine, steps and wall time per
stage) and the model card README.md. Every stage resumes or skips finished work, so an interrupted run continues
where it stopped; each stage's wall time adds up over invocations, per machine, in ROOT/stages.json.

`sample --pretrained=piano` and the notebook load OUT through the normal checkpoint path (`stack.open_stack`).
"""

from __future__ import annotations

import datetime
import functools
import json
import shutil
import time
from pathlib import Path

from absl import flags

from argmax_music import checkpoints, cli, demo, files, sharding, stack

FLAGS = flags.FLAGS
# pretrained/ beside the package: the repository's copy (make demo installs the package in place).
SHIPPED = Path(__file__).resolve().parents[1] / "pretrained"
CONFIG = "configs/piano.py"
# Beside the shipped prior (seed 0): table (f)'s spread over priors.
OTHER_PRIORS = {"prior_seed1": ("--config.seed=1",), "prior_seed2": ("--config.seed=2",)}
# Beside the one-level prior (seed 0): the same spread for the one-level stack.
ONE_LEVEL_OTHER_PRIORS = {"one_level_seed1": ("--config.seed=1",)}
# OUT's folders and the stages (workdirs under ROOT) that trained them; each is exported from its last stage.
TRAINED_BY = {"level1": ("level1",), "level2": ("level2", "upsampler2"), "prior": ("prior",), "guide": ("guide",)}


def locate(name: str) -> Path:
  """The folder of a shipped model (`piano`) or a folder given as a path."""
  for path in (Path(name), SHIPPED / name):
    if (path / "level1").is_dir():
      return path
  shipped = sorted(p.name for p in SHIPPED.iterdir() if (p / "level1").is_dir()) if SHIPPED.is_dir() else []
  raise stack.StackError(
    f"--pretrained={name}: neither a folder with level1/ nor one of the shipped models {shipped} in {SHIPPED}"
  )


def temperatures(root: Path, mode: str) -> list[float]:
  """The temperatures the model card's figures used (the prior's, then each level's top-down) for `mode`."""
  chosen = json.loads((root / "training.json").read_text())["temperatures"]
  return chosen if mode in ("generate", "continue") else chosen[1:]


def guidance(root: Path) -> float:
  """The guidance towards each piece's key the model card's figures used (1: none, or an unconditioned prior)."""
  return json.loads((root / "training.json").read_text()).get("guidance", 1.0)


def autoguidance(root: Path) -> tuple[Path | None, float]:
  """The weaker prior (ROOT/guide) and the scale of autoguidance away from it that the model card's figures used
  ((None, 0.0): none)."""
  scale = json.loads((root / "training.json").read_text()).get("autoguidance", 0.0)
  return (root / "guide" if scale else None), scale


def soft_codes(root: Path) -> bool:
  """Whether the model card's figures decoded with soft codes (`stack.Sampler`)."""
  return json.loads((root / "training.json").read_text()).get("soft_codes", False)


def card_sampler(root: Path, levels: list, prior, **options) -> stack.Sampler:
  """A sampler of the shipped stack `levels`, `prior` (from ROOT) as its model card's figures sampled it: the
  temperatures, soft codes, guidance and guide of ROOT/training.json."""
  guide, scale = autoguidance(root)
  return stack.Sampler(
    levels,
    prior,
    temperatures(root, "generate"),
    soft_codes=soft_codes(root),
    guidance=guidance(root),
    guide_prior=stack.Stage.load(guide) if guide else None,
    autoguidance=scale,
    **options,
  )


def stage_commands(data: Path, root: Path, pieces: int) -> dict[str, tuple[str, ...]]:
  """Each stage's command (module and flags), in order."""
  corpus, prepared = data / "piano_large", data / "piano_large_prepared"

  def train(stage: str, data_dir: Path, workdir: Path, *overrides: str) -> tuple[str, ...]:
    config = f"--config={CONFIG}:{stage}"
    return ("argmax_music.train", config, f"--config.data.dir={data_dir}", *overrides, f"--workdir={workdir}")

  def encode(level: int) -> tuple[str, ...]:
    return ("argmax_music.encode", f"--workdir={root / f'level{level}'}", f"--output={root / f'codes{level}'}")

  return (
    {
      "corpus": ("argmax_music.data.corpus", f"--out={corpus}", f"--pieces={pieces}"),
      "prepare": ("argmax_music.data.prepare", f"--input={corpus}", f"--output={prepared}", "--min_seconds=1"),
      "level1": train("level1", prepared, root / "level1"),
      "encode1": encode(1),
      "level2": train("level2", root / "codes1", root / "level2"),
      "encode2": encode(2),
      "upsampler2": train(
        "upsampler2", root / "codes1", root / "upsampler2", f"--config.model.codes_from={root / 'level2'}"
      ),
      "prior": train("prior", root / "codes2", root / "prior"),
      "prior1": train("prior1", root / "codes1", root / "one_level" / "prior"),
      "guide": train("guide", root / "codes2", root / "guide"),
      "guide1": train("guide1", root / "codes1", root / "one_level" / "guide"),
    }
    | {
      name: train("prior", root / "codes2", root / name / "prior", *overrides)
      for name, overrides in OTHER_PRIORS.items()
    }
    | {
      name: train("prior1", root / "codes1", root / name / "prior", *overrides)
      for name, overrides in ONE_LEVEL_OTHER_PRIORS.items()
    }
  )


def link(stack_root: Path, source: Path, *names: str) -> None:
  """STACK_ROOT/level1, ... as links to SOURCE's: a comparison stack that shares another's levels (or guide)."""
  for name in names:
    if not ((stack_root / name).is_symlink() or (stack_root / name).exists()):
      (stack_root / name).symlink_to((source / name).resolve())


def export(root: Path, out: Path) -> None:
  """OUT/level1, level2 (the upsampler), prior, guide: parameters only; written beside OUT and swapped in whole."""
  new = out.with_name(f".{out.name}.new")
  shutil.rmtree(new, ignore_errors=True)
  for name, stages in TRAINED_BY.items():
    checkpoints.export_params(root / stages[-1], new / name)
  for kept in out.glob("*") if out.is_dir() else []:  # The card, training.json, examples: rewritten later.
    if kept.is_file():
      shutil.copy(kept, new / kept.name)
  shutil.rmtree(out, ignore_errors=True)
  new.rename(out)


def stage_seconds(path: Path) -> dict[str, dict[str, float]]:
  """ROOT/stages.json as {stage: {machine: seconds}} ({} if absent); an older file's bare seconds count under
  'machine not recorded', so a run started before machines were kept resumes with its time."""
  recorded = json.loads(path.read_text()) if path.exists() else {}
  return {name: s if isinstance(s, dict) else {"machine not recorded": s} for name, s in recorded.items()}


def training_record(seconds: dict[str, dict[str, float]], commands: dict) -> dict:
  """Date, and per stage: its command, steps, wall time (summed over invocations) and the machine that spent most
  of it (`seconds`: {stage: {machine: seconds}}, as ROOT/stages.json keeps them)."""
  stages = {}
  for name, command in commands.items():
    spent = seconds.get(name, {})
    entry = {"command": "python -m " + " ".join(command), "seconds": round(sum(spent.values()), 1)}
    entry["machine"] = max(spent, key=spent.get) if spent else None
    workdir = next((a.split("=", 1)[1] for a in command if a.startswith("--workdir=")), None)
    if command[0] == "argmax_music.train" and workdir:
      entry["steps"] = checkpoints.read_run(workdir)["config"]["train"]["steps"]
    stages[name] = entry
  return {
    "date": datetime.date.today().isoformat(),
    "command": "make pretrained",
    "stages": stages,
  }


def write_card(path: Path, h: dict) -> None:
  """The model card: data, stages (config, size, steps, time), machine, figures (from `experiments.hierarchy`'s
  JSON `h`), use and retraining; written from the numbers, so it says what the weights on disk did. A `note` in
  training.json (how the weights were made, where not by one `make pretrained`) follows the line on machines."""
  import jax
  import numpy as np

  from argmax_music.data import dataset
  from argmax_music.experiments import hierarchy_table

  root = path.parent
  record = json.loads((root / "training.json").read_text())
  levels, prior = stack.open_stack(root)
  data = dataset.PreparedDataset(levels[0].config.data.dir)
  hours = {split: data.seconds(split) / 3600 for split in ("train", "validation")}
  pieces = sum(len(data.entries(split)) for split in dataset.SPLITS)
  stages = record["stages"]
  rows, guide = [], [stack.Stage.load(root / "guide")] if (root / "guide").is_dir() else []
  whats = ("level 1 (audio)", "level 2 (level 1's codes)", "prior (level 2's codes)", "guide (level 2's codes)")
  for stage, what in zip([*levels, prior, *guide], whats):
    trained = [name for name in TRAINED_BY[stage.workdir.name] if name in stages]
    size = sum(np.size(x) for x in jax.tree.leaves(stage.params))
    hop = f"{stage.hop}" if stage.task.is_level else "-"
    steps = " + ".join(str(stages[name]["steps"]) for name in trained)
    minutes = sum(stages[name]["seconds"] for name in trained) / 60
    rows.append(f"| {' + '.join(trained)} | {what} | {hop} | {size / 1e6:.2f} M | {steps} | {minutes:.1f} |")
  shipped = {name for names in TRAINED_BY.values() for name in names if name in stages}
  machines = sorted({stages[name]["machine"] for name in shipped})
  by_machine = {}  # {machine: ["stage (steps, minutes)", ...]}, the stages trained for table (f) only.
  for name, s in stages.items():
    if "steps" in s and name not in shipped:
      by_machine.setdefault(s["machine"], []).append(f"{name} ({s['steps']} steps, {s['seconds'] / 60:.0f} min)")
  compared = "; ".join(
    ("" if machine in machines else f"on {machine}: ") + ", ".join(runs) for machine, runs in by_machine.items()
  )
  soft = "two_level_soft" in h  # The card describes the soft codes' decoding when the comparison ran it.
  two = h["two_level_soft" if soft else "two_level"]
  gen, real = two["generated"]["summary"], two["real_codes"]["generated"]["summary"]
  clips = h["real_clips"]["generated"]["summary"] if "real_clips" in h else None  # Their own audio.
  one, hard = h["one_level"]["generated"]["summary"], h["two_level"]["generated"]["summary"]
  met = hierarchy_table.floors(two)
  keyed = "guidance" in two
  one_prior = ""  # How the one-level prior stands to a keyed shipped prior.
  if keyed:
    one_keyed = "guidance" in h["one_level"]
    one_prior = ", conditioned on the key and guided as this one is" if one_keyed else ", not conditioned on a key"
  floors_met = lambda r: sum(hierarchy_table.floors(r).values())
  guides = ", each stack's guide included" if "guide" in stages else ""  # In both budgets.
  lines = [
    f"# {root.name}: the shipped two-level piano model",
    "",
    "The paper's hierarchy at CPU scale (`configs/piano.py`, whose docstring gives the sizes and why both levels are "
    "VQ-VAEs): level 1 encodes 16-kHz audio at hop 8, level 2 encodes level 1's codes at hop 8 (64 overall, 250 "
    "codes/s; its decoder retrained with its encoder fixed, to see 2 s of level 1's codes: `upsampler2`), and a "
    f"WaveNet prior over level 2's codes sees {two['prior_receptive_field_s']:.1f} s. Parameters only "
    "(the weights of each stage's last step), loaded by `stack.open_stack` through `checkpoints.load_params`.",
    "",
    "## Use",
    "",
    "```",
    "python -m argmax_music.sample --pretrained=piano --mode=generate --seconds=20 --num=4 --out=DIR",
    *(
      ["python -m argmax_music.sample --pretrained=piano --mode=generate --key='D minor' --seconds=20"] if keyed else []
    ),
    "python -m argmax_music.sample --pretrained=piano --mode=continue --prompt=FILE --seconds=10",
    "python -m argmax_music.sample --pretrained=piano --mode=reconstruct --input=FILE",
    "python -m argmax_music.sample --pretrained=piano --mode=upsample --codes=DIR/codes.npz",
    "```",
    "",
    f"Generated pieces below used temperatures {two['temperatures']} (the prior, then level 2's and level 1's "
    "decoders; `--temperature` takes the same list)"
    + (
      " and soft codes: level 1 is conditioned at each step on the expected code vector under level 2's prediction, "
      "not on the code sampled from it (`sample` does so for this model unless `--nosoft_codes`)."
      if soft
      else "."
    )
    + (
      " The prior is conditioned on each piece's key (the key of its score, in training): it plays each piece in a "
      "key drawn as often as each is in the training pieces (or `--key='D minor'`), guided towards it with "
      f"classifier-free guidance of scale {two['guidance']:g} (`--guidance`; 1 samples the conditioned prior as it is)."
      if keyed
      else ""
    )
    + (
      f" Its logits also move {two['autoguidance']:g} times as far away from those of `guide/`, the prior's recipe "
      f"stopped at {two['guide_steps']} steps, as they stand from them (autoguidance, Karras et al. 2024: "
      "`--autoguidance`, `--guide_prior`)."
      if "autoguidance" in two
      else ""
    ),
    "",
    "## Data",
    "",
    f"`{data.root}`: {pieces} files from music21's bundled corpus in its fixed order (all Bach, nearly all four-part "
    "chorales; every part on one piano), rendered by `argmax_music.data.corpus` through fluidsynth's FluidR3_GM "
    f"acoustic grand piano at 16 kHz: {hours['train']:.2f} h for training, {hours['validation']:.2f} h for validation "
    "(split by piece).",
    "",
    "## Stages",
    "",
    f"Trained on {' and '.join(machines)}, {record['date']}, by `{record['command']}`."
    + (f" {record['note']}" if "note" in record else ""),
    "",
    "| stage | models | hop | parameters | steps | time (min) |",
    "| --- | --- | --- | --- | --- | --- |",
    *rows,
    "",
    f"Trained for RESULTS.md table (f) only, not shipped: {compared or 'nothing'}.",
    "",
    "## Figures",
    "",
    f"From `{h['command']}` ({h['date']}; RESULTS.md table (f) has the one-level comparison):",
    "",
    f"- Reconstruction of 4 validation clips of 4 s at temperature 0, onset note F1 against the score: "
    f"{two['reconstruction_1_levels']['onset_f1']:.2f} through level 1, "
    f"{two['reconstruction_2_levels']['onset_f1']:.2f} through both levels.",
    f"- {h['pieces_per_stack']} generated pieces of {h['seconds']:g} s: {gen['notes_per_s']:.2f} notes/s (training "
    f"clips {gen['training_notes_per_s']:.2f}), flatness {gen['flatness_db']:.1f} dB (training "
    f"{gen['training_flatness_db']:.1f}), pitch-class distance {gen['pitch_class_distance']:.2f} (two halves of the "
    f"corpus {gen['training_pitch_class_halves_distance']:.2f}), structure "
    f"{two['structure_median']:.2f} (real clips {gen['training_structure_same_piece']:.2f}; "
    f"different pieces {gen['training_structure_different_pieces']:.2f}); generating them took "
    f"{two['generate_seconds']:.0f} s.",
    *(
      [
        f"- Pieces whose notes are in the key they were asked for (`metrics.keys`): {gen['key_agreement']:.2f} "
        f"({gen['signature_agreement']:.2f} in it or its relative); real codes decoded, in their score's key: "
        f"{real['key_agreement']:.2f} ({real['signature_agreement']:.2f})."
      ]
      if "key_agreement" in gen and "key_agreement" in real
      else []
    ),
    *(
      [
        f"- What the pitch-class distance is made of (`figures.scale_degree_figures`): the keys the pieces were "
        f"asked for alone would give {gen['key_mix_distance']:.2f}; counted from each piece's tonic their notes are "
        f"{gen['scale_degree_distance']:.2f} from the training files' use of the scale (real codes decoded: "
        f"{real['scale_degree_distance']:.2f})."
      ]
      if "scale_degree_distance" in gen and "scale_degree_distance" in real
      else []
    ),
    f"- Floors met: {', '.join(k for k, ok in met.items() if ok) or 'none'}; not met: "
    f"{', '.join(k for k, ok in met.items() if not ok) or 'none'}. These are one draw of keys and sampling seeds: "
    "the repository's README.md gives the pitch-class distance over other sets of 32 pieces.",
    *(
      [
        f"- With level 1 conditioned on the sampled codes instead (the paper's decoding, `--nosoft_codes`), the same "
        f"pieces: {hard['notes_per_s']:.2f} notes/s, flatness {hard['flatness_db']:.1f} dB, pitch-class distance "
        f"{hard['pitch_class_distance']:.2f}, structure {h['two_level']['structure_median']:.2f}: "
        f"{floors_met(h['two_level'])} of {len(met)} floors."
      ]
      if soft
      else []
    ),
    f"- What a perfect prior would reach: the level-2 codes of {h['pieces_per_stack']} real validation clips of "
    f"{h['seconds']:g} s, decoded as the pieces are, give {real['notes_per_s']:.2f} notes/s, flatness "
    f"{real['flatness_db']:.1f} dB, pitch-class distance {real['pitch_class_distance']:.2f}, structure "
    f"{two['real_codes']['structure_median']:.2f}: {floors_met(two['real_codes'])} of {len(met)} floors"
    + (
      f" (the clips' own audio: pitch-class distance {clips['pitch_class_distance']:.2f}, flatness "
      f"{clips['flatness_db']:.1f} dB, {floors_met(h['real_clips'])} of {len(met)} floors)."
      if clips
      else "."
    ),
    f"- Beside it, the one-level stack (level 1 and a prior of the same shape over its codes{one_prior}, trained "
    f"{h['one_level']['training_steps']} steps against {h['two_level']['training_steps']} for level 2, its "
    f"upsampler and this prior{guides}) generated {one['notes_per_s']:.2f} notes/s at flatness "
    f"{one['flatness_db']:.1f} dB and met {floors_met(h['one_level'])} of {len(met)} floors. Through level 2 the reconstructions "
    f"score F1 {two['reconstruction_2_levels']['onset_f1']:.2f} against "
    f"{two['reconstruction_1_levels']['onset_f1']:.2f} through level 1 alone (what level 2 needed and what it still "
    'loses: WORKSPACE.md, "The shipped model").',
    "",
    "Listen to the first piece of seed 0 ([two levels](example_two_levels.flac); the one-level stack's: "
    "[one level](example_one_level.flac)) beside [a real validation clip](example_real.flac):",
    "",
    "![log-mel spectrograms of the pieces and the real clip](examples.png)",
    "",
    "## Retrain",
    "",
    "`make pretrained` renders the corpus, trains every stage, exports here and reruns the comparison; it resumes "
    "where it stopped (each stage's wall time adds up, per machine, in `runs/piano/stages.json`).",
    "",
  ]
  files.atomic_write_bytes(path, "\n".join(lines).encode())


def main(argv):
  del argv
  data, root, out = Path(FLAGS.data), Path(FLAGS.root), Path(FLAGS.out)
  commands = stage_commands(data, root, FLAGS.pieces)
  record_path = root / "stages.json"
  seconds = stage_seconds(record_path)
  stage = functools.partial(demo.run, log_dir=root / "logs")
  machine, start = sharding.machine(), time.monotonic()
  try:
    for name, command in commands.items():
      spent = seconds.setdefault(name, {})
      spent[machine] = spent.get(machine, 0.0) + stage(*command, label=name)
      files.atomic_write_json(record_path, seconds)
    export(root, out)
    for name in ("one_level", *ONE_LEVEL_OTHER_PRIORS):
      link(root / name, out, "level1")
    for name in ONE_LEVEL_OTHER_PRIORS:
      link(root / name, root / "one_level", "guide")
    for name in OTHER_PRIORS:
      link(root / name, out, "level1", "level2", "guide")
    record = training_record(seconds, commands) | {"temperatures": [float(t) for t in FLAGS.temperature]}
    record["soft_codes"], record["guidance"] = FLAGS.soft_codes, FLAGS.guidance
    record["autoguidance"] = FLAGS.autoguidance
    files.atomic_write_json(out / "training.json", record)
    stage(
      "argmax_music.experiments.hierarchy",
      f"--two_level={out}",
      "--seeds=0,1,2,3",
      "--pieces=8",  # 32 pieces of 20 s per stack: 16 pieces' key draw alone moved the pitch-class distance by 0.06.
      f"--temperature={','.join(FLAGS.temperature)}",
      f"--{'' if FLAGS.soft_codes else 'no'}soft_codes",
      f"--guidance={FLAGS.guidance}",
      f"--autoguidance={FLAGS.autoguidance}",
      f"--one_level={root / 'one_level'}",
      "--other_priors=" + ",".join(str(root / name) for name in OTHER_PRIORS),
      "--one_level_other_priors=" + ",".join(str(root / name) for name in ONE_LEVEL_OTHER_PRIORS),
      f"--card={out / 'README.md'}",
      label="compare",
    )
  except demo.StageFailed as e:
    cli.fail(str(e))
  print(f"done in {demo.format_minutes(time.monotonic() - start)}: {out} (model card {out / 'README.md'})")


if __name__ == "__main__":
  flags.DEFINE_string("data", "data", "Where the corpus and the prepared dataset go.")
  flags.DEFINE_string("root", "runs/piano", "Where the runs go (resumed when there).")
  flags.DEFINE_string("out", "pretrained/piano", "Where the shipped parameters and the model card go.")
  flags.DEFINE_list(
    "temperature",
    ["1.5", "1.0", "0"],
    "Sampling temperatures the card's figures use: the prior's, level 2's, level 1's.",
  )
  flags.DEFINE_bool("soft_codes", True, "The card's figures decode with soft codes too (stack.Sampler).")
  flags.DEFINE_float("guidance", 6.0, "The card's figures guide a key-conditioned prior this far (stack.Sampler).")
  flags.DEFINE_float("autoguidance", 2.0, "... and this far away from the guide, a weaker prior (stack.Sampler).")
  flags.DEFINE_integer("pieces", 400, "Corpus entries to render (400: Bach, nearly all chorales, 3.4 hours).")
  cli.run(main)
