"""Train one stage: a level of the hierarchy (an ADA), the code prior, or an unconditional WaveNet baseline.

  python -m argmax_music.train --config=configs/cpu_demo.py --workdir=runs/level1 \
      [--config.train.steps=100]

One jitted train step over a device mesh (batch split on 'data'), Orbax
checkpoints in `workdir/checkpoints` (resumed automatically, the data iterator
included), the best-by-eval-NLL checkpoint in `workdir/best`, TensorBoard events
in `workdir/tb` (the scalars also in `workdir/metrics.jsonl`), and `workdir/run.json`
recording the config and data it ran on.
"""

from __future__ import annotations

import errno
import functools
import json
import logging as py_logging
import math
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import app, flags, logging
from ml_collections import config_flags

import argmax_music
from argmax_music import audio, sharding
from argmax_music.data import dataset, pipeline
from argmax_music.models import build, generate
from argmax_music.models.ada import LOG2, nll_bits
from argmax_music.models.quantizers import usage_and_perplexity
from argmax_music.progress import format_seconds

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
# 'ada': a level (encoder, quantizer, conditional decoder); 'prior': the unconditional model over the top codes;
# 'wavenet': an unconditional WaveNet shaped like model.decoder, the baseline that shows what the codes add.
STAGES = ("ada", "prior", "wavenet")


class ConfigError(ValueError):
  """A config value that cannot work; the message names the key."""


# ---------------------------------------------------------------------------
# Config checks.
# ---------------------------------------------------------------------------


def check_config(config, data: dataset.PreparedDataset, num_devices: int) -> None:
  """Fail at start, naming the key, on values that cannot work with this data and these devices."""
  if config.stage not in STAGES:
    raise ConfigError(f"stage={config.stage!r}: expected one of {STAGES}")
  for key in ("train.batch_size", "eval.batch_size"):
    section, name = key.split(".")
    if config[section][name] % num_devices:
      raise ConfigError(f"{key}={config[section][name]} is not divisible by the {num_devices} devices")
  if config.train.on_nan not in ("skip", "stop"):
    raise ConfigError(f"train.on_nan={config.train.on_nan!r}: expected 'skip' or 'stop'")
  if config.train.schedule not in ("cosine", "rsqrt", "constant"):
    raise ConfigError(f"train.schedule={config.train.schedule!r}: expected 'cosine', 'rsqrt' or 'constant'")
  if config.stage == "ada":
    hop = math.prod(config.model.encoder.strides)
    if config.data.crop % hop:
      raise ConfigError(f"data.crop={config.data.crop} is not a multiple of the hop {hop} "
                        f"(model.encoder.strides={tuple(config.model.encoder.strides)})")
  if config.stage == "prior" and data.kind != "codes":
    raise ConfigError(f"data.dir={config.data.dir} holds {data.kind} data; the prior trains on codes "
                      "(python -m argmax_music.encode)")
  if config.stage == "prior" and config.prior.kind == "transformer" and \
      config.data.crop > config.prior.transformer.max_len:
    raise ConfigError(f"data.crop={config.data.crop} exceeds prior.transformer.max_len="
                      f"{config.prior.transformer.max_len}")


MODEL_KEYS = ("stage", "model", "prior")


def check_compatible(config, run_path: Path) -> None:
  """Refuse to resume a workdir whose checkpoints were made with another model (names the differing keys)."""
  if not run_path.exists():
    return
  old = ml_collections.ConfigDict(json.loads(run_path.read_text())["config"]).to_dict()
  new = config.to_dict()

  def flat(d, prefix=""):
    for k, v in d.items():
      yield from flat(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]

  old_flat, new_flat = dict(flat(old)), dict(flat(new))
  normalise = lambda v: list(v) if isinstance(v, (list, tuple)) else v
  diff = [f"  {k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}" for k in sorted(set(old_flat) | set(new_flat))
          if k.split(".")[0] in MODEL_KEYS and not k.endswith("dtype")
          and normalise(old_flat.get(k)) != normalise(new_flat.get(k))]
  if diff:
    raise ConfigError(f"{run_path.parent} holds checkpoints of another model; use a new --workdir or the old "
                      "values. Differing keys (checkpoint -> config):\n" + "\n".join(diff))


