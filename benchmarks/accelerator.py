"""Training MFU and sampling speed on the first JAX device, as one JSON file: results/accelerator_<device>.json.

  python benchmarks/accelerator.py [--out=PATH] [--profile] [--deadline_s=480] [--sections=training,...] [--smoke]

Training, on one device: level 1 of `tpu_hop20` (bf16), level 1 of `paper` (float32) and the `tpu_hop20` prior,
the real jitted train step on random tokens (`measure.TrainStep`), from --start_batch (32: the cost model puts the
largest that fits in an H200 between 32 and 64) doubling until XLA runs out of memory or plans more than the
device's memory limit (halving instead if the first batch does not fit), --max_batch, or the configuration's time.
Per batch: compile seconds, steps/s, timesteps/s, FLOPs per step (analytic, `flops.analytic_macs`, and XLA's
compiled count), MFU = analytic FLOPs x steps/s / the device's dense peak for the compute dtype (`measure.PEAKS`:
bf16, or TF32 for float32 on NVIDIA GPUs; null for a device kind not in the table unless --peak_tflops gives one),
and memory (XLA's plan for a step; the device's peak so far). --profile: a `jax.profiler` trace of a few steps of
the first configuration at its first batch that fits, and its top ops by time.
Sampling: samples/s of the cached sampler (`generate.generate`) for benchmarks/sampling.py's 20-layer 64-channel
decoder and the paper's 30-layer 128-channel one at batches 1, 16, 64, 256; the `tpu_hop20` stack (prior codes,
then level 1's decoder) at batch 1 as a real-time factor (16,000 samples/s is real time). Parameters are random.
Time: each configuration gets --budget_s, and with --deadline_s no more than its share of what is left (training
and sampling configurations two shares, the stack one). The JSON is rewritten atomically after each configuration,
so a killed run keeps what it measured. --smoke: the same code on configs/tiny.py's shapes, about a minute on a CPU.
Exit status 1 if a configuration failed.
"""

from __future__ import annotations

import functools
import gc
import os
import platform
import re
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

from absl import app, flags, logging

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `flops` and `measure`, when run as a script.
import flops  # noqa: E402
import measure  # noqa: E402

REAL_TIME = 16000  # Samples per second of audio.
# (config, overrides, signal classes: None for flops.SIGNAL_CLASSES) of each measurement, and the smoke run's.
TRAIN = (("configs/tpu_hop20.py", (), None), ("configs/paper.py", (), None), ("configs/tpu_hop20.py:prior", (), None))
SAMPLE = (("configs/base.py", ("model.upsampler.channels=32",)), ("configs/paper.py", ()))  # sampling.py's decoder.
HIERARCHY = ("configs/tpu_hop20.py", "configs/tpu_hop20.py:prior")
SMOKE_TRAIN = (
  ("configs/tiny.py", ("model.dtype=bfloat16",), 256),
  ("configs/tiny.py", (), 256),
  ("configs/tiny.py:prior", ("prior.dtype=bfloat16",), 16),
)
SMOKE_SAMPLE = (("configs/tiny.py", ()),)
SMOKE_HIERARCHY = ("configs/tiny.py", "configs/tiny.py:prior")
FAST_COMPILE = "--xla_backend_optimization_level=0"  # The smoke run's tiny programs: a third of the compile time.
# Flags the smoke run sets unless given.
SMOKE = dict(
  start_batch=2, max_batch=4, memory_limit_mb=3.0, steps=2, sample_batches=["1", "4"], sample_length=128,
  hierarchy_seconds=0.02, repeats=1, budget_s=60.0,
)  # fmt: skip

