"""A run's checkpoints: one Orbax manager and a params-only loader.

`workdir/checkpoints` holds the latest `train.keep` checkpoints and the best by eval NLL (its
metric is stored with it, so it survives a resume); `load_params` restores a stage's parameters
for sampling, encoding and evaluation without its optimizer state. A corrupt latest checkpoint
makes the run fall back to the one before it with a warning. (The workdir's lock and full-disk
errors: `workdir.py`; SIGTERM: `preemption.py`.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import jax
import ml_collections
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils
from orbax.checkpoint.checkpoint_managers import preservation_policy as policies

from argmax_music import files, sharding
from argmax_music.config import run_config
from argmax_music.tasks import Task, make_task

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
# Version 2: one manager with the best kept by metric, and `ema_model_state` in the train state.
FORMAT = 2


def _expected_orbax_warning(record) -> bool:
  """False for Orbax warnings this module causes on purpose (saves without metrics, read-only loading)."""
  message = record.getMessage()
  return "did not provide metrics" not in message and "Given directory is read only" not in message


logging.get_absl_logger().addFilter(_expected_orbax_warning)


class CheckpointError(RuntimeError):
  """No usable checkpoint where one was expected; the message names it."""


def read_run(workdir: str | Path) -> dict:
  path = Path(workdir) / RUN_FILE
  if not path.exists():
    raise FileNotFoundError(f"{path}: no trained stage here (train one with python -m argmax_music.train)")
  return json.loads(path.read_text())


# ---------------------------------------------------------------------------
# The manager.
# ---------------------------------------------------------------------------


class Checkpoints:
  """One Orbax CheckpointManager: the latest `keep` steps and the best by eval NLL, data iterator state included."""

  def __init__(self, workdir: Path, keep: int, every: int = 1, asynchronous: bool = True, read_only: bool = False):
    self.directory = (Path(workdir) / CHECKPOINTS).absolute()
    policy = policies.AnyPreservationPolicy(
      [
        policies.LatestN(n=keep),
        policies.BestN(get_metric_fn=lambda m: -m["nll_bits"], n=1, keep_checkpoints_without_metrics=False),
      ]
    )
    options = ocp.CheckpointManagerOptions(
      save_interval_steps=0 if read_only else every,
      preservation_policy=policy,
      best_fn=lambda m: m["nll_bits"],
      best_mode="min",
      enable_async_checkpointing=asynchronous,
      create=not read_only,
      read_only=read_only,
    )
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def best_step(self) -> int | None:
    """The step of the lowest eval NLL saved so far (None before the first eval)."""
    best = self.manager.best_step()
    return best if best is not None and self.manager.metrics(best) else None

  def best_nll(self) -> float | None:
    best = self.best_step()
    return None if best is None else float(self.manager.metrics(best)["nll_bits"])

  def save(self, step: int, state, data_state, metrics: dict | None = None, force: bool = False) -> bool:
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state or {}))
    return self.manager.save(step, args=args, metrics=metrics, force=force)

  def restore(self, step: int, abstract_state):
    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore())
    restored = self.manager.restore(step, args=args)
    return restored["state"], restored["data"]

  def restore_latest(self, abstract_state) -> tuple[Any, dict, int] | None:
    """(state, data iterator state, step) of the newest checkpoint that restores; None when there is none.

    A checkpoint that fails to restore is moved to workdir/corrupt_checkpoints with a warning naming it,
    and the one before it is tried; when none is left, CheckpointError names the corrupt ones.
    """
    corrupt = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        state, data = self.restore(step, abstract_state)
      except Exception as e:  # Orbax and tensorstore report damaged files with several exception types.
        logging.warning(
          "checkpoint %s/%d does not restore (%s: %s); moving it to %s and trying the one before",
          self.directory,
          step,
          type(e).__name__,
          str(e)[:300],
          self.corrupt_directory,
        )
        corrupt.append(step)
        self._set_aside(step)
        continue
      if corrupt:
        logging.warning("resuming from step %d: the newer checkpoint(s) %s were corrupt", step, corrupt)
      return state, data, step
    if corrupt:
      raise CheckpointError(
        f"checkpoint(s) {corrupt} in {self.directory} do not restore and no earlier one is left (train.keep=1 "
        f"keeps only one); they were moved to {self.corrupt_directory}. Delete the workdir to start over."
      )
    return None

  @property
  def corrupt_directory(self) -> Path:
    return self.directory.parent / "corrupt_checkpoints"

  def _set_aside(self, step: int) -> None:
    if jax.process_index() == 0:
      self.corrupt_directory.mkdir(exist_ok=True)
      target = self.corrupt_directory / str(step)
      shutil.rmtree(target, ignore_errors=True)
      shutil.move(str(self.directory / str(step)), target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
    self.manager.reload()

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


# ---------------------------------------------------------------------------
# Parameters only: sampling, encoding, evaluation, the notebook.
# ---------------------------------------------------------------------------


def codes_id(run: dict) -> str:
  """The run id that names a level's codes: its own, or that of the level whose encoder it kept
  (`model.codes_from`), whose codes it makes."""
  return run.get("codes_of", {}).get("run_id", run["run_id"])


class Trained(NamedTuple):
  config: ml_collections.ConfigDict
  task: Task
  params: Any
  model_state: Any
  step: int
  run: dict


def load_params(workdir: str | Path, which: str | int = "latest", use_ema: bool = True) -> Trained:
  """A trained stage's parameters (the EMA ones by default) and model state; no optimizer state is read.

  which: 'latest', 'best' (lowest eval NLL; the latest when no eval has run) or a step number.
  """
  workdir = Path(workdir)
  run = read_run(workdir)
  config = run_config(run["config"])
  task = make_task(config, run["signal_classes"], run.get("data_rate"))
  checkpoints = Checkpoints(workdir, config.train.keep, read_only=True)
  manager = checkpoints.manager
  step = {"latest": manager.latest_step(), "best": checkpoints.best_step() or manager.latest_step()}.get(which, which)
  if step is None:
    raise FileNotFoundError(f"{checkpoints.directory}: no checkpoint yet")
  if not isinstance(step, int) or step not in manager.all_steps():
    raise FileNotFoundError(f"{checkpoints.directory}: no checkpoint {which!r} (steps: {list(manager.all_steps())})")
  replicated = sharding.replicated(sharding.make_mesh())
  params, model_state = jax.eval_shape(task.init, jax.random.key(0), task.example_batch())
  use_ema = use_ema and bool(config.train.ema_decay)
  old_format = run.get("checkpoint_format", 1) < FORMAT  # No ema_model_state: the live state was used with EMA.
  keys = {
    "params": "ema_params" if use_ema else "params",
    "model_state": "ema_model_state" if use_ema and model_state and not old_format else "model_state",
  }
  item = {keys["params"]: params, keys["model_state"]: model_state}
  item = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), item)
  args = ocp.args.PyTreeRestore(
    item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item), partial_restore=True
  )
  restored = manager.restore(step, args=ocp.args.Composite(state=args))["state"]
  checkpoints.close()
  return Trained(config, task, restored[keys["params"]], restored[keys["model_state"]], step, run)


def export_params(workdir: str | Path, out: str | Path) -> None:
  """Write a stage's latest parameters (the EMA ones when kept) as a params-only stage that `load_params` reads.

  OUT gets the workdir's run.json (its provenance intact, so a stack of exports still checks which codes each stage
  trained on) and one checkpoint holding only parameters and model state: what `pretrained/` ships.
  """
  trained = load_params(workdir)
  out = Path(out)
  if out.exists():
    raise FileExistsError(f"{out}: already there; export into a new folder")
  run = json.loads(json.dumps(trained.run))
  run["config"]["train"]["ema_decay"] = 0.0  # The parameters saved are already the ones to sample with.
  run["exported_from"] = {"workdir": str(workdir), "step": trained.step}
  out.mkdir(parents=True)
  files.atomic_write_json(out / RUN_FILE, run)
  checkpoints = Checkpoints(out, keep=1, asynchronous=False)
  checkpoints.save(trained.step, {"params": trained.params, "model_state": trained.model_state}, {}, force=True)
  checkpoints.close()