def load_data(config) -> dataset.PreparedDataset:
  try:
    return dataset.PreparedDataset(config.data.dir)
  except dataset.DatasetError as e:
    raise ConfigError(f"data.dir: {e}") from e


# ---------------------------------------------------------------------------
# The task: what is trained (an ADA or the prior) and its loss.
# ---------------------------------------------------------------------------


class Task:
  """The model of a stage and its loss; the train loop is the same for every stage."""

  def __init__(self, config, signal_classes: int):
    self.config, self.signal_classes = config, signal_classes
    self.is_ada = config.stage == "ada"
    if self.is_ada:
      self.model = build.build_ada(config.model, signal_classes)
    elif config.stage == "wavenet":
      self.model = build.build_wavenet(config.model.decoder, signal_classes,
                                       dtype=build.compute_dtype(config.model.dtype))
    else:
      self.model = build.build_prior(config.prior, signal_classes)
    self.num_codes = config.model.num_codes if self.is_ada else signal_classes

  def init(self, rng, batch):
    variables = self.model.init({"params": rng, "restart": rng}, batch)
    variables = dict(flax.core.unfreeze(variables))
    variables.pop("perturbations", None)  # Only tests differentiate through them.
    return variables.pop("params"), variables

  def apply(self, params, model_state, batch, rng=None, train=True):
    """(logits, quantized or None, new model_state)."""
    variables = {"params": params, **model_state}
    if not self.is_ada:
      return self.model.apply(variables, batch), None, model_state
    rngs = {"restart": rng} if rng is not None else None
    if train and model_state:
      (logits, quantized), new_state = self.model.apply(variables, batch, train=True, rngs=rngs,
                                                        mutable=list(model_state))
      return logits, quantized, dict(new_state)
    logits, quantized = self.model.apply(variables, batch, train=train, rngs=rngs)
    return logits, quantized, model_state

  def loss(self, params, model_state, batch, rng):
    logits, quantized, model_state = self.apply(params, model_state, batch, rng)
    nll = nll_bits(logits, batch)
    metrics = {"nll_bits": nll}
    loss = nll * LOG2
    if quantized is not None:
      loss = loss + quantized.aux_loss
      metrics["aux_loss"] = quantized.aux_loss
      metrics.update({k: v for k, v in quantized.stats.items() if k != "histogram"})
    metrics["loss"] = loss
    return loss, (metrics, model_state)

  def eval_sums(self, params, model_state, batch):
    """Sums over one eval batch: NLL bits, timesteps, and the code histogram."""
    logits, quantized, _ = self.apply(params, model_state, batch, train=False)
    sums = {"nll_bits": nll_bits(logits, batch) * batch.size, "timesteps": jnp.asarray(batch.size, jnp.float32)}
    if quantized is not None:
      sums["histogram"] = quantized.stats["histogram"]
    return sums


# ---------------------------------------------------------------------------
# Train state, optimizer and the step.
# ---------------------------------------------------------------------------


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  model_state: Any     # Mutable collections (VQ EMA codebook); {} when there are none.
  ema_params: Any      # Polyak/EMA parameters; {} when train.ema_decay == 0.
  nan_steps: jax.Array  # Steps skipped for a non-finite loss or gradient.


def make_optimizer(train_config) -> optax.GradientTransformation:
  t = train_config
  warmup = optax.linear_schedule(0.0, t.learning_rate, max(t.warmup_steps, 1))
  if t.schedule == "cosine":
    after = optax.cosine_decay_schedule(t.learning_rate, max(t.steps - t.warmup_steps, 1))
  elif t.schedule == "rsqrt":
    after = lambda s: t.learning_rate * jax.lax.rsqrt(1.0 + s / max(t.warmup_steps, 1))
  else:
    after = optax.constant_schedule(t.learning_rate)
  schedule = optax.join_schedules([warmup, after], [t.warmup_steps])
  return optax.chain(optax.clip_by_global_norm(t.grad_clip), optax.adamw(schedule, weight_decay=t.weight_decay))