flags.DEFINE_string("out", "", "The JSON's path, or a folder for accelerator_<device kind>.json (default: results/).")
flags.DEFINE_bool("smoke", False, "Tiny shapes (configs/tiny.py), the JAX sampling step: a test of the code path.")
flags.DEFINE_bool("profile", False, "Trace a few steps of the first configuration and list its top ops by time.")
flags.DEFINE_string("profile_dir", "", "Where the trace goes (default: beside --out, <name>_profile/).")
flags.DEFINE_float("budget_s", 150.0, "Seconds per configuration, compiles included; then the next one.")
flags.DEFINE_float("deadline_s", 0.0, "Seconds for the whole run (0: none); a configuration gets what is left.")
flags.DEFINE_integer("steps", 10, "Timed training steps per batch (after one warm-up step).")
flags.DEFINE_integer(
  "start_batch", 32, "First training batch: doubled until out of memory (halved if it does not fit)."
)
flags.DEFINE_integer("max_batch", 4096, "Largest training batch tried.")
flags.DEFINE_float(
  "memory_limit_mb", 0.0, "A step whose planned memory exceeds this is out of memory (0: the device's)."
)
flags.DEFINE_float("peak_tflops", 0.0, "Dense peak for a device kind not in measure.PEAKS (0: MFU null there).")
flags.DEFINE_list("sample_batches", ["1", "16", "64", "256"], "Sampling batches.")
flags.DEFINE_integer("sample_length", 4096, "Samples per sequence per timed sampling run.")
flags.DEFINE_float("hierarchy_seconds", 1.0, "Seconds of audio the whole stack samples.")
flags.DEFINE_list("sections", ["training", "sampling", "hierarchy"], "What to measure (e.g. one section per call).")
flags.DEFINE_integer("repeats", 3, "Timed sampling runs (the median is reported).")
FLAGS = flags.FLAGS


def first_line(error: BaseException) -> str:
  text = str(error).strip()
  return f"{type(error).__name__}: {text.splitlines()[0][:500] if text else ''}"


def stop(result: dict, error: BaseException) -> None:
  """Record why a configuration stopped: out of memory (the end of its doubling), or an error."""
  oom = measure.is_out_of_memory(error)
  result.update(stopped="out_of_memory" if oom else "error", **{"stop_detail" if oom else "error": first_line(error)})


def precision(platform_name: str, dtype: str) -> str:
  """What the compute dtype means for the matmuls, and which peak MFU divides by."""
  if dtype == "bfloat16":
    return "bfloat16 compute, float32 parameters; MFU against the dense bf16 peak"
  if platform_name == "gpu":
    return "float32, TF32 matmuls at XLA's default precision; MFU against the dense TF32 peak"
  if platform_name == "tpu":
    return "float32, one bf16 pass per matmul at the default precision; MFU against the bf16 peak"
  return "float32"


def train_batch(config, classes: int, mesh, memory_limit_mb: float, peak: float | None):
  """(figures, the compiled TrainStep) of one config at its batch; raises when it does not fit in memory."""
  step = measure.TrainStep(config, classes, mesh)
  planned_mb = measure.compiled_memory_mb(step.compiled)
  if memory_limit_mb and planned_mb and planned_mb > memory_limit_mb:
    raise MemoryError(f"XLA plans {planned_mb:.1f} MiB for a step; the limit is {memory_limit_mb:.1f} MiB")
  step_s = step.seconds(FLAGS.steps)
  timesteps = config.train.batch_size * config.data.crop
  analytic = flops.train_flops(flops.analytic_macs(config, classes)["total"], timesteps)
  xla = measure.cost_analysis(step.compiled).get("flops")
  figures = {
    "batch": config.train.batch_size,
    "compile_s": step.compile_s,
    "step_s": step_s,
    "steps_per_s": 1 / step_s,
    "timesteps_per_s": timesteps / step_s,
    "analytic_flops_per_step": analytic,
    "xla_flops_per_step": xla,
    "xla_over_analytic": xla / analytic if xla else None,
    "mfu": analytic / step_s / peak if peak else None,
    "mfu_by_xla_flops": xla / step_s / peak if peak and xla else None,
    "step_mb": planned_mb,
    **{k.replace("device_peak", "device_peak_so_far"): v for k, v in measure.peak_memory_mb().items()},
  }
  return figures, step


