"""Sample music from a trained stack: generate, continue a prompt, reconstruct a file, upsample codes.

  python -m argmax_music.sample --workdir=runs/demo --mode=generate --seconds=10 --num=4 \
      [--temperature=1.0 | --temperature=0.9,1.0] [--top_p=0.95] [--seed=0] [--out=DIR]
  python -m argmax_music.sample --workdir=runs/demo --mode=continue --prompt=FILE --seconds=5
  python -m argmax_music.sample --workdir=runs/demo --mode=reconstruct --input=FILE [--levels_used=1]
  python -m argmax_music.sample --workdir=runs/demo --mode=upsample --codes=FILE.npz

--workdir=ROOT finds ROOT/level1, ROOT/level2, ... and ROOT/prior; or name them with
--levels=DIR1,DIR2 (bottom first) and --prior=DIR. --temperature takes one value for
every stage or a list: the prior first, then each level from the top down. The output
folder holds WAV files, codes (npz), a spectrogram PNG per sample and index.html.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from tqdm import tqdm

from argmax_music import audio, checkpoints, encode, evaluate, listening_page, metrics, sharding
from argmax_music.data import corpus
from argmax_music.metrics import note_f1
from argmax_music.models import generate

MODES = ("generate", "continue", "reconstruct", "upsample")


class StackError(ValueError):
  """Checkpoints that do not form a stack (missing, or trained on another level's codes)."""


class Stage:
  """A trained stage (a level or the prior) loaded from its workdir."""

  def __init__(self, workdir: Path):
    self.workdir = Path(workdir)
    try:
      self.config, self.task, self.params, self.model_state, self.step, self.run = checkpoints.load_params(self.workdir)
    except FileNotFoundError as e:
      raise StackError(str(e)) from e
    self.hop = self.task.hop

  @property
  def trained_on(self) -> dict | None:
    """Provenance of the codes this stage trained on (the level's run id and workdir), None for audio."""
    made_by = self.run["data_made_by"]
    return made_by if made_by.get("tool") == "encode" else None

  def encode(self, signal: np.ndarray) -> np.ndarray:
    """Codes of one signal (windows of the training crop, as when the corpus was encoded)."""
    fn = self.task.encoder(self.params, self.model_state)
    crop = min(self.config.data.crop, len(signal) // self.hop * self.hop)
    return encode.encode_array(fn, signal, crop, self.hop, batch=8)

  def describe(self) -> str:
    return f"{self.workdir} (step {self.step})"


def load_stack(level_dirs: list[Path], prior_dir: Path | None) -> tuple[list[Stage], Stage | None]:
  """Load levels (bottom first) and the prior, checking that each trained on the codes of the one below."""
  levels = [Stage(d) for d in level_dirs]
  prior = Stage(prior_dir) if prior_dir else None
  if not levels:
    raise StackError("no levels given (--workdir with level1/, or --levels)")
  for stage in levels:
    if not stage.task.is_level:
      raise StackError(f"{stage.workdir} is a prior, not a level")
  if prior is not None and prior.task.is_level:
    raise StackError(f"{prior.workdir} is a level, not a prior")
  for below, above in zip([None] + levels, levels + ([prior] if prior else [])):
    source = above.trained_on
    if (source and source["run_id"]) != (below and below.run["run_id"]):
      what = "audio" if source is None else f"the codes of {source['workdir']} (run {source['run_id']})"
      wanted = "audio" if below is None else f"the codes of {below.workdir} (run {below.run['run_id']})"
      raise StackError(f"{above.workdir} was trained on {what}, but in this stack it sits on {wanted}")
  return levels, prior


def find_stack(root: Path) -> tuple[list[Path], Path | None]:
  """ROOT/level1, ROOT/level2, ... and ROOT/prior (if present)."""
  levels = []
  while (root / f"level{len(levels) + 1}").is_dir():
    levels.append(root / f"level{len(levels) + 1}")
  return levels, (root / "prior") if (root / "prior").is_dir() else None


class Sampler:
  """Runs the stack top-down with per-stage temperatures, a progress line per stage, and a seed."""

  def __init__(
    self,
    levels: list[Stage],
    prior: Stage | None,
    temperatures: list[float],
    top_p: float | None,
    seed: int,
    chunk: int = 4000,
  ):
    self.levels, self.prior = levels, prior
    stages = (1 if prior else 0) + len(levels)
    if len(temperatures) not in (1, stages):
      raise ValueError(f"--temperature: give 1 value or {stages} (the prior, then each level top-down)")
    self.temperatures = temperatures * stages if len(temperatures) == 1 else temperatures
    self.top_p, self.seed, self.chunk = top_p, seed, chunk
    self.mesh = sharding.make_mesh()
    self.rates: dict[str, float] = {}

  def _sharding(self, batch: int):
    return sharding.batch_sharding(self.mesh) if batch % self.mesh.devices.size == 0 else None

  def _run(self, name: str, model, params, batch: int, length: int, cond, temperature, prompt, stage_index):
    progress = tqdm(total=length, desc=f"{name:>8}", unit="steps")
    start = time.monotonic()
    rng = jax.random.fold_in(jax.random.key(self.seed), stage_index)
    out = generate.generate(
      model,
      params,
      rng,
      batch,
      length,
      cond,
      temperature,
      self.top_p,
      prompt=None if prompt is None else jnp.asarray(prompt, jnp.int32),
      chunk=self.chunk,
      on_chunk=progress.update,
      sharding=self._sharding(batch),
    )
    progress.close()
    self.rates[name] = length * batch / (time.monotonic() - start)
    return np.asarray(out)

  def prior_codes(self, batch: int, length: int, prompt: np.ndarray | None = None) -> np.ndarray:
    """Top codes from the prior, continuing `prompt` when given."""
    if self.prior is None:
      raise StackError("this mode needs a prior (ROOT/prior, or --prior)")
    model, params = self.prior.task.generator(self.prior.params)
    return self._run("prior", model, params, batch, length, None, self.temperatures[0], prompt, 0)

  def decode(self, codes: np.ndarray, top: int, prompts: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """Decode codes of level `top` (1-based) down to the waveform; returns each level's signal, top first."""
    signals = []
    offset = len(self.temperatures) - len(self.levels)
    for level in range(top, 0, -1):
      stage = self.levels[level - 1]
      cond = stage.task.condition(stage.params, stage.model_state, codes)
      prompt = prompts[level - 1] if prompts else None
      temperature = self.temperatures[offset + len(self.levels) - level]
      model, params = stage.task.generator(stage.params)
      codes = self._run(
        f"level{level}",
        model,
        params,
        codes.shape[0],
        codes.shape[1] * stage.hop,
        cond,
        temperature,
        prompt,
        len(self.levels) + 1 - level,
      )
      signals.append(codes)
    return signals

  def encode_all(self, waveform: np.ndarray, levels: int) -> list[np.ndarray]:
    """Codes at each level 1..levels of a mu-law waveform, bottom first."""
    codes, signal = [], waveform
    for stage in self.levels[:levels]:
      signal = stage.encode(signal)
      codes.append(signal)
    return codes


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


def input_score(path: str | os.PathLike, seconds: float) -> np.ndarray | None:
  """The score's notes in the first `seconds` of an audio file of a corpus or MAESTRO folder (whose CSV,
  one or two folders up, names the file's MIDI), or None when it has no MIDI."""
  path = Path(path).resolve()
  for root in path.parents[:2]:
    found = corpus.midi_for_audio(root).get(os.path.normpath(path.relative_to(root)))
    if found:
      return note_f1.midi_notes(found[0], found[1], seconds)
  return None


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
    score = input_score(score_of, waveforms.shape[1] / sample_rate) if score_of else None
    figures = [evaluate.clip_figures(s, sample_rate, audio.mu_law_decode(o), score) for s, o in zip(signals, originals)]
    listening_page.add_figures(out, figures)
  elif training_dir and Path(training_dir).is_dir():
    seconds = waveforms.shape[1] / sample_rate
    result = evaluate.generated_figures(
      signals, sample_rate, evaluate.training_reference(training_dir, seconds=seconds)
    )
    listening_page.add_figures(out, result["clips"], result["summary"])
  else:
    listening_page.add_figures(out, [evaluate.clip_figures(s, sample_rate) for s in signals])


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
) -> dict:
  """Run one mode and write its outputs to `out` (with each clip's musical figures when `figures`, which
  takes seconds of transcription per second of audio); returns the settings written to index.html."""
  if mode not in MODES:
    raise ValueError(f"--mode={mode!r}: expected one of {MODES}")
  sampler = Sampler(levels, prior, list(temperatures), top_p, seed, chunk)
  rate = levels[0].run["sample_rate"]
  hops = [s.hop for s in levels]
  top_hop = math.prod(hops)
  codes: dict[str, np.ndarray] = {}
  originals = None
  if mode == "generate":
    n_top = math.ceil(seconds * rate / top_hop)
    top = sampler.prior_codes(num, n_top)
    signals = sampler.decode(top, len(levels))
    codes[f"level{len(levels)}"] = top
    waveform = signals[-1][:, : int(round(seconds * rate))]
  elif mode in ("continue", "reconstruct"):
    path = prompt if mode == "continue" else input_file
    if not path:
      raise ValueError(f"--mode={mode} needs --{'prompt' if mode == 'continue' else 'input'}=FILE")
    used = len(levels) if mode == "continue" or levels_used is None else levels_used
    level_hop = math.prod(hops[:used])
    x = audio.mu_law_encode(audio.load_audio(path, rate)).astype(np.int32)
    if mode == "reconstruct":
      x = x[: int(round(seconds * rate))]
    if len(x) < level_hop:
      raise ValueError(f"{path}: {len(x)} samples is shorter than one code ({level_hop} samples)")
    x = x[: len(x) // level_hop * level_hop]
    known = sampler.encode_all(x, used)
    if mode == "reconstruct":
      top = np.repeat(known[-1][None], num, axis=0)
      waveform = sampler.decode(top, used)[-1]
      originals = np.repeat(x[None], num, axis=0)
    else:
      n_top = len(known[-1]) + math.ceil(seconds * rate / top_hop)
      top = sampler.prior_codes(num, n_top, np.repeat(known[-1][None], num, axis=0))
      prompts = [np.repeat(s[None], num, axis=0) for s in [x] + known[:-1]]
      waveform = sampler.decode(top, used, prompts)[-1]
      waveform = waveform[:, : len(x) + int(round(seconds * rate))]
    for i, c in enumerate(known, 1):
      codes[f"prompt_level{i}" if mode == "continue" else f"level{i}"] = c
    codes[f"level{used}"] = top
  else:  # upsample
    if not codes_file:
      raise ValueError("--mode=upsample needs --codes=FILE.npz (the top level's codes)")
    with np.load(codes_file) as f:
      key = f"level{len(levels)}" if f"level{len(levels)}" in f else f.files[0]
      top = np.atleast_2d(f[key]).astype(np.int32)
    if top.max() >= levels[-1].task.num_codes:
      raise ValueError(f"{codes_file}: code {top.max()} is out of range for K={levels[-1].task.num_codes}")
    codes[f"level{len(levels)}"] = top
    waveform = sampler.decode(top, len(levels))[-1]
  settings = {
    "mode": mode,
    "seconds": round(waveform.shape[1] / rate, 3),
    "num": int(waveform.shape[0]),
    "temperatures (prior, levels top-down)": list(sampler.temperatures),
    "top_p": top_p,
    "seed": seed,
    "levels": ", ".join(s.describe() for s in levels),
    "prior": prior.describe() if prior else "-",
    "prompt": prompt or input_file or codes_file or "-",
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
  if FLAGS.levels:
    level_dirs, prior_dir = [Path(d) for d in FLAGS.levels.split(",")], FLAGS.prior and Path(FLAGS.prior)
  elif FLAGS.workdir:
    level_dirs, prior_dir = find_stack(Path(FLAGS.workdir))
  else:
    raise app.UsageError("give --workdir=ROOT or --levels=DIR[,DIR...]")
  levels, prior = load_stack(level_dirs, prior_dir if FLAGS.mode in ("generate", "continue") else None)
  out = Path(FLAGS.out or Path(FLAGS.workdir or level_dirs[0]) / "samples" / FLAGS.mode)
  settings = sample(
    FLAGS.mode,
    levels,
    prior,
    out,
    FLAGS.seconds,
    FLAGS.num,
    [float(t) for t in FLAGS.temperature.split(",")],
    FLAGS.top_p,
    FLAGS.seed,
    FLAGS.prompt,
    FLAGS.input,
    FLAGS.codes,
    FLAGS.levels_used,
    figures=FLAGS.figures,
  )
  print(f"wrote {settings['num']} x {settings['seconds']} s to {out}; open {out / 'index.html'}")
  print(f"samples/s per stage (whole batch): {settings['samples_per_s']}")


if __name__ == "__main__":
  flags.DEFINE_enum("mode", "generate", MODES, "What to do.")
  flags.DEFINE_string("workdir", None, "Root with level1/, level2/, ..., prior/.")
  flags.DEFINE_string("levels", None, "Level workdirs, bottom first, comma-separated (instead of --workdir).")
  flags.DEFINE_string("prior", None, "The prior's workdir (with --levels).")
  flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/samples/MODE).")
  flags.DEFINE_float("seconds", 4.0, "Seconds to generate (continue: after the prompt; reconstruct: of the input).")
  flags.DEFINE_integer("num", 1, "Pieces sampled at once (sharded over devices).")
  flags.DEFINE_string("temperature", "1.0", "One value, or the prior's then each level's top-down.")
  flags.DEFINE_float("top_p", None, "Nucleus sampling mass (default: off).")
  flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same audio.")
  flags.DEFINE_string("prompt", None, "Audio file to continue (mode continue).")
  flags.DEFINE_string("input", None, "Audio file to reconstruct (mode reconstruct).")
  flags.DEFINE_string("codes", None, "npz of top-level codes (mode upsample).")
  flags.DEFINE_integer("levels_used", None, "Levels to encode through in reconstruct (default: all).")
  flags.DEFINE_bool("figures", True, "Put each clip's musical figures (notes, spectra) on its page.")
  from argmax_music import cli

  cli.run(main, StackError)
