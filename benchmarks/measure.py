"""What the benchmarks share: timing a jitted call, a compiled train step, the cached sampler and the stack's real-time
factor; memory (XLA's plan, the device's peak, the host's RSS); the devices' peak FLOP/s."""

from __future__ import annotations

import functools
import gzip
import json
import re
import resource
import statistics
import time
from collections import defaultdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

# Dense matmul peaks in FLOP/s by compute dtype: the first entry whose key is in JAX's `device_kind`. NVIDIA's SXM
# parts (the A100 PCIe has the same peaks); float32 matmuls run as TF32 at XLA's default precision. TPUs run float32
# matmuls as one bf16 pass at the default precision, so their float32 peak is the bf16 one.
PEAKS = (
  ("H200", {"bfloat16": 989e12, "float32": 494.5e12}),
  ("H100", {"bfloat16": 989e12, "float32": 494.5e12}),
  ("A100", {"bfloat16": 312e12, "float32": 156e12}),
  ("TPU v5 lite", {"bfloat16": 197e12, "float32": 197e12}),
  ("TPU v5e", {"bfloat16": 197e12, "float32": 197e12}),
  ("TPU v6 lite", {"bfloat16": 918e12, "float32": 918e12}),
  ("TPU v6e", {"bfloat16": 918e12, "float32": 918e12}),
  ("TPU v5", {"bfloat16": 459e12, "float32": 459e12}),  # v5p ("TPU v5"; v5e is "TPU v5 lite", above).
  ("TPU v4", {"bfloat16": 275e12, "float32": 275e12}),
)
# Parts of the same names at lower clocks and power, whose peaks are not in PEAKS.
OTHER_PARTS = ("H100 PCIe", "H100 NVL", "H200 NVL")


def timed(fn, *args, repeats: int = 1) -> float:
  """Seconds per call of fn(*args), after one call that compiles and warms up."""
  jax.block_until_ready(fn(*args))
  start = time.perf_counter()
  for _ in range(repeats):
    jax.block_until_ready(fn(*args))
  return (time.perf_counter() - start) / repeats


def compiled_memory_mb(compiled) -> float | None:
  """The memory XLA plans for one call of a compiled function: arguments, outputs and temporaries, in MiB."""
  analysis = compiled.memory_analysis()
  if analysis is None:
    return None
  total = (
    analysis.argument_size_in_bytes
    + analysis.output_size_in_bytes
    + analysis.temp_size_in_bytes
    - analysis.alias_size_in_bytes
  )
  return total / 2**20


def cost_analysis(compiled) -> dict:
  """XLA's cost analysis of a compiled program (FLOPs, bytes accessed, ...): {} where the backend has none."""
  cost = compiled.cost_analysis()
  return (cost[0] if isinstance(cost, (list, tuple)) else cost) or {}