def train_config(spec, overrides, classes, device, mesh, memory_limit_mb, trace_dir, budget_s) -> dict:
  """The train step of one config from --start_batch, doubling until out of memory, --max_batch or the budget
  (halving first if the first batch does not fit)."""
  from argmax_music import config as config_lib

  start = time.perf_counter()
  config = config_lib.load(spec, overrides)
  classes = classes or flops.signal_classes(spec, config)
  dtype = config.prior.dtype if config.stage == "prior" else config.model.dtype
  peak = measure.peak_flops(device.device_kind, dtype) or FLAGS.peak_tflops * 1e12 or None
  result = {
    "config": spec,
    "overrides": list(overrides),
    "stage": config.stage,
    "dtype": dtype,
    "precision": precision(device.platform, dtype),
    "signal_classes": classes,
    "crop": config.data.crop,
    "peak_flops": peak,
    "analytic_forward_macs_per_timestep": flops.analytic_macs(config, classes),
    "batches": [],
  }
  if peak is None:
    result["mfu_note"] = f"no peak for device kind {device.device_kind!r} in measure.PEAKS: MFU is null"
  batch, too_large = FLAGS.start_batch, None
  while "stopped" not in result:
    began = time.perf_counter()
    try:
      config = config_lib.load(spec, [*overrides, f"train.batch_size={batch}"])
      figures, step = train_batch(config, classes, mesh, memory_limit_mb, peak)
    except Exception as e:  # Out of memory ends the search; anything else is this configuration's error.
      stop(result, e)
      gc.collect()  # The state of a step that did not fit.
      if result["stopped"] == "out_of_memory":
        too_large = batch
        if not result["batches"] and batch > 1:  # The first batch did not fit: try half of it.
          del result["stopped"]
          batch //= 2
      continue
    result["batches"].append(figures)
    result["params"] = step.params
    if trace_dir and len(result["batches"]) == 1:
      result["profile"] = profile(step, trace_dir, batch)
    step = None
    gc.collect()
    spent, last = time.perf_counter() - start, time.perf_counter() - began
    if too_large:  # Halved down from a batch that did not fit: this is the largest.
      result["stopped"] = "out_of_memory"
    elif batch * 2 > FLAGS.max_batch:
      result.update(stopped="max_batch", stop_detail=f"--max_batch={FLAGS.max_batch}")
    elif spent + last + (FLAGS.steps + 1) * figures["step_s"] > budget_s:  # A compile and twice the steps.
      result.update(stopped="budget", stop_detail=f"{spent:.0f} s of {budget_s:.0f} s spent; the next batch won't fit")
    batch *= 2
  result["out_of_memory_at"] = too_large
  if result["batches"]:
    result["largest_batch"] = result["batches"][-1]["batch"]
    result["mfu"] = result["batches"][-1]["mfu"]
  result["seconds"] = time.perf_counter() - start
  return result


def profile(step, trace_dir: Path, batch: int, steps: int = 3) -> dict:
  """A `jax.profiler` trace of a few steps and the ops that took the most time in it."""
  import jax

  result = {"batch": batch, "steps": steps, "trace_dir": str(trace_dir)}
  try:
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
      step.run(steps)
    result.update(measure.trace_top_ops(trace_dir))
  except Exception as e:  # No profiler here, or a trace this parser does not know: say so, keep the figures.
    result["error"] = f"no trace summary: {first_line(e)}"
  return result