def create_state(task: Task, optimizer, rng, batch) -> TrainState:
  params, model_state = task.init(rng, batch)
  ema = params if task.config.train.ema_decay else {}
  return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params), model_state, ema,
                    jnp.zeros((), jnp.int32))


def train_step(task: Task, optimizer, state: TrainState, batch, rng):
  """One optimizer step. A non-finite loss or gradient leaves the state unchanged (counted in nan_steps)."""
  rng = jax.random.fold_in(rng, state.step)
  grad_fn = jax.value_and_grad(task.loss, has_aux=True)
  (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  decay = task.config.train.ema_decay
  ema = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, state.ema_params, params) if decay else {}
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  new = TrainState(state.step + 1, params, opt_state, model_state, ema, state.nan_steps)
  keep = lambda a, b: jnp.where(finite, a, b)
  new = new.replace(params=jax.tree.map(keep, new.params, state.params),
                    opt_state=jax.tree.map(keep, new.opt_state, state.opt_state),
                    model_state=jax.tree.map(keep, new.model_state, state.model_state),
                    ema_params=jax.tree.map(keep, new.ema_params, state.ema_params),
                    nan_steps=state.nan_steps + (~finite).astype(jnp.int32))
  metrics.update(grad_norm=grad_norm, param_norm=optax.tree.norm(params), finite=finite)
  return new, metrics


# ---------------------------------------------------------------------------
# Checkpoints.
# ---------------------------------------------------------------------------


def checkpoint_manager(directory: Path, keep: int, every: int = 1, asynchronous: bool = True):
  """An Orbax CheckpointManager keeping the last `keep` checkpoints, saving every `every` steps."""
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=every,
                                         enable_async_checkpointing=asynchronous, create=True)
  return ocp.CheckpointManager(directory.absolute(), options=options)


def save_checkpoint(manager, step: int, state, data_state, force: bool = False) -> bool:
  args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state or {}))
  return manager.save(step, args=args, force=force)


def restore_checkpoint(manager, step: int, abstract_state):
  args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore())
  restored = manager.restore(step, args=args)
  return restored["state"], restored["data"]


def abstract_state(task: Task, optimizer, mesh, example_batch):
  """The state's shapes and (replicated) shardings, without allocating it."""
  shapes = jax.eval_shape(functools.partial(create_state, task, optimizer), jax.random.key(0), example_batch)
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding.replicated(mesh)),
                      shapes)


def load_trained(workdir: str | Path, step: int | None = None, use_ema: bool = True):
  """(config, task, params, model_state, step) of a trained stage in `workdir` (latest step by default)."""
  workdir = Path(workdir)
  run_path = workdir / RUN_FILE
  if not run_path.exists():
    raise FileNotFoundError(f"{run_path}: no trained stage here (train one with python -m argmax_music.train)")
  run = json.loads(run_path.read_text())
  config = ml_collections.ConfigDict(run["config"])
  task = Task(config, run["signal_classes"])
  manager = checkpoint_manager(workdir / "checkpoints", config.train.keep)
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"{workdir / 'checkpoints'}: no checkpoint yet")
  mesh = sharding.make_mesh()
  example = jnp.zeros((1, example_length(config, task)), jnp.int32)
  state, _ = restore_checkpoint(manager, step, abstract_state(task, make_optimizer(config.train), mesh, example))
  manager.close()
  params = state.ema_params if use_ema and state.ema_params else state.params
  return config, task, params, state.model_state, step


