"""Train one stage: a level of the hierarchy (an ADA), the code prior, or an unconditional WaveNet baseline.

  python -m argmax_music.train --config=configs/cpu_demo.py --workdir=runs/level1 \
      [--config.train.steps=100] [--verbosity=1]

The loop is the same for every stage; the stage's task (`argmax_music.tasks`) supplies the
model, loss and eval. One jitted step over a device mesh (batch split on 'data'); checkpoints
in `workdir/checkpoints` (the latest and the best by eval NLL, resumed automatically with the
data iterator); TensorBoard events in `workdir/tb`, scalars in `workdir/metrics.jsonl`, the
latest eval in `workdir/eval.json`, and `workdir/run.json` recording the config and data.
"""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path

import jax
import numpy as np
from absl import flags, logging
from ml_collections import config_flags

import argmax_music
from argmax_music import audio, checkpoints, files, sharding, stack, train_state, workdir_guard, writer
from argmax_music.config import ConfigError, differing_keys, run_config
from argmax_music.data import clips, dataset, pipeline
from argmax_music.metrics import code_information, scores
from argmax_music.metrics.figures import training_clip_figures
from argmax_music.preemption import Preemption
from argmax_music.tasks import Task, make_task

# ---------------------------------------------------------------------------
# Config checks (the stage's own sections are checked by its task).
# ---------------------------------------------------------------------------


def check_config(config, num_devices: int) -> None:
  """Fail at start, naming the key, on train/eval values that cannot work on these devices."""
  for key in ("train.batch_size", "eval.batch_size"):
    section, name = key.split(".")
    if config[section][name] % num_devices:
      raise ConfigError(f"{key}={config[section][name]} is not divisible by the {num_devices} devices")
  if config.train.on_nan not in ("skip", "stop"):
    raise ConfigError(f"train.on_nan={config.train.on_nan!r}: expected 'skip' or 'stop'")
  if config.train.schedule not in ("cosine", "rsqrt", "constant"):
    raise ConfigError(f"train.schedule={config.train.schedule!r}: expected 'cosine', 'rsqrt' or 'constant'")


def check_compatible(config, task: Task, run: dict | None, workdir: Path) -> None:
  """Refuse to resume a workdir whose checkpoints were made with another model or an older checkpoint format.

  Only the sections the stage uses are compared (a prior's run ignores `model.*`); dtypes may change; a key newer
  than the run is read at its default (`config.run_config`).
  """
  if run is None:
    return
  if run.get("checkpoint_format", 1) < checkpoints.FORMAT and (workdir / checkpoints.CHECKPOINTS).exists():
    raise ConfigError(
      f"{workdir} holds checkpoints written before the checkpoint format changed (version "
      f"{run.get('checkpoint_format', 1)}, now {checkpoints.FORMAT}); sampling and encoding still "
      "load them, but training cannot resume them: retrain in a new --workdir."
    )
  differ = differing_keys(run_config(run["config"]).to_dict(), config.to_dict(), task.sections)
  diff = [f"  {k}: {old!r} -> {new!r}" for k, (old, new) in differ.items() if not k.endswith("dtype")]
  if diff:
    raise ConfigError(
      f"{workdir} holds checkpoints of another model; use a new --workdir or the old "
      "values. Differing keys (checkpoint -> config):\n" + "\n".join(diff)
    )


def codes_source(config, data) -> checkpoints.Trained:
  """The level named by `model.codes_from`, checked to make codes this config's encoder and quantizer can hold."""
  source = config.model.codes_from
  try:
    trained = checkpoints.load_params(source)
  except FileNotFoundError as e:
    raise ConfigError(f"model.codes_from={source}: {e}") from e
  if not trained.task.is_level:
    raise ConfigError(f"model.codes_from={source} is a {trained.config.stage!r} stage, not a level")
  sections = ("model.encoder", "model.quantizer", "model.num_codes")
  differ = differing_keys(trained.config.to_dict(), config.to_dict(), sections)
  if trained.run["signal_classes"] != data.num_classes:
    differ["signal classes"] = (trained.run["signal_classes"], data.num_classes)
  if differ:
    diff = "\n".join(f"  {k}: {old!r} -> {new!r}" for k, (old, new) in differ.items())
    raise ConfigError(f"model.codes_from={source} has another encoder or quantizer (its value -> this config):\n{diff}")
  return trained


def load_data(config) -> dataset.PreparedDataset:
  try:
    return dataset.PreparedDataset(config.data.dir)
  except dataset.DatasetError as e:
    raise ConfigError(f"data.dir: {e}") from e