def sample_config(spec: str, overrides, budget_s: float) -> dict:
  """Samples/s of the cached sampler of one config's decoder at each sampling batch, within the budget."""
  import jax
  import jax.numpy as jnp

  from argmax_music import config as config_lib
  from argmax_music.models import build, native

  start = time.perf_counter()
  config = config_lib.load(spec, overrides)
  cond_channels = config.model.upsampler.channels
  model = build.build_wavenet(config.model.decoder, 256, cond_channels, build.compute_dtype(config.model.dtype))
  params = model.init(jax.random.key(0), jnp.zeros((1, 16), jnp.int32), jnp.zeros((1, 16, cond_channels)))["params"]
  result = {
    "config": spec,
    "overrides": list(overrides),
    "decoder": {**config.model.decoder, "cond_channels": cond_channels, "receptive_field": model.receptive_field},
    "dtype": config.model.dtype,
    "length": FLAGS.sample_length,
    "batches": [],
  }
  last = 0.0
  for batch in map(int, FLAGS.sample_batches):
    spent = time.perf_counter() - start
    if spent + last > budget_s:
      result.update(stopped="budget", stop_detail=f"{spent:.0f} s of {budget_s:.0f} s spent; batch {batch} won't fit")
      break
    began = time.perf_counter()
    try:
      sampler = measure.CachedSampler(model, params, batch, FLAGS.sample_length)
      times = [sampler.seconds() for _ in range(FLAGS.repeats)]
    except Exception as e:
      stop(result, e)
      break
    rate = FLAGS.sample_length / statistics.median(times)
    result["batches"].append(
      {
        "batch": batch,
        "compile_s": max(sampler.first_call_s - statistics.median(times), 0.0),
        "first_call_s": sampler.first_call_s,
        "seconds": times,
        "samples_per_s": rate,
        "total_samples_per_s": rate * batch,
        "real_time_factor": rate / REAL_TIME,
        "native_sampler_threads": native.threads_for(model) if native.supports(model, batch, None) else 0,
        **measure.peak_memory_mb(),
      }
    )
    last = time.perf_counter() - began
    sampler = None
    gc.collect()
  result["seconds"] = time.perf_counter() - start
  return result


