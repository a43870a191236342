"""What a training step costs on a pod, from XLA's compiled cost and memory analyses, with no accelerator.

  python benchmarks/cost_model.py [--config=configs/paper.py --config=...] [--meshes=8,64]
      [--out=results/cost_model.json]

For each config (default: `paper` levels 1 and 2 and its prior, `tpu_hop20` level 1 and its prior)
the real jitted train step (`train_state.train_step`, state and batch sharded as in training) is lowered
from abstract shapes and compiled for meshes of 8 and 64 forced CPU devices, each mesh size in its own
process (`--xla_force_host_platform_device_count` is read when JAX starts). Per device it reports
FLOPs, transcendentals and bytes accessed per step (`cost_analysis`) and argument / output / temporary
memory (`memory_analysis`) at the config's global batch. On the 8-device mesh a second compile at half
the per-device batch gives memory as an affine function of the batch (fixed + per example), hence the
largest per-device batch that fits in a TPU v5e's 16 GiB and an H100's 80 GiB; the 64-device compile
checks that fit. XLA's FLOPs are set against the analytic count of `flops.py` (the decoder or prior
WaveNet alone, and with the encoder and upsampler), and the step time is projected from published
peaks: max(FLOPs / (40% of peak), bytes accessed / bandwidth), and the days of `train.steps`, on a
v5e-64 slice (the 64-device figures) and on 8 x H100 (the 8-device figures). Prints JSON; writes `--out`.

A step's cost depends on the classes of the signal the stage models: 256 for mu-law audio, the level
below's K for codes. `flops.SIGNAL_CLASSES` gives them for the default configs; any other config's are read
from the manifest of its prepared `data.dir`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from absl import flags

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `flops`, `measure`, when run as a script or imported.
import flops  # noqa: E402
import measure  # noqa: E402

# Published per-chip peaks: bf16 dense FLOP/s, memory bandwidth (bytes/s), memory (GiB); the slice and its mesh.
HARDWARE = {
  "v5e-64": {"chip": "TPU v5e", "peak_flops": 197e12, "bandwidth": 819e9, "memory_gib": 16, "devices": 64},
  "8xH100": {"chip": "H100 SXM", "peak_flops": 989e12, "bandwidth": 3.35e12, "memory_gib": 80, "devices": 8},
}
UTILISATION = 0.4  # Of peak FLOP/s, for the compute-bound time.
FIT_MESH = 8  # The mesh whose two compiles give memory as a function of the batch.

flags.DEFINE_multi_string("config", list(flops.SIGNAL_CLASSES), "Config file[:variant] (repeatable).")
flags.DEFINE_list("meshes", ["8", "64"], "Forced CPU device counts, one process each.")
flags.DEFINE_string("out", "results/cost_model.json", "Where the JSON goes ('' for nowhere).")
flags.DEFINE_integer("devices", 0, "Internal: compile on this many devices in this process and print JSON.")
FLAGS = flags.FLAGS


def compile_step(spec: str, mesh, per_device_batch: int) -> dict:
  """XLA's per-device cost and memory of the train step of `spec` at this per-device batch."""
  import jax
  import jax.numpy as jnp

  from argmax_music import config as config_lib
  from argmax_music import sharding, tasks, train_state

  config = config_lib.load(spec)
  task = tasks.make_task(config, flops.signal_classes(spec, config))
  optimizer = train_state.make_optimizer(config.train)
  state = train_state.abstract_state(task, optimizer, mesh)
  batch = jax.ShapeDtypeStruct(
    (per_device_batch * mesh.devices.size, config.data.crop), jnp.int32, sharding=sharding.batch_sharding(mesh)
  )
  step = jax.jit(functools.partial(train_state.train_step, task, optimizer), donate_argnums=(0,))  # As train.py.
  start = time.perf_counter()
  compiled = step.lower(state, batch, jax.random.key(0)).compile()
  seconds = time.perf_counter() - start
  cost = measure.cost_analysis(compiled)
  memory = compiled.memory_analysis()
  sizes = {
    "argument_bytes": memory.argument_size_in_bytes,
    "output_bytes": memory.output_size_in_bytes,
    "temp_bytes": memory.temp_size_in_bytes,
    "alias_bytes": memory.alias_size_in_bytes,
  }
  return {
    "per_device_batch": per_device_batch,
    "flops": cost["flops"],
    "transcendentals": cost.get("transcendentals", 0.0),
    "bytes_accessed": cost["bytes accessed"],
    **sizes,
    "total_bytes": sizes["argument_bytes"] + sizes["output_bytes"] + sizes["temp_bytes"] - sizes["alias_bytes"],
    "params": sum(math.prod(x.shape) for x in jax.tree.leaves(state.params)),
    "compile_s": seconds,
  }