def run_eval(task: Task, eval_fn, params, model_state, batches, mesh) -> dict:
  """The stage's eval result (NLL in bits per timestep, and what its task adds) over the whole eval set."""
  totals = None
  for local in batches:
    sums = jax.device_get(eval_fn(params, model_state, sharding.global_batch(local, mesh)))
    totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
  return task.summarize(totals)


# ---------------------------------------------------------------------------
# The loop.
# ---------------------------------------------------------------------------


def train(config, workdir: str | Path, devices=None, profile_steps: int = 0) -> dict:
  """Train the stage described by `config` in `workdir` (on `devices`, default all), resuming if it can.

  profile_steps > 0 writes a jax.profiler trace of that many steps (after the first) to workdir/profile.
  """
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  try:
    with workdir_guard.WorkdirLock(workdir), Preemption() as preemption:
      return _train(config, workdir, devices, profile_steps, preemption)
  except (OSError, ValueError) as e:
    if not workdir_guard.is_disk_full(e):
      raise
    raise workdir_guard.disk_full_error(workdir, e) from e


def _train(config, workdir: Path, devices, profile_steps: int, preemption: Preemption) -> dict:
  data = load_data(config)
  mesh = sharding.make_mesh(devices)
  check_config(config, mesh.devices.size)
  task = make_task(config, data.num_classes, data.rate)
  task.check(data)
  run_path = workdir / checkpoints.RUN_FILE
  run = json.loads(run_path.read_text()) if run_path.exists() else None
  check_compatible(config, task, run, workdir)
  # A run id names this stage wherever its folder moves (codes record the id of the level that made them).
  run_id = run["run_id"] if run else uuid.uuid4().hex
  # A level that keeps another's codes records whose they are (read once, so that a resumed run need not find it).
  codes_of = (run or {}).get("codes_of")
  source = codes_source(config, data) if config.model.codes_from and not codes_of else None
  if source:
    codes_of = {"run_id": checkpoints.codes_id(source.run), "workdir": str(Path(config.model.codes_from).resolve())}
  if jax.process_index() == 0:
    files.atomic_write_json(
      run_path,
      {
        "run_id": run_id,
        "config": config.to_dict(),
        "signal_classes": data.num_classes,
        "data_rate": data.rate,
        "sample_rate": data.manifest["sample_rate"],
        "data_made_by": data.manifest["made_by"],
        "version": argmax_music.__version__,
        "checkpoint_format": checkpoints.FORMAT,
      }
      | ({"codes_of": codes_of} if codes_of else {})
      | ({"key_shares": data.key_shares("train")} if task.keyed else {}),
    )

  # Data.
  crop, trim_end = config.data.crop, round(config.data.trim_end_seconds * data.rate)
  train_iter = pipeline.train_iterator(
    data,
    crop,
    config.train.batch_size,
    config.seed,
    jax.process_index(),
    jax.process_count(),
    config.data.threads,
    config.data.prefetch,
    config.data.across_files,
    trim_end,
    task.keyed,
  )
  eval_batches = pipeline.eval_batches(
    data,
    crop,
    config.eval.batch_size,
    config.eval.max_crops,
    jax.process_index(),
    jax.process_count(),
    with_keys=task.keyed,
  )

  # State: restored, or built from shapes directly into its shardings.
  optimizer = train_state.make_optimizer(config.train, task.frozen)
  init_rng, step_rng = jax.random.split(jax.random.key(config.seed), 3)[:2]  # Three: the streams of earlier runs.
  abstract = train_state.abstract_state(task, optimizer, mesh)
  ckpt = checkpoints.Checkpoints(workdir, config.train.keep, config.train.checkpoint_every)
  restored = ckpt.restore_latest(abstract)
  if restored:
    state, data_state, start = restored
    train_iter.set_state(data_state)
    logging.info("resumed from %s at step %d (best eval NLL so far: %s)", ckpt.directory, start, ckpt.best_nll())
  else:
    state, start = train_state.init_state(task, optimizer, abstract, init_rng), 0
    if config.model.codes_from:
      source = source or codes_source(config, data)
      state = train_state.with_modules(state, source.params, source.model_state, task.frozen)
      logging.info("encoder and quantizer from %s (step %d), kept fixed", config.model.codes_from, source.step)
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  logging.info(
    "%s: %.2fM parameters, %d devices, %d processes",
    config.stage,
    n_params / 1e6,
    mesh.devices.size,
    jax.process_count(),
  )

  step_fn = jax.jit(functools.partial(train_state.train_step, task, optimizer), donate_argnums=(0,))
  eval_fn = jax.jit(task.eval_sums)
  metric_writer = writer.MetricWriter(workdir, data.manifest["sample_rate"])
  progress = writer.ProgressReporter(config.train.steps, start)
  eval_result, last, profiling = {}, {}, False
  longest = max(e["length"] for e in data.entries("validation"))
  listening_clip = None  # Reconstructed at every eval (TensorBoard audio, spectrogram and musical figures).
  if task.is_level and data.kind == "mu_law" and config.eval.audio_seconds > 0:
    length = min(int(config.eval.audio_seconds * data.rate), longest)
    listening_clip = clips.pick_clips(data, "validation", 1, length, task.hop)[0].waveform.astype(np.int32)
  # Validation clips with a score (corpus or MAESTRO data): the eval measures what the codes carry about it.
  scored = scores.scored_clips(data, 4, min(int(4 * data.rate), longest), task.hop) if task.is_level else []

  def save(step, force=False, metrics=None):
    if ckpt.latest_step() != step and ckpt.save(step, state, train_iter.get_state(), metrics, force):
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
      ckpt.wait()
      sources = pipeline.batch_sources(
        data, crop, config.train.batch_size, config.seed, step, config.data.across_files, trim_end
      )
      raise FloatingPointError(
        f"non-finite loss or gradient at step {step} (train.on_nan='stop'); last good checkpoint: "
        f"{ckpt.directory} step {ckpt.latest_step()}; the batch's crops: {', '.join(sources)}"
      )
    if step % config.train.log_every == 0 or step == config.train.steps:
      metrics = last = jax.device_get(metrics)
      steps_per_s, eta = progress(step)
      metric_writer.scalars(step, {k: v for k, v in metrics.items() if k != "finite"}, "train")
      metric_writer.scalars(step, {"steps_per_s": steps_per_s}, "perf")
      skipped = int(state.nan_steps)
      logging.info(
        "step %d/%d  loss %.4f  nll %.3f bits%s  %.2f steps/s  %.1f examples/s  %.0f timesteps/s  ETA %s%s",
        step,
        config.train.steps,
        metrics["loss"],
        metrics["nll_bits"],
        task.log_text(metrics),
        steps_per_s,
        steps_per_s * config.train.batch_size,
        steps_per_s * config.train.batch_size * crop,
        eta,
        f"  ({skipped} non-finite steps skipped)" if skipped else "",
      )
    if step % config.train.eval_every == 0 or step == config.train.steps:
      params, model_state = state.eval_variables()
      eval_result = run_eval(task, eval_fn, params, model_state, eval_batches, mesh)
      level = stack.Stage(config, task, *jax.device_get((params, model_state)), step) if task.is_level else None
      if scored:
        codes = [level.encode(np.asarray(c.waveform, np.int32)) for c, _ in scored]
        carried = code_information.score_information(codes, [n for _, n in scored], task.hop / data.rate)
        eval_result["code_information_bits"] = carried["information_bits"]
      metric_writer.scalars(step, eval_result, "eval")
      logging.info("eval at step %d: %s", step, json.dumps(eval_result))
      if jax.process_index() == 0:
        files.atomic_write_json(workdir / "eval.json", {"step": step, **eval_result})
      if listening_clip is not None and jax.process_index() == 0:
        recon = stack.Sampler([level], quiet=True, temperatures=[0.0]).reconstruct(listening_clip)[1][0]
        original = listening_clip[: len(recon)]
        metric_writer.audio_and_spectrogram(step, audio.mu_law_decode(original), audio.mu_law_decode(recon))
        if config.eval.music_every and step % config.eval.music_every == 0:
          metric_writer.scalars(step, training_clip_figures(original, recon, data.rate), "music")
      save(step, force=True, metrics={"nll_bits": eval_result["nll_bits"]})  # Kept while it is the best.
    save(step)
    if preemption.requested(step):
      save(step, force=True)
      break

  save(step, force=True)
  ckpt.close()
  metric_writer.close()
  if preemption.received or step < config.train.steps:
    logging.warning("stopped by signal at step %d; the checkpoint is in %s", step, ckpt.directory)
  return {
    "step": step,
    "eval": eval_result,
    "nan_steps": int(state.nan_steps),
    "train": {k: float(v) for k, v in last.items()},
  }


FLAGS = flags.FLAGS


def main(argv):
  del argv
  sharding.maybe_initialize_distributed(
    FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id, FLAGS.distributed
  )
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
  from argmax_music import cli

  cli.run(main)