def environment(jax, device) -> dict:
  """What the numbers depend on besides the code: versions, the device's memory, the flags XLA read."""
  stats = device.memory_stats() or {}
  names = ("XLA_FLAGS", "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_PREALLOCATE", "ARGMAX_MUSIC_NATIVE")
  packages = ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "libtpu", "flax", "optax", "numpy")
  versions = {}
  for name in packages:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      pass
  return {
    "jax": jax.__version__,
    "packages": versions,
    "platform_version": getattr(device.client, "platform_version", None),
    "python": platform.python_version(),
    "device_memory_limit_mb": stats["bytes_limit"] / 2**20 if "bytes_limit" in stats else None,
    "default_matmul_precision": getattr(jax.config, "jax_default_matmul_precision", None),
    "env": {name: os.environ[name] for name in names if name in os.environ},
  }


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # JAX's and the profiler's INFO lines.
  if FLAGS.smoke:
    os.environ.setdefault("ARGMAX_MUSIC_NATIVE", "0")  # The JAX sampling step, as on an accelerator.
    if FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):  # Read when the backend starts, at the first device query.
      os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}"
    for name, value in SMOKE.items():
      if not FLAGS[name].present:
        FLAGS[name].value = value
  import jax

  from argmax_music import files, sharding

  started = time.perf_counter()
  device = jax.devices()[0]
  kind = re.sub(r"[^a-z0-9]+", "_", device.device_kind.lower()).strip("_")
  out = Path(FLAGS.out or "results/")
  if not FLAGS.out or FLAGS.out.endswith("/") or out.is_dir():
    out = out / f"accelerator_{kind}.json"
  trace_dir = Path(FLAGS.profile_dir or out.with_name(f"{out.stem}_profile")) if FLAGS.profile else None
  stats = device.memory_stats() or {}
  limit = FLAGS.memory_limit_mb or (stats["bytes_limit"] / 2**20 if "bytes_limit" in stats else 0.0)
  mesh = sharding.make_mesh([device])
  report = {
    "benchmark": "accelerator",
    "device": device.device_kind,
    "platform": device.platform,
    "smoke": FLAGS.smoke,
    "params": "random (untrained): speed only",
    "environment": environment(jax, device),
    "memory_limit_mb": limit or None,
    "training": [],
    "sampling": [],
    "hierarchy": None,
    "finished": False,
  }

  def save():
    report["seconds"] = time.perf_counter() - started
    files.atomic_write_json(out, report)

  train, sample, stack = (SMOKE_TRAIN, SMOKE_SAMPLE, SMOKE_HIERARCHY) if FLAGS.smoke else (TRAIN, SAMPLE, HIERARCHY)
  plan = [  # (section, weight in the deadline's shares, config, overrides, measure(budget_s))
    ("training", 2, spec, overrides, functools.partial(train_config, spec, overrides, classes, device, mesh, limit, t))
    for (spec, overrides, classes), t in zip(train, [trace_dir] + [None] * len(train))  # One profile: the first's.
  ]
  plan += [
    ("sampling", 2, spec, overrides, functools.partial(sample_config, spec, overrides)) for spec, overrides in sample
  ]
  run_stack = lambda budget_s: measure.hierarchy(*stack, FLAGS.hierarchy_seconds, FLAGS.repeats)  # One run.
  plan.append(("hierarchy", 1, stack[0], (), run_stack))
  plan = [item for item in plan if item[0] in FLAGS.sections]
  for i, (section, weight, spec, overrides, measure_fn) in enumerate(plan):
    left = FLAGS.deadline_s - (time.perf_counter() - started) if FLAGS.deadline_s else float("inf")
    budget_s = min(FLAGS.budget_s, left * weight / sum(item[1] for item in plan[i:]))
    entry = {"config": spec, "overrides": list(overrides)}
    if budget_s <= 0:
      entry["skipped"] = "deadline"
    else:
      try:
        entry = measure_fn(budget_s)
      except Exception as e:  # Before its first batch: the configuration itself failed.
        stop(entry, e)
    if section == "hierarchy":
      report[section] = entry
    else:
      report[section].append(entry)
    save()
  report["finished"] = True
  save()
  print(summary(report))
  print(f"wrote {out}")
  failed = [e for e in report["training"] + report["sampling"] + [report["hierarchy"] or {}] if "error" in e]
  if failed:
    sys.exit(1)


def summary(report: dict) -> str:
  """A few lines for a terminal: each configuration's best figures."""
  lines = [f"device: {report['device']} ({report['environment']['jax']})"]
  for r in report["training"]:
    best = (r.get("batches") or [{}])[-1]
    mfu = f"{best['mfu']:.1%}" if best.get("mfu") is not None else "n/a"
    lines.append(
      f"train {r['config']} {' '.join(r['overrides'])}: batch {best.get('batch')}, "
      f"{best.get('steps_per_s', 0):.2f} steps/s, {best.get('timesteps_per_s', 0):,.0f} timesteps/s, MFU {mfu}, "
      f"compile {best.get('compile_s', 0):.0f} s; stopped: {r.get('stopped') or r.get('skipped')}"
    )
    for op in r.get("profile", {}).get("top_ops", [])[:3]:
      lines.append(f"  profile: {op['share']:.1%} {op['name'][:100]}")
  for r in report["sampling"]:
    rates = ", ".join(f"{b['batch']}: {b['samples_per_s']:,.0f}" for b in r.get("batches", []))
    lines.append(f"sample {r['config']}: samples/s per sequence by batch {rates}; stopped: {r.get('stopped') or 'no'}")
  h = report["hierarchy"] or {}
  if "real_time_factor" in h:
    lines.append(f"hierarchy {h['config']}: {h['real_time_factor']:.3f}x real time at batch 1")
  return "\n".join(lines)


if __name__ == "__main__":
  app.run(main)
