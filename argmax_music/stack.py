"""A trained stack: its stages (levels bottom first, and the prior), loaded and checked, and the sampler that runs it.

Every tool that uses trained stages goes through here: `sample` and `evaluate` (the CLIs), `encode`
(a level's codes of a dataset), the training loop's eval audio, the experiments, the demo and the
notebook. `Sampler.reconstruct` is the one reconstruction path: encode in windows of the level's
training crop (as the corpus is encoded for the level above), decode top-down at the given temperature.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from argmax_music import checkpoints, sharding
from argmax_music.models import generate
from argmax_music.models.prior import GuidedPrior
from argmax_music.tasks import Task


class StackError(ValueError):
  """Checkpoints that do not form a stack (missing, or trained on another level's codes)."""


# ---------------------------------------------------------------------------
# Encoding in windows of the training crop.
# ---------------------------------------------------------------------------


def windows(length: int, crop: int) -> list[int]:
  """Window starts covering [0, length) with windows of `crop` (the last one flush with the end)."""
  starts = list(range(0, length - crop + 1, crop))
  if starts[-1] + crop < length:
    starts.append(length - crop)
  return starts


def encode_array(encode_fn, x: np.ndarray, crop: int, hop: int, batch: int) -> np.ndarray:
  """Codes (len(x) // hop,) of one signal, encoded window by window in batches."""
  usable = len(x) // hop * hop
  starts = windows(usable, crop)
  codes = np.zeros(usable // hop, np.uint16)
  for i in range(0, len(starts), batch):
    group = starts[i : i + batch]
    chunk = np.stack([x[s : s + crop] for s in group] + [x[:crop]] * (batch - len(group)))
    out = np.asarray(encode_fn(jnp.asarray(chunk, jnp.int32)))
    for s, c in zip(group, out):
      codes[s // hop : (s + crop) // hop] = c
  return codes


# ---------------------------------------------------------------------------
# Stages.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Stage:
  """A trained stage (a level or the prior): its config, task and parameters, from a workdir or from memory."""

  config: ml_collections.ConfigDict
  task: Task
  params: Any
  model_state: Any
  step: int = 0
  run: dict = dataclasses.field(default_factory=dict)
  workdir: Path | None = None

  @classmethod
  def load(cls, workdir: str | Path, which: str | int = "latest") -> Stage:
    """The stage trained in `workdir` (parameters only; the EMA ones when kept)."""
    try:
      trained = checkpoints.load_params(workdir, which)
    except FileNotFoundError as e:
      raise StackError(str(e)) from e
    return cls(*trained, workdir=Path(workdir))

  @property
  def hop(self) -> int:
    return self.task.hop

  @property
  def trained_on(self) -> dict | None:
    """Provenance of the codes this stage trained on (the level's run id and workdir), None for audio."""
    made_by = self.run.get("data_made_by", {})
    return made_by if made_by.get("tool") == "encode" else None

  @functools.cached_property
  def encoder(self):
    """A jitted function: signal (batch, time) -> codes (batch, time / hop); made once, so compiled once a shape."""
    if not self.task.is_level:
      raise StackError(f"{self.describe()}: a {self.config.stage!r} stage has no encoder")
    return self.task.encoder(self.params, self.model_state)

  def encode(self, signal: np.ndarray) -> np.ndarray:
    """Codes of one signal, in windows of the training crop, as when the corpus was encoded."""
    crop = min(self.config.data.crop, len(signal) // self.hop * self.hop)
    return encode_array(self.encoder, signal, crop, self.hop, batch=8)

  def describe(self) -> str:
    return f"{self.workdir or 'in memory'} (step {self.step})"


def load_stack(level_dirs: list[Path], prior_dir: Path | None) -> tuple[list[Stage], Stage | None]:
  """Load levels (bottom first) and the prior, checking that each trained on the codes of the one below."""
  levels = [Stage.load(d) for d in level_dirs]
  prior = Stage.load(prior_dir) if prior_dir else None
  if not levels:
    raise StackError("no levels given (--workdir with level1/, or --levels)")
  for stage in levels:
    if not stage.task.is_level:
      raise StackError(f"{stage.workdir} is a prior, not a level")
  if prior is not None and prior.task.is_level:
    raise StackError(f"{prior.workdir} is a level, not a prior")
  for below, above in zip([None] + levels, levels + ([prior] if prior else [])):
    source = above.trained_on
    made = below and checkpoints.codes_id(below.run)
    if (source and source["run_id"]) != made:
      what = "audio" if source is None else f"the codes of {source['workdir']} (run {source['run_id']})"
      wanted = "audio" if below is None else f"the codes of {below.workdir} (run {made})"
      raise StackError(f"{above.workdir} was trained on {what}, but in this stack it sits on {wanted}")
  return levels, prior


def find_stack(root: Path) -> tuple[list[Path], Path | None]:
  """ROOT/level1, ROOT/level2, ... and ROOT/prior (if present)."""
  root = Path(root)
  levels = []
  while (root / f"level{len(levels) + 1}").is_dir():
    levels.append(root / f"level{len(levels) + 1}")
  return levels, (root / "prior") if (root / "prior").is_dir() else None


def open_stack(root: str | Path, with_prior: bool = True) -> tuple[list[Stage], Stage | None]:
  """The stack in ROOT (level1/, level2/, ..., prior/), loaded and checked; the prior only when asked for."""
  level_dirs, prior_dir = find_stack(Path(root))
  if not level_dirs:
    raise StackError(f"{root}: no level1/ there (a root as the demo makes: level1/, prior/)")
  return load_stack(level_dirs, prior_dir if with_prior else None)


def check_guide(prior: Stage | None, guide: Stage) -> None:
  """A StackError unless `guide` can guide `prior` (autoguidance): both key-conditioned priors of the same codes."""
  if prior is None or guide.task.is_level:
    raise StackError(f"autoguidance needs a prior and a weaker prior to guide it ({guide.workdir} is not)")
  if not (prior.task.keyed and guide.task.keyed):
    raise StackError(f"autoguidance guides key-conditioned priors: {prior.describe()}, {guide.describe()}")
  made = lambda stage: (stage.trained_on or {}).get("run_id")
  if made(guide) != made(prior):
    raise StackError(f"{guide.workdir} was trained on other codes than {prior.workdir}: it cannot guide it")


# ---------------------------------------------------------------------------
# Sampling top-down.
# ---------------------------------------------------------------------------


class Sampler:
  """Runs the stack top-down with per-stage temperatures, a progress line per stage (unless `quiet`), and a seed.

  soft_codes: each level below the top is conditioned on the expected code vector under the distribution the
  level above predicted at each step (its decoder's probabilities, teacher-forced on the codes it sampled) rather
  than on the sampled code alone (the paper's decoding, and the default). Where the level above is unsure, its
  sampled codes are near random and the level below renders them as noise; the expected vector keeps what the
  candidates share.

  guidance: for a key-conditioned prior, the scale of classifier-free guidance towards each piece's key
  (`models.prior.GuidedPrior`); 1 samples the conditioned prior as it is.

  guide_prior, autoguidance: a weaker key-conditioned prior over the same codes (fewer steps or channels) and the
  scale of autoguidance away from it (`GuidedPrior`'s guide; 0: none).
  """

  def __init__(
    self,
    levels: list[Stage],
    prior: Stage | None = None,
    temperatures=(1.0,),
    top_p: float | None = None,
    seed: int = 0,
    chunk: int = 4000,
    quiet: bool = False,
    soft_codes: bool = False,
    guidance: float = 1.0,
    guide_prior: Stage | None = None,
    autoguidance: float = 0.0,
  ):
    self.levels, self.prior = levels, prior
    if guide_prior is not None:
      check_guide(prior, guide_prior)
    temperatures = list(temperatures)
    stages = (1 if prior else 0) + len(levels)
    if len(temperatures) not in (1, stages):
      raise ValueError(f"--temperature: give 1 value or {stages} (the prior, then each level top-down)")
    self.temperatures = temperatures * stages if len(temperatures) == 1 else temperatures
    self.top_p, self.seed, self.chunk, self.quiet, self.soft_codes = top_p, seed, chunk, quiet, soft_codes
    self.guidance, self.guide_prior, self.autoguidance = guidance, guide_prior, autoguidance
    self.mesh = sharding.make_mesh()
    self.rates: dict[str, float] = {}  # Timesteps per second of each stage's last run (the whole batch).
    self.seconds: dict[str, float] = {}  # Wall seconds of each stage's last run.
    self.keys: list[str] = []  # The key of each piece of a key-conditioned prior's last run.

  @property
  def sample_rate(self) -> int:
    return int(self.levels[0].run.get("sample_rate") or self.levels[0].task.data_rate)

  def top_hop(self, levels: int | None = None) -> int:
    """Signal timesteps per code of level `levels` (default: the top level)."""
    return math.prod(s.hop for s in self.levels[: levels or len(self.levels)])

  def _sharding(self, batch: int):
    return sharding.batch_sharding(self.mesh) if batch % self.mesh.devices.size == 0 else None

  def _run(self, name: str, model, params, batch: int, length: int, cond, temperature, prompt, stage_index):
    progress = tqdm(total=length, desc=f"{name:>8}", unit="steps", disable=self.quiet)
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
    self.seconds[name] = time.monotonic() - start
    self.rates[name] = length * batch / self.seconds[name]
    return np.asarray(out)

  def prior_codes(
    self, batch: int, length: int, prompt: np.ndarray | None = None, keys: list[str] | None = None
  ) -> np.ndarray:
    """Top codes from the prior, continuing `prompt` when given; a key-conditioned prior plays each piece in its
    key of `keys` (one for all, or one per piece; default `draw_keys`), which `self.keys` then holds."""
    if self.prior is None:
      raise StackError("this mode needs a prior (ROOT/prior, or --prior)")
    model, params = self.prior.task.generator(self.prior.params)
    cond = None
    if self.prior.task.keyed:
      self.keys = list(keys) * (batch if len(keys) == 1 else 1) if keys else self.draw_keys(batch)
      if len(self.keys) != batch:
        raise ValueError(f"--key: give 1 key or {batch} (one per piece), not {len(keys)}")
      cond = self.prior.task.pieces_condition(self.keys, length)
      if self.guide_prior is not None and self.autoguidance:
        guide, guide_params = self.guide_prior.task.generator(self.guide_prior.params)
        model = GuidedPrior(model, self.guidance, guide, self.autoguidance)
        params = {"prior": params, "guide": guide_params}
      elif self.guidance != 1:
        model, params = GuidedPrior(model, self.guidance), {"prior": params}
    elif keys:
      raise StackError(f"{self.prior.describe()} is not conditioned on a key (prior.condition_on_key): drop --key")
    return self._run("prior", model, params, batch, length, cond, self.temperatures[0], prompt, 0)

  def draw_keys(self, batch: int) -> list[str]:
    """Keys for `batch` pieces, drawn (with the sampler's seed) as often as each is in the prior's training data."""
    shares = self.prior.run.get("key_shares")
    if not shares:
      raise StackError(f"{self.prior.describe()}: run.json records no key_shares to draw keys from; pass --key")
    p = np.asarray(list(shares.values()))
    return list(np.random.default_rng(self.seed).choice(list(shares), batch, p=p / p.sum()))

  def decode(self, codes: np.ndarray, top: int, prompts: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """Decode codes of level `top` (1-based) down to the waveform; returns each level's signal, top first."""
    signals, probabilities = [], None
    offset = len(self.temperatures) - len(self.levels)
    for level in range(top, 0, -1):
      stage = self.levels[level - 1]
      if probabilities is None:
        cond = stage.task.condition(stage.params, stage.model_state, codes)
      else:
        cond = stage.task.expected_condition(stage.params, stage.model_state, probabilities)
      model, params = stage.task.generator(stage.params)
      codes = self._run(
        f"level{level}",
        model,
        params,
        codes.shape[0],
        codes.shape[1] * stage.hop,
        cond,
        self.temperatures[offset + len(self.levels) - level],
        prompts[level - 1] if prompts else None,
        len(self.levels) + 1 - level,
      )
      if self.soft_codes and level > 1:
        start = time.monotonic()
        probabilities = predicted_probabilities(model, params, codes, cond)
        self.seconds[f"level{level} soft codes"] = time.monotonic() - start
      signals.append(codes)
    return signals

  def encode_all(self, waveform: np.ndarray, levels: int) -> list[np.ndarray]:
    """Codes at each level 1..levels of a mu-law waveform, bottom first."""
    codes, signal = [], waveform
    for stage in self.levels[:levels]:
      signal = stage.encode(signal)
      codes.append(signal)
    return codes

  def reconstruct(self, waveforms: np.ndarray, levels: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Encode mu-law `waveforms` (batch, time) through `levels` levels (default all) and decode them again.

    Returns each level's codes (bottom first, each (batch, codes)) and the decoded waveforms (batch, time
    rounded down to a whole number of top codes). The one reconstruction path of the project.
    """
    levels = levels or len(self.levels)
    hop = self.top_hop(levels)
    waveforms = np.atleast_2d(np.asarray(waveforms, np.int32))
    usable = waveforms.shape[1] // hop * hop
    if usable == 0:
      raise ValueError(f"{waveforms.shape[1]} timesteps is shorter than one code of level {levels} ({hop})")
    per_clip = [self.encode_all(w[:usable], levels) for w in waveforms]
    codes = [np.stack([c[i] for c in per_clip]).astype(np.int32) for i in range(levels)]
    return codes, self.decode(codes[-1], levels)[-1]


def predicted_probabilities(decoder, params, signal, cond, window: int | None = None) -> np.ndarray:
  """The decoder's distribution (batch, time, classes) at every step of `signal`, given the signal before it (and
  `cond`; None for a prior): in windows of `window` steps, each with the decoder's receptive field before it, so
  that a long piece fits. None: 2**15 steps, fewer above a batch of 32, so that a window holds at most 2**20 of the
  batch's timesteps (at batch 64 and 2**15 steps, the shipped upsampler's activations asked for 28 GB)."""
  window = window or max(1, min(2**15, 2**20 // signal.shape[0]))
  context, parts = decoder.receptive_field, []
  for start in range(0, signal.shape[1], window):
    lo = max(0, start - context)
    part = None if cond is None else cond[:, lo : start + window]
    chunk = _probabilities(decoder, params, jnp.asarray(signal[:, lo : start + window]), part)
    parts.append(np.asarray(chunk[:, start - lo :]))
  return np.concatenate(parts, axis=1)


@functools.partial(jax.jit, static_argnums=0)
def _probabilities(decoder, params, signal, cond) -> jax.Array:
  return jax.nn.softmax(decoder.apply({"params": params}, signal, cond), axis=-1)
