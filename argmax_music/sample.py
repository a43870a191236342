"""Sample music from a trained stack: generate, continue a prompt, reconstruct a file, upsample codes.

  python -m argmax_music.sample --pretrained=piano --mode=generate --seconds=20 --num=4 --out=DIR
  python -m argmax_music.sample --workdir=runs/demo --mode=generate --seconds=10 --num=4 \
      [--temperature=1.0 | --temperature=0.9,1.0] [--top_p=0.95] [--seed=0] [--out=DIR]
  python -m argmax_music.sample --workdir=runs/demo --mode=continue --prompt=FILE --seconds=5
  python -m argmax_music.sample --workdir=runs/demo --mode=reconstruct --input=FILE [--levels_used=1]
  python -m argmax_music.sample --workdir=runs/demo --mode=upsample --codes=FILE.npz

--pretrained=piano samples the shipped model (pretrained/piano/README.md: at its card's temperatures and with soft
codes where its card used them, unless --temperature and --[no]soft_codes say otherwise); --workdir=ROOT finds
ROOT/level1, ROOT/level2, ... and ROOT/prior; or name them with --levels=DIR1,DIR2 (bottom first) and --prior=DIR.
--temperature takes one value for every stage or a list: the prior first, then each level from the top down. A
key-conditioned prior (`prior.condition_on_key`) plays each piece in a key: --key='D minor' (or one per piece,
comma-separated), else continues a prompt in the prompt's key (of its score or its transcribed notes) and generates
in one drawn as often as each is in its training data; --guidance > 1 holds it to the key harder (classifier-free
guidance, `models.prior.GuidedPrior`), and --guide_prior=DIR with --autoguidance > 0 moves it away from a weaker
prior over the same codes (autoguidance; the shipped model's ROOT/guide where its card used one). The output folder
holds WAV files, codes (npz), a spectrogram PNG per sample and index.html.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from absl import app, flags, logging

from argmax_music import audio, listening_page, metrics, pretrained
from argmax_music.metrics import figures as musical
from argmax_music.metrics import keys as keys_lib
from argmax_music.metrics import pitch_stats, scores, transcription
from argmax_music.stack import Sampler, StackError, Stage, find_stack, load_stack

MODES = ("generate", "continue", "reconstruct", "upsample")


def level_codes(codes: list[np.ndarray], prefix: str = "") -> dict[str, np.ndarray]:
  """{"level1": ..., "level2": ...} of each level's codes, bottom first (the top level's last)."""
  return {f"{prefix}level{i}": c for i, c in enumerate(codes, 1)}


def write_outputs(
  out: Path,
  waveforms: np.ndarray,
  codes: dict[str, np.ndarray],
  settings: dict,
  sample_rate: int = 16000,
  originals: np.ndarray | None = None,
) -> None:
  """The listening page of mu-law `waveforms` (beside their `originals`, when given) and codes.npz."""
  kind = "reconstruction" if originals is not None else "sample"
  listening_page.write_page(
    out,
    [audio.mu_law_decode(w) for w in waveforms],
    settings,
    sample_rate,
    None if originals is None else [audio.mu_law_decode(o) for o in originals],
    links={"codes of every level (codes.npz)": "codes.npz"},
    kind=kind,
  )
  np.savez(out / "codes.npz", **codes)


def add_page_figures(
  out: Path,
  waveforms: np.ndarray,
  sample_rate: int,
  originals: np.ndarray | None = None,
  score_of: str | None = None,
  training_dir: str | None = None,
) -> None:
  """Put each clip's musical figures beside it on the page: a reconstruction against its original (and the
  score of the file `score_of`, when it has one); generated clips alone, and over all clips against the
  training set in `training_dir` when it exists. Without the evaluation dependencies: one warning, no figures."""
  try:
    metrics.require()
  except metrics.MissingDependencies as e:
    logging.warning("no musical figures on the page: %s", e)
    return
  signals = [audio.mu_law_decode(w) for w in waveforms]
  if originals is not None:
    score = scores.file_score(score_of, waveforms.shape[1] / sample_rate) if score_of else None
    rows = [musical.clip_figures(s, sample_rate, audio.mu_law_decode(o), score) for s, o in zip(signals, originals)]
    listening_page.add_figures(out, rows)
  elif training_dir and Path(training_dir).is_dir():
    seconds = waveforms.shape[1] / sample_rate
    result = musical.generated_figures(signals, sample_rate, musical.training_reference(training_dir, seconds=seconds))
    listening_page.add_figures(out, result["clips"], result["summary"])
  else:
    listening_page.add_figures(out, [musical.clip_figures(s, sample_rate) for s in signals])


def prompt_key(path: str, signal: np.ndarray, sample_rate: int) -> list[str] | None:
  """[the key of a prompt's notes] for a key-conditioned prior to continue it in: its score's where the file has one
  (a corpus or MAESTRO folder), else its transcription's; None (a key is drawn) without notes or without the
  evaluation dependencies."""
  try:
    metrics.require()
  except metrics.MissingDependencies as e:
    logging.warning("%s: drawing a key, the prompt's is not read without the evaluation dependencies: %s", path, e)
    return None
  notes = scores.file_score(path, len(signal) / sample_rate)
  if notes is None:
    notes = transcription.transcribe(signal, sample_rate).notes
  key = keys_lib.key_of(pitch_stats.pitch_class_histogram(notes)) if len(notes) else None
  logging.info("%s: continuing in %s", path, key or "a drawn key (the prompt has no notes)")
  return [key] if key else None


def sample(
  mode: str,
  levels: list[Stage],
  prior: Stage | None,
  out: Path,
  seconds: float = 4.0,
  num: int = 1,
  temperatures=(1.0,),
  top_p: float | None = None,
  seed: int = 0,
  prompt: str | None = None,
  input_file: str | None = None,
  codes_file: str | None = None,
  levels_used: int | None = None,
  chunk: int = 4000,
  figures: bool = False,
  soft_codes: bool = False,
  keys: list[str] | None = None,
  guidance: float = 1.0,
  guide_prior: Stage | None = None,
  autoguidance: float = 0.0,
) -> dict:
  """Run one mode and write its outputs to `out` (with each clip's musical figures when `figures`, which
  takes seconds of transcription per second of audio); returns the settings written to index.html."""
  if mode not in MODES:
    raise ValueError(f"--mode={mode!r}: expected one of {MODES}")
  sampler = Sampler(
    levels,
    prior,
    temperatures,
    top_p,
    seed,
    chunk,
    soft_codes=soft_codes,
    guidance=guidance,
    guide_prior=guide_prior,
    autoguidance=autoguidance,
  )
  rate = sampler.sample_rate
  originals = None
  if mode == "generate":
    top = sampler.prior_codes(num, math.ceil(seconds * rate / sampler.top_hop()), keys=keys)
    signals = sampler.decode(top, len(levels))
    codes = level_codes([*signals[-2::-1], top])
    waveform = signals[-1][:, : int(round(seconds * rate))]
  elif mode in ("continue", "reconstruct"):
    path = prompt if mode == "continue" else input_file
    if not path:
      raise ValueError(f"--mode={mode} needs --{'prompt' if mode == 'continue' else 'input'}=FILE")
    used = len(levels) if mode == "continue" or levels_used is None else levels_used
    x = audio.mu_law_encode(audio.load_audio(path, rate)).astype(np.int32)
    if mode == "reconstruct":
      x = x[: int(round(seconds * rate))]
      known, waveform = sampler.reconstruct(np.repeat(x[None], num, axis=0), used)
      codes = level_codes(known)
      originals = np.repeat(x[None, : waveform.shape[1]], num, axis=0)
    else:
      level_hop = sampler.top_hop(used)
      if len(x) < level_hop:
        raise ValueError(f"{path}: {len(x)} samples is shorter than one code ({level_hop} samples)")
      x = x[: len(x) // level_hop * level_hop]
      if prior and prior.task.keyed and not keys:
        keys = prompt_key(path, audio.mu_law_decode(x), rate)
      known = sampler.encode_all(x, used)
      n_top = len(known[-1]) + math.ceil(seconds * rate / sampler.top_hop())
      top = sampler.prior_codes(num, n_top, np.repeat(known[-1][None], num, axis=0), keys)
      prompts = [np.repeat(s[None], num, axis=0) for s in [x] + known[:-1]]
      signals = sampler.decode(top, used, prompts)
      codes = level_codes([*signals[-2::-1], top]) | level_codes(known, "prompt_")
      waveform = signals[-1][:, : len(x) + int(round(seconds * rate))]
  else:  # upsample
    if not codes_file:
      raise ValueError("--mode=upsample needs --codes=FILE.npz (the top level's codes)")
    with np.load(codes_file) as f:
      key = f"level{len(levels)}" if f"level{len(levels)}" in f else f.files[0]
      top = np.atleast_2d(f[key]).astype(np.int32)
    if top.max() >= levels[-1].task.num_codes:
      raise ValueError(f"{codes_file}: code {top.max()} is out of range for K={levels[-1].task.num_codes}")
    signals = sampler.decode(top, len(levels))
    codes = level_codes([*signals[-2::-1], top])
    waveform = signals[-1]
  settings = {
    "mode": mode,
    "seconds": round(waveform.shape[1] / rate, 3),
    "num": int(waveform.shape[0]),
    "temperatures (prior, levels top-down)": list(sampler.temperatures),
    "top_p": top_p,
    "soft_codes": soft_codes,
    "seed": seed,
    "levels": ", ".join(s.describe() for s in levels),
    "prior": prior.describe() if prior else "-",
    "prompt": prompt or input_file or codes_file or "-",
    "keys": ", ".join(sampler.keys) or "-",
    "guidance": guidance if sampler.keys else "-",
    "autoguidance": f"{autoguidance:g} from {guide_prior.describe()}" if guide_prior and sampler.keys else "-",
    "samples_per_s": {k: round(v, 1) for k, v in sampler.rates.items()},
  }
  write_outputs(out, waveform, codes, settings, rate, originals)
  if figures:
    score_of = input_file if mode == "reconstruct" else None
    add_page_figures(out, waveform, rate, originals, score_of, levels[0].config.data.dir)
  return settings


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  default_out = shipped = None
  if FLAGS.levels:
    level_dirs, prior_dir = [Path(d) for d in FLAGS.levels.split(",")], FLAGS.prior and Path(FLAGS.prior)
  elif FLAGS.workdir:
    level_dirs, prior_dir = find_stack(Path(FLAGS.workdir))
  elif FLAGS.pretrained:
    shipped = pretrained.locate(FLAGS.pretrained)
    level_dirs, prior_dir = find_stack(shipped)
    default_out = Path("runs") / "pretrained" / Path(FLAGS.pretrained).name / FLAGS.mode  # Not into the shipped folder.
  else:
    raise app.UsageError("give --pretrained=piano, --workdir=ROOT or --levels=DIR[,DIR...]")
  levels, prior = load_stack(level_dirs, prior_dir if FLAGS.mode in ("generate", "continue") else None)
  temperatures = [float(t) for t in FLAGS.temperature.split(",")]
  if shipped and not FLAGS["temperature"].present:
    temperatures = pretrained.temperatures(shipped, FLAGS.mode)
  soft_codes = pretrained.soft_codes(shipped) if shipped and not FLAGS["soft_codes"].present else FLAGS.soft_codes
  guidance = pretrained.guidance(shipped) if shipped and not FLAGS["guidance"].present else FLAGS.guidance
  guide_dir, autoguidance = pretrained.autoguidance(shipped) if shipped else (None, 0.0)
  guide_dir = Path(FLAGS.guide_prior) if FLAGS.guide_prior else guide_dir
  autoguidance = FLAGS.autoguidance if FLAGS["autoguidance"].present else autoguidance
  if (FLAGS.guide_prior and not autoguidance) or (autoguidance and not guide_dir):
    raise app.UsageError("--guide_prior=DIR and --autoguidance > 0 go together (the weaker prior, how far from it)")
  guide = Stage.load(guide_dir) if autoguidance and prior else None  # Only the modes that sample the prior.
  out = Path(FLAGS.out or default_out or Path(FLAGS.workdir or level_dirs[0]) / "samples" / FLAGS.mode)
  settings = sample(
    FLAGS.mode,
    levels,
    prior,
    out,
    FLAGS.seconds,
    FLAGS.num,
    temperatures,
    FLAGS.top_p,
    FLAGS.seed,
    FLAGS.prompt,
    FLAGS.input,
    FLAGS.codes,
    FLAGS.levels_used,
    figures=FLAGS.figures,
    soft_codes=soft_codes,
    keys=FLAGS.key,
    guidance=guidance,
    guide_prior=guide,
    autoguidance=autoguidance,
  )
  print(f"wrote {settings['num']} x {settings['seconds']} s to {out}; open {out / 'index.html'}")
  print(f"samples/s per stage (whole batch): {settings['samples_per_s']}")


if __name__ == "__main__":
  flags.DEFINE_enum("mode", "generate", MODES, "What to do.")
  flags.DEFINE_string("pretrained", None, "A shipped model by name ('piano': pretrained/piano) or its folder.")
  flags.DEFINE_string("workdir", None, "Root with level1/, level2/, ..., prior/.")
  flags.DEFINE_string("levels", None, "Level workdirs, bottom first, comma-separated (instead of --workdir).")
  flags.DEFINE_string("prior", None, "The prior's workdir (with --levels).")
  flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/samples/MODE).")
  flags.DEFINE_float("seconds", 4.0, "Seconds to generate (continue: after the prompt; reconstruct: of the input).")
  flags.DEFINE_integer("num", 1, "Pieces sampled at once (sharded over devices).")
  flags.DEFINE_string("temperature", "1.0", "One value, or the prior's then each level's top-down.")
  flags.DEFINE_float("top_p", None, "Nucleus sampling mass (default: off).")
  flags.DEFINE_bool(
    "soft_codes",
    False,
    "Condition each level on the expected code vector under the prediction of the level above, not on its sampled "
    "code (--pretrained: as its card did, unless given).",
  )
  flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same audio.")
  flags.DEFINE_list(
    "key",
    None,
    "With a key-conditioned prior: the key of every piece ('D minor'), or one per piece, comma-separated "
    "(default: continue: the prompt's; generate: drawn as often as each key is in its training data).",
  )
  flags.DEFINE_float(
    "guidance",
    1.0,
    "With a key-conditioned prior: how far to guide it towards the key (classifier-free guidance; 1: none; "
    "--pretrained: as its card did, unless given).",
  )
  flags.DEFINE_string(
    "guide_prior",
    None,
    "A weaker key-conditioned prior over the same codes (fewer steps or channels) to guide the prior away from "
    "(--pretrained: its guide/ where its card used one).",
  )
  flags.DEFINE_float(
    "autoguidance",
    0.0,
    "How far to move the prior's logits away from --guide_prior's (autoguidance, Karras et al. 2024; 0: none; "
    "--pretrained: as its card did, unless given).",
  )
  flags.DEFINE_string("prompt", None, "Audio file to continue (mode continue).")
  flags.DEFINE_string("input", None, "Audio file to reconstruct (mode reconstruct).")
  flags.DEFINE_string("codes", None, "npz of top-level codes (mode upsample).")
  flags.DEFINE_integer("levels_used", None, "Levels to encode through in reconstruct (default: all).")
  flags.DEFINE_bool("figures", True, "Put each clip's musical figures (notes, spectra) on its page.")
  from argmax_music import cli

  cli.run(main, StackError)