def peak_memory_mb() -> dict:
  """The process's peak host RSS, and the first device's peak allocation where the backend reports it."""
  result = {"host_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    result["device_peak_mb"] = stats["peak_bytes_in_use"] / 2**20
  return result


def peak_flops(device_kind: str, dtype: str) -> float | None:
  """The dense peak FLOP/s of `dtype` ('bfloat16' or 'float32') matmuls on this device kind; None when unknown."""
  if any(part in device_kind for part in OTHER_PARTS):
    return None
  return next((peaks[dtype] for key, peaks in PEAKS if key in device_kind), None)


def is_out_of_memory(error: BaseException) -> bool:
  """Whether an exception is XLA's (or the host's) out-of-memory error."""
  text = str(error)
  return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


class TrainStep:
  """The jitted train step of a config (`train_state.train_step`, state and batch sharded as in training), compiled,
  with its initial state and one random batch of `signal_classes`-way tokens on the devices: no data needed."""

  def __init__(self, config, signal_classes: int, mesh):
    from argmax_music import sharding, tasks, train_state

    task = tasks.make_task(config, signal_classes)
    optimizer = train_state.make_optimizer(config.train)
    dtype = np.uint8 if signal_classes <= 256 else np.uint16  # As the prepared datasets store them.
    tokens = np.random.default_rng(0).integers(0, signal_classes, (config.train.batch_size, config.data.crop), dtype)
    self.batch = sharding.global_batch(tokens, mesh)
    self.state = train_state.init_state(
      task, optimizer, train_state.abstract_state(task, optimizer, mesh), jax.random.key(0)
    )
    self.params = sum(x.size for x in jax.tree.leaves(self.state.params))
    step = jax.jit(functools.partial(train_state.train_step, task, optimizer), donate_argnums=(0,))  # As train.py.
    start = time.perf_counter()
    self.compiled = step.lower(self.state, self.batch, jax.random.key(1)).compile()
    self.compile_s = time.perf_counter() - start

  def run(self, steps: int) -> None:
    metrics = None
    for _ in range(steps):
      self.state, metrics = self.compiled(self.state, self.batch, jax.random.key(1))
    jax.block_until_ready(metrics)

  def seconds(self, steps: int) -> float:
    """Seconds per step over `steps` steps, after one warm-up step."""
    self.run(1)
    start = time.perf_counter()
    self.run(steps)
    return (time.perf_counter() - start) / steps


class CachedSampler:
  """`generate.generate` (the cached sampler) of a WaveNet at one batch and length, conditioned on random
  conditioning: compiled at construction (`first_call_s`), then timed one run at a time."""

  def __init__(self, model, params, batch: int, length: int):
    from argmax_music.models import generate

    self.model, self.params, self.batch, self.length = model, params, batch, length
    shape = (batch, length, model.cond_channels)
    self.cond = jax.random.normal(jax.random.key(1), shape) if model.cond_channels else None
    self.run = lambda: jax.block_until_ready(
      generate.generate(model, params, jax.random.key(2), batch, length, self.cond)
    )
    self.first_call_s = self.seconds()  # Compile and warm up.

  def seconds(self) -> float:
    start = time.perf_counter()
    self.run()
    return time.perf_counter() - start


def hierarchy(level_spec: str, prior_spec: str, seconds: float, repeats: int) -> dict:
  """Real-time factor of a stack at batch 1, built from configs with random parameters: the prior's codes, the
  level's conditioning on them, then its decoder samples the audio (as `argmax_music.sample.Sampler` does)."""
  from argmax_music import config as config_lib
  from argmax_music.models import build, generate

  config, prior_config = config_lib.load(level_spec), config_lib.load(prior_spec)
  ada = build.build_ada(config.model, 256)
  prior = build.build_prior(prior_config.prior, config.model.num_codes)
  ada_variables = ada.init(jax.random.key(0), jnp.zeros((1, 4 * ada.hop), jnp.int32), train=False)  # + VQ state.
  prior_params = prior.init(jax.random.key(1), jnp.zeros((1, 16), jnp.int32))["params"]
  codes_length = round(seconds * 16000 / ada.hop)
  condition = jax.jit(lambda codes: ada.apply(ada_variables, codes, method=ada.condition))

  def run():
    start = time.perf_counter()
    codes = jax.block_until_ready(generate.generate(prior, prior_params, jax.random.key(2), 1, codes_length))
    mid = time.perf_counter()
    cond = condition(codes)
    audio = jax.block_until_ready(
      generate.generate(
        ada.decoder, ada_variables["params"]["decoder"], jax.random.key(3), 1, codes_length * ada.hop, cond
      )
    )
    return mid - start, time.perf_counter() - mid, audio.shape[1]

  start = time.perf_counter()
  run()  # Compile and warm up.
  first_call_s = time.perf_counter() - start
  runs = [run() for _ in range(repeats)]
  prior_s, decoder_s = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
  total_s = statistics.median(r[0] + r[1] for r in runs)
  return {
    "config": level_spec,
    "prior_config": prior_spec,
    "params": "random (untrained): speed only",
    "batch": 1,
    "audio_seconds": runs[0][2] / 16000,
    "hop": ada.hop,
    "first_call_s": first_call_s,
    "prior_seconds": prior_s,
    "conditioning_and_decoder_seconds": decoder_s,
    "total_seconds": total_s,
    "real_time_factor": runs[0][2] / 16000 / total_s,
  }


def trace_top_ops(trace_dir: Path, count: int = 10) -> dict:
  """Total time by op name in the newest Perfetto trace under trace_dir: the device's ops (its 'XLA Ops' line
  where there is one), else the host's XLA threads (a CPU backend)."""
  paths = sorted(Path(trace_dir).rglob("perfetto_trace.json.gz"), key=lambda p: p.stat().st_mtime)
  if not paths:
    raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
  path = paths[-1]
  trace = json.loads(gzip.decompress(path.read_bytes()))
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  processes, threads = {}, {}
  for e in events:
    if e.get("ph") == "M" and e.get("name") == "process_name":
      processes[e["pid"]] = e["args"]["name"]
    elif e.get("ph") == "M" and e.get("name") == "thread_name":
      threads[e["pid"], e["tid"]] = e["args"]["name"]
  devices = {pid for pid, name in processes.items() if "/device:" in name}
  lines = {key: name for key, name in threads.items() if key[0] in devices}
  if any(name == "XLA Ops" for name in lines.values()):
    chosen, source = {key for key, name in lines.items() if name == "XLA Ops"}, "device, XLA Ops"
  elif lines:
    chosen = {key for key, name in lines.items() if not re.search("Module|Step", name)}
    source = "device, every stream"
  else:
    chosen = {key for key, name in threads.items() if name.startswith("tf_XLA")}
    source = "host, XLA's threads (no device in the trace)"
  totals, counts = defaultdict(float), defaultdict(int)
  for e in events:
    if e.get("ph") == "X" and (e["pid"], e["tid"]) in chosen and not re.match("end: |ThunkExecutor", e["name"]):
      totals[e["name"]] += e.get("dur", 0.0)
      counts[e["name"]] += 1
  busy = sum(totals.values())
  if not busy:
    raise ValueError(f"no op events in {path} ({source})")
  ranked = sorted(totals, key=totals.get, reverse=True)[:count]
  return {
    "trace": str(path),
    "source": source,
    "busy_ms": busy / 1e3,
    "top_ops": [{"name": n, "ms": totals[n] / 1e3, "share": totals[n] / busy, "count": counts[n]} for n in ranked],
  }
