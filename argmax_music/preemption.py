"""SIGTERM during training: save a checkpoint and stop, at the same step on every process.

One process: a SIGTERM handler sets a flag that the loop reads after each step. Several
processes: JAX's coordination service (started by `jax.distributed.initialize`) catches
SIGTERM itself, tells the other processes, and they agree on a step to stop at
(`multihost_utils.reached_preemption_sync_point`), without a device collective in the loop.
Without an agreement, a process that got the signal would leave the loop while the others
wait in the next step's collectives forever (a TPU pod's maintenance events do not always
reach every host at once).
"""

from __future__ import annotations

import signal

import jax
from absl import logging
from jax.experimental import multihost_utils


class Preemption:
  """While entered (`with Preemption() as p:`), `p.requested(step)` says whether to save and stop after `step`.

  After a stop by signal, SIGTERM stays ignored in this process (and in processes it starts): it is on its way out.
  """

  def __init__(self):
    self.received = False
    self._previous = None

  def __enter__(self):
    if jax.process_count() == 1:  # Several processes: JAX's preemption notifier owns SIGTERM.
      self._previous = signal.signal(signal.SIGTERM, self._handler)
    return self

  def __exit__(self, *exc):
    if self._previous is None:
      return
    # After a stop by signal the process is on its way out: a repeated SIGTERM (schedulers send
    # them) must not kill it while it writes its last lines. Otherwise SIGTERM does what it did.
    signal.signal(signal.SIGTERM, signal.SIG_IGN if self.received else self._previous)

  def _handler(self, signum, frame):
    del frame
    if not self.received:
      logging.warning("signal %d: saving a checkpoint at the current step, then exiting", signum)
    self.received = True

  def requested(self, step: int) -> bool:
    """Whether to stop after `step` (the same answer on every process). Call it after every step."""
    if jax.process_count() > 1 and not self.received and multihost_utils.reached_preemption_sync_point(step):
      logging.warning("preemption agreed by every process: saving a checkpoint at step %d, then exiting", step)
      self.received = True
    return self.received