def example_length(config, task: Task) -> int:
  hop = task.model.hop if task.is_ada else 1
  return max(hop, config.data.crop // hop * hop)


# ---------------------------------------------------------------------------
# Evaluation and metrics.
# ---------------------------------------------------------------------------


def evaluate(task: Task, eval_fn, params, model_state, batches, mesh) -> dict:
  """NLL in bits per timestep over the whole eval set; for an ADA, code usage/perplexity/dead codes too."""
  totals = None
  for local in batches:
    sums = jax.device_get(eval_fn(params, model_state, sharding.global_batch(local, mesh)))
    totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
  result = {"nll_bits": float(totals["nll_bits"] / totals["timesteps"])}
  if "histogram" in totals:
    usage, perplexity = usage_and_perplexity(jnp.asarray(totals["histogram"]))
    result.update(usage=float(usage), perplexity=float(perplexity),
                  dead_codes=int(np.sum(totals["histogram"] == 0)))
  return result


def reconstruct_clip(task: Task, params, model_state, clip: np.ndarray, rng) -> np.ndarray:
  """Encode a level-1 clip and decode its codes with the cached sampler (temperature 1)."""
  params, model_state = jax.device_get((params, model_state))  # Replicated: run on this process's device.
  variables = {"params": params, **model_state}
  codes = task.model.apply(variables, clip[None], method=task.model.encode)
  cond = task.model.apply(variables, codes, method=task.model.condition)
  return np.asarray(generate.generate(task.model.decoder, params["decoder"], rng, 1, clip.shape[0], cond))[0]


class Writer:
  """TensorBoard events and a JSON-lines copy of the scalars in the workdir (process 0 only)."""

  def __init__(self, workdir: Path, sample_rate: int):
    self.sample_rate = sample_rate
    self.tb = self.metrics = None
    if jax.process_index() == 0:
      from tensorboardX import SummaryWriter
      self.tb = SummaryWriter(str(workdir / "tb"))
      self.metrics = open(workdir / METRICS_FILE, "a")

  def scalars(self, step: int, values: dict, prefix: str) -> None:
    if self.tb:
      values = {k: float(v) for k, v in values.items()}
      for k, v in values.items():
        self.tb.add_scalar(f"{prefix}/{k}", v, step)
      self.metrics.write(json.dumps({"step": step, "kind": prefix, **values}) + "\n")
      self.metrics.flush()

  def audio_and_spectrogram(self, step: int, original: np.ndarray, reconstruction: np.ndarray) -> None:
    if not self.tb:
      return
    self.tb.add_audio("eval/original", original, step, sample_rate=self.sample_rate)
    self.tb.add_audio("eval/reconstruction", reconstruction, step, sample_rate=self.sample_rate)
    self.tb.add_figure("eval/spectrogram", audio.spectrogram_figure(
        {"input": original, "reconstruction": reconstruction}, self.sample_rate), step)

  def close(self):
    if self.tb:
      self.tb.close()
      self.metrics.close()


def read_metrics(workdir: str | Path, kind: str) -> dict[int, dict]:
  """The scalars of one kind ('train', 'eval', 'perf') by step, from workdir/metrics.jsonl.

  A step logged again after a resume keeps its last values; a line cut short by a kill is skipped.
  """
  by_step = {}
  path = Path(workdir) / METRICS_FILE
  for line in path.read_text().splitlines() if path.exists() else []:
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      continue
    if row.pop("kind") == kind:
      by_step[row.pop("step")] = row
  return dict(sorted(by_step.items()))


# ---------------------------------------------------------------------------
# The loop.
# ---------------------------------------------------------------------------


class Preemption:
  """Turns SIGTERM into a flag the loop checks, so it can save and exit cleanly."""

  def __init__(self):
    self.requested = False
    signal.signal(signal.SIGTERM, self._handler)

  def _handler(self, signum, frame):
    del frame
    if not self.requested:
      logging.warning("signal %d: saving a checkpoint at the current step, then exiting", signum)
    self.requested = True


def train(config, workdir: str | Path, devices=None, profile_steps: int = 0) -> dict:
  """Train the stage described by `config` in `workdir` (on `devices`, default all), resuming if it can.

  profile_steps > 0 writes a jax.profiler trace of that many steps (after the first) to workdir/profile.
  """
  workdir = Path(workdir)
  try:
    return _train(config, workdir, devices, profile_steps)
  except (OSError, ValueError) as e:  # Orbax's tensorstore reports a full disk as a ValueError.
    if getattr(e, "errno", None) != errno.ENOSPC and "No space left on device" not in str(e):
      raise
    steps = [int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()]
    last = f"step {max(steps)} in {workdir / 'checkpoints'} is intact" if steps else "there is no checkpoint yet"
    raise OSError(errno.ENOSPC, f"no space left on the device of {workdir} ({e}); the last complete checkpoint: "
                  f"{last}. Free space, then run the same command to resume.") from e


def _train(config, workdir: Path, devices, profile_steps: int) -> dict:
  data = load_data(config)
  mesh = sharding.make_mesh(devices)
  check_config(config, data, mesh.devices.size)
  task = Task(config, data.num_classes)
  workdir.mkdir(parents=True, exist_ok=True)
  run_path = workdir / RUN_FILE
  check_compatible(config, run_path)
  # A run id names this stage wherever its folder moves (codes record the id of the level that made them).
  run_id = json.loads(run_path.read_text())["run_id"] if run_path.exists() else uuid.uuid4().hex
  if jax.process_index() == 0:
    dataset.atomic_write_json(run_path, {
        "run_id": run_id, "config": config.to_dict(), "signal_classes": data.num_classes, "data_rate": data.rate,
        "sample_rate": data.manifest["sample_rate"], "data_made_by": data.manifest["made_by"],
        "version": argmax_music.__version__})

  # Data.
  crop = config.data.crop
  train_iter = pipeline.train_iterator(data, crop, config.train.batch_size, config.seed, jax.process_index(),
                                       jax.process_count(), config.data.threads, config.data.prefetch)
  eval_batches = pipeline.eval_batches(data, crop, config.eval.batch_size, config.eval.max_crops,
                                       jax.process_index(), jax.process_count())

  # State: built from shapes, initialised directly into its shardings.
  optimizer = make_optimizer(config.train)
  rng = jax.random.key(config.seed)
  init_rng, step_rng, sample_rng = jax.random.split(rng, 3)
  example = jnp.zeros((1, crop), jnp.int32)
  abstract = abstract_state(task, optimizer, mesh, example)
  manager = checkpoint_manager(workdir / "checkpoints", config.train.keep, config.train.checkpoint_every)
  # Synchronous: an async save of the same step by two managers would share Orbax's multi-host barrier.
  best_manager = checkpoint_manager(workdir / "best", 1, asynchronous=False)
  start = manager.latest_step()
  if start is not None:
    state, data_state = restore_checkpoint(manager, start, abstract)
    train_iter.set_state(data_state)
    logging.info("resumed from %s at step %d", workdir / "checkpoints", start)
  else:
    init = jax.jit(functools.partial(create_state, task, optimizer),
                   out_shardings=jax.tree.map(lambda a: a.sharding, abstract))
    state = init(init_rng, example)
    start = 0
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  logging.info("%s: %.2fM parameters, %d devices, %d processes", config.stage, n_params / 1e6,
               mesh.devices.size, jax.process_count())

  step_fn = jax.jit(functools.partial(train_step, task, optimizer), donate_argnums=(0,))
  eval_fn = jax.jit(task.eval_sums)
  writer = Writer(workdir, data.manifest["sample_rate"])
  preemption = Preemption()
  best = math.inf
  eval_result, last = {}, {}
  profiling = False
  timer, timer_step = time.monotonic(), start

  def save(step, force=False):
    if manager.latest_step() != step and save_checkpoint(manager, step, state, train_iter.get_state(), force=force):
      logging.info("checkpoint at step %d", step)

  step = start
  while step < config.train.steps:
    batch = sharding.global_batch(next(train_iter), mesh)
    if profile_steps and step == start + 1:
      jax.profiler.start_trace(str(workdir / "profile"))
      profiling = True
    state, metrics = step_fn(state, batch, step_rng)
    step += 1
    if profiling and (step == start + 1 + profile_steps or step == config.train.steps):
      jax.block_until_ready(state)
      jax.profiler.stop_trace()
      profiling = False
      logging.info("profile of steps %d-%d written to %s", start + 2, step, workdir / "profile")
    if config.train.on_nan == "stop" and not bool(metrics["finite"]):
      manager.wait_until_finished()
      sources = pipeline.batch_sources(data, crop, config.train.batch_size, config.seed, step)
      raise FloatingPointError(
          f"non-finite loss or gradient at step {step} (train.on_nan='stop'); last good checkpoint: "
          f"{workdir / 'checkpoints'} step {manager.latest_step()}; the batch's crops: {', '.join(sources)}")
    if step % config.train.log_every == 0 or step == config.train.steps:
      metrics = last = jax.device_get(metrics)
      now = time.monotonic()
      steps_per_s = (step - timer_step) / max(now - timer, 1e-9)
      timer, timer_step = now, step
      writer.scalars(step, {k: v for k, v in metrics.items() if k != "finite"}, "train")
      writer.scalars(step, {"steps_per_s": steps_per_s}, "perf")
      eta = format_seconds((config.train.steps - step) / max(steps_per_s, 1e-9))
      logging.info("step %d/%d  loss %.4f  nll %.3f bits%s  %.2f steps/s  %.1f examples/s  %.0f timesteps/s  "
                   "ETA %s%s", step, config.train.steps, metrics["loss"], metrics["nll_bits"],
                   f"  usage {metrics['usage']:.2f}" if "usage" in metrics else "", steps_per_s,
                   steps_per_s * config.train.batch_size, steps_per_s * config.train.batch_size * crop, eta,
                   f"  ({int(state.nan_steps)} non-finite steps skipped)" if int(state.nan_steps) else "")
    if step % config.train.eval_every == 0 or step == config.train.steps:
      params = state.ema_params or state.params
      eval_result = evaluate(task, eval_fn, params, state.model_state, eval_batches, mesh)
      writer.scalars(step, eval_result, "eval")
      logging.info("eval at step %d: %s", step, json.dumps(eval_result))
      if task.is_ada and data.kind == "mu_law" and config.eval.audio_seconds > 0 and jax.process_index() == 0:
        clip_length = min(int(config.eval.audio_seconds * data.rate) // task.model.hop * task.model.hop, crop)
        original = np.asarray(eval_batches[0][0][:clip_length], np.int32)
        recon = reconstruct_clip(task, params, state.model_state, original, jax.random.fold_in(sample_rng, step))
        writer.audio_and_spectrogram(step, audio.mu_law_decode(original), audio.mu_law_decode(recon))
      if eval_result["nll_bits"] < best:
        best = eval_result["nll_bits"]
        save_checkpoint(best_manager, step, state, train_iter.get_state(), force=True)
    save(step)
    if preemption.requested:
      save(step, force=True)
      break

  save(step, force=True)
  manager.wait_until_finished()
  best_manager.wait_until_finished()
  manager.close()
  best_manager.close()
  writer.close()
  if preemption.requested:
    logging.warning("stopped by signal at step %d; the checkpoint is in %s", step, workdir / "checkpoints")
  return {"step": step, "eval": eval_result, "nan_steps": int(state.nan_steps),
          "train": {k: float(v) for k, v in last.items()}}


FLAGS = flags.FLAGS


def quiet_orbax() -> None:
  """Keep Orbax's per-save INFO lines out of the training log (its warnings still show)."""
  logging.get_absl_handler().addFilter(
      lambda record: record.levelno >= py_logging.WARNING or "orbax" not in record.pathname)


def main(argv):
  del argv
  quiet_orbax()
  sharding.maybe_initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                                        FLAGS.distributed)
  result = train(FLAGS.config, FLAGS.workdir, profile_steps=FLAGS.profile_steps)
  print(json.dumps(result))


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py), with overrides.", lock_config=True)
  flags.DEFINE_string("workdir", None, "Where checkpoints, events and run.json go.", required=True)
  flags.DEFINE_string("coordinator_address", None, "Multi-process: the coordinator's host:port.")
  flags.DEFINE_integer("num_processes", None, "Multi-process: how many processes.")
  flags.DEFINE_integer("process_id", None, "Multi-process: this process's index.")
  flags.DEFINE_integer("profile_steps", 0, "Write a jax.profiler trace of this many steps to WORKDIR/profile.")
  flags.DEFINE_bool("distributed", False, "Multi-process from the environment (TPU pod slice, SLURM).")
  flags.mark_flag_as_required("config")
  app.run(main)
