"""Training step speed: compile time, step time and samples/s for a config, as JSON.

  python benchmarks/train_step.py [--config=cpu_demo --config=tpu_hop20 ...] [--steps=10]

Random mu-law batches of the config's crop and batch size (no data needed), one
jitted step over all devices, as in training.
"""

import argparse
import functools
import importlib
import json
import time

import jax
import numpy as np

from argmax_music import sharding, train


def measure(name: str, steps: int, batch_size: int | None, crop: int | None):
  config = importlib.import_module(f"configs.{name}").get_config()
  if batch_size:
    config.train.batch_size = batch_size
  if crop:
    config.data.crop = crop
  task = train.Task(config, 256)
  optimizer = train.make_optimizer(config.train)
  mesh = sharding.make_mesh()
  rng = np.random.default_rng(0)
  batch = lambda: sharding.global_batch(
      rng.integers(0, 256, (config.train.batch_size, config.data.crop), dtype=np.uint8), mesh)
  state = jax.jit(functools.partial(train.create_state, task, optimizer),
                  out_shardings=sharding.replicated(mesh))(jax.random.key(0), batch())
  step = jax.jit(functools.partial(train.train_step, task, optimizer), donate_argnums=(0,))
  start = time.perf_counter()
  compiled = step.lower(state, batch(), jax.random.key(1)).compile()
  compile_s = time.perf_counter() - start
  state, metrics = compiled(state, batch(), jax.random.key(1))
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch(), jax.random.key(1))
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - start) / steps
  params = sum(x.size for x in jax.tree.leaves(state.params))
  return {"config": name, "params_m": params / 1e6, "batch": config.train.batch_size, "crop": config.data.crop,
          "compile_s": compile_s, "step_s": step_s, "examples_per_s": config.train.batch_size / step_s,
          "timesteps_per_s": config.train.batch_size * config.data.crop / step_s}


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--config", action="append", help="config module in configs/ (repeatable)")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--batch_size", type=int, default=None, help="override the config's batch")
  parser.add_argument("--crop", type=int, default=None, help="override the config's crop")
  args = parser.parse_args()
  results = [measure(name, args.steps, args.batch_size, args.crop) for name in args.config or ["cpu_demo"]]
  print(json.dumps({"benchmark": "train_step", "devices": jax.device_count(),
                    "device": jax.devices()[0].device_kind, "results": results}))


if __name__ == "__main__":
  main()