def worker(devices: int, specs: list[str]) -> dict:
  """Compiles on a mesh of `devices` forced CPU devices: the config's batch, and half of it on the fit mesh."""
  import jax

  from argmax_music import config as config_lib
  from argmax_music import sharding

  mesh = sharding.make_mesh(jax.devices()[:devices])
  results = {}
  for spec in specs:
    batch = max(config_lib.load(spec).train.batch_size // devices, 1)  # At least one example per device.
    results[spec] = [compile_step(spec, mesh, batch)]
    if devices == FIT_MESH:
      results[spec].append(compile_step(spec, mesh, batch // 2 if batch > 1 else 2))
  return results


def run_mesh(devices: int, specs: list[str]) -> dict:
  """`worker` in a fresh process whose JAX sees `devices` CPU devices."""
  env = dict(
    os.environ,
    JAX_PLATFORMS="cpu",
    XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}",
  )
  command = [sys.executable, __file__, f"--devices={devices}", *(f"--config={s}" for s in specs)]
  done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
  if done.returncode:
    raise RuntimeError(f"compiling on {devices} devices failed:\n{done.stderr[-4000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def memory_fit(first: dict, second: dict) -> dict:
  """Per-device memory = fixed + per_example x batch, from two compiles; the largest batch per memory size."""
  per_example = (second["total_bytes"] - first["total_bytes"]) / (
    second["per_device_batch"] - first["per_device_batch"]
  )
  fixed = first["total_bytes"] - per_example * first["per_device_batch"]
  largest = {name: max(int((hw["memory_gib"] * 2**30 - fixed) // per_example), 0) for name, hw in HARDWARE.items()}
  return {"fixed_bytes": fixed, "per_example_bytes": per_example, "largest_per_device_batch": largest}


def project(compiled: dict, hardware: dict, steps: int) -> dict:
  """Step time from the roofline: max(compute at UTILISATION of peak, bytes accessed at full bandwidth)."""
  compute_s = compiled["flops"] / (UTILISATION * hardware["peak_flops"])
  memory_s = compiled["bytes_accessed"] / hardware["bandwidth"]
  step_s = max(compute_s, memory_s)
  return {
    "compute_bound_s": compute_s,
    "memory_bound_s": memory_s,
    "step_s": step_s,
    "bound": "compute" if compute_s >= memory_s else "memory",
    "days": steps * step_s / 86400,
    "fits": compiled["total_bytes"] <= hardware["memory_gib"] * 2**30,
  }


def summarize(spec: str, by_mesh: dict) -> dict:
  """One config's figures from its compiles on each mesh ({'8': [at the config's batch, at half], '64': [...]})."""
  from argmax_music import config as config_lib

  config = config_lib.load(spec)
  macs = flops.analytic_macs(config, flops.signal_classes(spec, config))
  result = {
    "config": spec,
    "stage": config.stage,
    "crop": config.data.crop,
    "global_batch": config.train.batch_size,
    "steps": config.train.steps,
    "dtype": config.prior.dtype if config.stage == "prior" else config.model.dtype,
    "analytic_forward_macs_per_timestep": macs,
    "meshes": {},
  }
  for devices, compiles in by_mesh.items():
    at_batch = compiles[0]
    timesteps = at_batch["per_device_batch"] * config.data.crop
    result["meshes"][devices] = {
      **at_batch,
      "analytic_flops_wavenet": flops.train_flops(macs["wavenet"], timesteps),
      "analytic_flops_total": flops.train_flops(macs["total"], timesteps),
      "xla_over_analytic": at_batch["flops"] / flops.train_flops(macs["total"], timesteps),
    }
  fit = result["memory_fit"] = memory_fit(*by_mesh[str(FIT_MESH)])
  for devices, compiles in by_mesh.items():  # How well the affine fit predicts the other compiles.
    predicted = fit["fixed_bytes"] + fit["per_example_bytes"] * compiles[0]["per_device_batch"]
    result["meshes"][devices]["fit_error"] = compiles[0]["total_bytes"] / predicted - 1
  result["projection"] = {
    name: {
      "per_device_batch": by_mesh[str(hw["devices"])][0]["per_device_batch"],
      **project(by_mesh[str(hw["devices"])][0], hw, config.train.steps),
    }
    for name, hw in HARDWARE.items()
    if str(hw["devices"]) in by_mesh
  }
  return result


def main(argv):
  del argv
  if FLAGS.devices:
    print(json.dumps(worker(FLAGS.devices, FLAGS.config)))
    return
  if str(FIT_MESH) not in FLAGS.meshes:
    raise ValueError(f"--meshes must include {FIT_MESH} (the memory fit)")
  start = time.perf_counter()
  meshes = {str(n): run_mesh(int(n), FLAGS.config) for n in FLAGS.meshes}
  results = [summarize(spec, {n: meshes[n][spec] for n in meshes}) for spec in FLAGS.config]
  report = {
    "benchmark": "cost_model",
    "backend": "cpu (forced host devices)",
    "utilisation": UTILISATION,
    "hardware": HARDWARE,
    "results": results,
    "seconds": time.perf_counter() - start,
    "load_average": os.getloadavg(),
  }
  text = json.dumps(report, indent=1)
  if FLAGS.out:
    Path(FLAGS.out).parent.mkdir(parents=True, exist_ok=True)
    Path(FLAGS.out).write_text(text + "\n")
  print(text)


if __name__ == "__main__":
  from argmax_music import cli

  cli.run(main)
