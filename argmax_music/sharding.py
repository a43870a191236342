"""Device mesh and shardings: one jitted program over a 'data' axis, from 1 CPU to a TPU pod."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def maybe_initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  auto: bool = False,
) -> None:
  """`jax.distributed.initialize` for multi-process runs.

  With an explicit coordinator (e.g. several CPU processes on one machine), or with auto=True,
  where JAX reads the cluster from the environment (Cloud TPU pod slices, SLURM).
  CPU processes exchange collectives through gloo.
  """
  if coordinator_address or num_processes or auto:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh, axis 'data' (the batch is split over it, parameters replicated), over all devices by default."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def global_batch(local, mesh):
  """A global array (or a dict of them), batch-sharded over the mesh, from this process's part of the batch."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(batch_sharding(mesh), np.asarray(x)), local)


def machine() -> str:
  """This host's cores and CPU model, its JAX devices and JAX's version, as results and model cards record them."""
  cpu = platform.processor() or "unknown CPU"
  if Path("/proc/cpuinfo").exists():
    names = [
      line.split(":", 1)[1].strip()
      for line in Path("/proc/cpuinfo").read_text().splitlines()
      if line.startswith("model name")
    ]
    cpu = names[0] if names else cpu
  device = jax.devices()[0]
  return (
    f"{os.cpu_count()} cores ({cpu}), {jax.device_count()} x {device.platform} device "
    f"({device.device_kind}), JAX {jax.__version__}"
  )
