"""A training workdir's safety: a lock that keeps a second trainer off it, and full-disk errors that say what survived."""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import jax
from absl import logging

from argmax_music.checkpoints import CHECKPOINTS
from argmax_music.config import ConfigError

LOCK_FILE = "lock.json"


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


class WorkdirLock:
  """`workdir/lock.json` (host and pid of the trainer), taken by process 0 only.

  A lock whose process is gone (same host) is taken over with a warning; a live one refuses the start,
  naming the process. A workdir on a bucket (gs://) is not locked.
  """

  def __init__(self, workdir: str | Path):
    self.workdir = workdir
    self.path = None if str(workdir).startswith("gs:/") else Path(workdir) / LOCK_FILE
    self.held = False

  def __enter__(self):
    if jax.process_index() != 0:
      return self
    if self.path is None:
      logging.warning("%s is on a bucket: no workdir lock (make sure one trainer writes it)", self.workdir)
      return self
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      try:
        holder = json.loads(self.path.read_text())
      except (OSError, ValueError):
        holder = {}
      stale = holder.get("host") == me["host"] and (holder.get("pid") == me["pid"] or not _alive(holder["pid"]))
      if not stale and holder:
        raise ConfigError(
          f"{self.workdir} is in use by process {holder['pid']} on {holder['host']} (lock "
          f"{self.path}); stop that trainer or use another --workdir"
        ) from None
      logging.warning(
        "taking over the stale lock %s of process %s on %s, which is gone",
        self.path,
        holder.get("pid"),
        holder.get("host"),
      )
      fd = os.open(self.path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
    with os.fdopen(fd, "w") as f:
      json.dump(me, f)
    self.held = True
    return self

  def __exit__(self, *exc):
    if self.held:
      self.path.unlink(missing_ok=True)
      self.held = False


def is_disk_full(error: BaseException) -> bool:
  """Whether `error` (or one it was raised from) is ENOSPC."""
  while error is not None:
    if getattr(error, "errno", None) == errno.ENOSPC:
      return True
    # Tensorstore (Orbax's array writer) reports ENOSPC as a ValueError with only its message.
    if isinstance(error, ValueError) and "No space left on device" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def disk_full_error(workdir: Path, error: BaseException) -> OSError:
  """An ENOSPC error naming the workdir and its last complete checkpoint."""
  steps = [int(p.name) for p in (workdir / CHECKPOINTS).glob("*") if p.name.isdigit()]
  last = f"step {max(steps)} in {workdir / CHECKPOINTS} is intact" if steps else "there is no checkpoint yet"
  return OSError(
    errno.ENOSPC,
    f"no space left on the device of {workdir} ({error}); the last complete "
    f"checkpoint: {last}. Free space, then run the same command to resume.",
  )
