"""The native CPU sampler of the WaveNet: `wavenet_sampler.cc`, compiled on first use and called through the XLA FFI.

At batch 1 on a CPU, JAX's cached step is bound by XLA's per-operation overhead (about
80 small operations a step), not by arithmetic. The C++ kernel runs BLOCK steps per call
(the same cache layout and Gumbel-noise draw as the JAX step: the same tokens up to float rounding)
on THREADS threads, each streaming its share of the weights; a `GuidedPrior`'s WaveNet runs there too (its
batch twice over, the logits guided before the draw). `generate.generate` takes it on a CPU wherever
`supports` says so. It is built once per machine with the host's C++
compiler into $ARGMAX_MUSIC_CACHE (else ~/.cache/argmax_music): one process compiles while
the others wait on a lock and reuse its library, and a build replaces the older ones. Where no
compiler works (or it takes over BUILD_TIMEOUT_S), or with ARGMAX_MUSIC_NATIVE=0, sampling stays
on the JAX step (slower).
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import glob
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np

TARGET = "argmax_music_wavenet_sample_block"
SOURCE = os.path.join(os.path.dirname(__file__), "wavenet_sampler.cc")
HEADER = os.path.join(os.path.dirname(__file__), "vector_math.h")  # Included by SOURCE.
FLAGS = ["-O3", "-march=native", "-std=c++17", "-shared", "-fPIC"]
# Seconds a build may take (about 5 s measured on a 2-core AMD EPYC) before it counts as failed.
BUILD_TIMEOUT_S = 120
# Steps per kernel call: XLA draws a block's Gumbel noise before the call (1 KiB per step and batch item).
BLOCK = 4096
# Threads per step: each streams its share of the weights (2 measured; more would meet more often per byte).
THREADS = 2
# The largest batch measured: 1.6-3.2x XLA's step at batches 1 to 128 (2-core AMD EPYC, 20 layers); beyond it
# the kernel's per-item matrix-vector products were not measured against XLA's matrix-matrix ones.
MAX_BATCH = 128


def _cpu_signature() -> str:
  """What a -march=native binary depends on: the CPU's model and instruction-set flags."""
  try:
    with open("/proc/cpuinfo") as f:
      lines = [line for line in f if line.startswith(("model name", "flags", "Features"))]
    return "".join(sorted(set(lines)))
  except OSError:
    return platform.processor() + platform.machine()


def _compiler_version(compiler: str) -> str:
  """The first line of `compiler --version`: part of the cache key (an upgraded compiler builds anew)."""
  try:
    result = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
  except (OSError, subprocess.TimeoutExpired) as error:
    raise RuntimeError(f"{compiler} --version failed: {error}") from error
  return (result.stdout.splitlines() or [""])[0]


def cache_folder() -> str:
  """This machine's cache of the project: $ARGMAX_MUSIC_CACHE, else ~/.cache/argmax_music (the kernel's builds, and
  XLA's compiled programs kept by `cli.run`)."""
  return os.environ.get("ARGMAX_MUSIC_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "argmax_music")


def _build() -> str:
  """Compile the kernel (once per source, compiler and its version, flags, JAX and CPU); the shared library's path."""
  compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
  if compiler is None:
    raise RuntimeError("no C++ compiler (set CXX, or install g++)")
  sources = [pathlib.Path(name).read_bytes() for name in (SOURCE, HEADER)]
  parts = [*sources, " ".join([compiler, *FLAGS]), _compiler_version(compiler), jax.__version__, _cpu_signature()]
  key = hashlib.sha256(b"\0".join(p if isinstance(p, bytes) else p.encode() for p in parts)).hexdigest()[:16]
  cache = cache_folder()
  path = os.path.join(cache, f"wavenet_sampler-{key}.so")
  if os.path.exists(path):
    return path
  os.makedirs(cache, exist_ok=True)
  with open(os.path.join(cache, "wavenet_sampler.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # One process compiles; the others wait here, then find its library.
    if os.path.exists(path):
      return path
    partial = f"{path}.partial"
    command = [compiler, *FLAGS, "-I", jax.ffi.include_dir(), SOURCE, "-o", partial]
    try:
      result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
      raise RuntimeError(f"{' '.join(command)} took over {BUILD_TIMEOUT_S} s; stopped") from error
    if result.returncode:
      raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    os.replace(partial, path)
    for old in glob.glob(os.path.join(cache, "wavenet_sampler-*.so*")):  # Earlier builds, and killed ones' parts.
      if old != path:
        os.remove(old)
  return path


@functools.cache
def available() -> bool:
  """Whether the native sampler is built and registered with XLA (building it on the first call)."""
  if os.environ.get("ARGMAX_MUSIC_NATIVE", "1") == "0":
    return False
  try:
    library = ctypes.cdll.LoadLibrary(_build())
  except (OSError, RuntimeError) as error:
    logging.warning("native WaveNet sampler unavailable, sampling with the JAX step: %s", error)
    return False
  jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(library.ArgmaxMusicWavenetSampleBlock), platform="cpu")
  return True


def _wavenet(model) -> tuple:
  """(the WaveNet that runs, the guidance scale): a `GuidedPrior`'s prior and scale, else the model and None."""
  from argmax_music.models.prior import GuidedPrior

  return (model.prior, model.scale) if isinstance(model, GuidedPrior) else (model, None)


def supports(model, batch: int, top_p: float | None) -> bool:
  """Whether `sample_block` can run this model's sampling here: a WaveNet's, guided or not, but not autoguided
  (two networks a step; else the JAX step does)."""
  if getattr(model, "guide", None) is not None:
    return False
  model, guidance = _wavenet(model)
  if not hasattr(model, "step_weights"):  # Not a WaveNet.
    return False
  batch *= 1 if guidance is None else 2
  widths = (model.residual_channels, model.gate_channels, model.skip_channels, model.num_classes)
  return (
    jax.default_backend() == "cpu"
    and batch <= MAX_BATCH
    and (top_p is None or top_p >= 1.0)
    and jnp.dtype(model.dtype) == jnp.float32
    and all(n % 8 == 0 for n in widths)
    and available()
  )


def threads_for(model) -> int:
  """How many threads share a step: up to THREADS, as the CPUs and the gate and head widths allow."""
  cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
  model, _ = _wavenet(model)
  n = min(THREADS, cpus)
  while model.gate_channels % (8 * n) or model.skip_channels % (8 * n):
    n -= 1
  return n


def block_major(w: jax.Array) -> jax.Array:
  """(..., n_in, n_out) -> (..., n_in * n_out): column blocks of 64 (then of 8), each block's rows in turn.

  The layout the kernel's matrix-vector products read front to back; n_out a multiple of 8.
  """
  n_out = w.shape[-1]
  edges = list(range(0, n_out - n_out % 64, 64)) + list(range(n_out - n_out % 64, n_out, 8)) + [n_out]
  blocks = [w[..., a:b].reshape(w.shape[:-2] + (-1,)) for a, b in zip(edges[:-1], edges[1:])]
  return jnp.concatenate(blocks, axis=-1)


def pack(model, params, threads: int) -> dict:
  """The weights `sample_block` reads, split over `threads` and packed (once per sampling call, outside its loop).

  Thread j owns gate units [j u, (j + 1) u), u = gate / threads: their columns (tanh half, then sigmoid
  half) of the current kernel tap, of the past taps and of the conditioning projection, their rows of the
  residual and skip projections; and hidden units likewise in the head. A `GuidedPrior`'s: its prior's.
  """
  if _wavenet(model)[1] is not None:
    model, params = model.prior, params["prior"]
  weights = model.apply({"params": params}, method=model.step_weights)
  taps, res_skip = jnp.stack(weights["taps"]), jnp.stack(weights["res_skip"])  # (L, R, k 2G), (L, G, R + S)
  gate, k, layers = model.gate_channels, model.kernel_size, model.layers
  hidden_w, hidden_b = params["head_hidden"]["kernel"], params["head_hidden"]["bias"]
  u, v = gate // threads, hidden_w.shape[1] // threads
  units = lambda j, taps: np.concatenate(
    [m * 2 * gate + half * gate + np.arange(j * u, (j + 1) * u) for m in taps for half in (0, 1)]
  )
  per_thread = lambda f: jnp.stack([f(j) for j in range(threads)])
  cond_w = params.get("cond_w", jnp.zeros((0, layers, 2 * gate)))  # (channels, L, 2G)
  return {
    "embedding": params["embedding"],
    "taps_now": per_thread(lambda j: block_major(taps[..., units(j, [0])])),
    "taps_past": per_thread(lambda j: block_major(taps[..., units(j, range(1, k))])),
    "cond_w": per_thread(lambda j: block_major(cond_w[..., units(j, [0])].reshape(cond_w.shape[0], layers * 2 * u))),
    "bias": params["conv_b"],
    "res_skip": per_thread(lambda j: block_major(res_skip[:, j * u : (j + 1) * u])),
    "res_b": jnp.stack(weights["res_b"]),
    "skip_b": params["skip_b"],
    "hidden_w": per_thread(lambda j: block_major(hidden_w[:, j * v : (j + 1) * v])),
    "hidden_b": per_thread(lambda j: hidden_b[j * v : (j + 1) * v]),
    "logits_w": per_thread(lambda j: block_major(params["head_logits"]["kernel"][j * v : (j + 1) * v])),
    "logits_b": params["head_logits"]["bias"],
  }


def sample_block(model, packed: dict, carry, cond, noise, forced, temperature: float):
  """`len(forced)` steps of `model.step` + `sample_with_noise`, as generate's scan would run them.

  packed: `pack(model, params, threads)`; cond: (steps, batch, channels) or None; noise: (steps,
  batch, classes) Gumbel noise, or None at temperature 0; forced: (steps, batch), -1 where sampled.
  Returns (carry, tokens (steps, batch)). A `GuidedPrior` runs its prior on the batch conditioned, then on it
  with all-zero conditioning (its cache holds both).
  """
  from argmax_music.models.wavenet import dilations

  cache, prev = carry
  steps, batch = forced.shape
  model, guidance = _wavenet(model)
  if cond is None:
    cond = jnp.zeros((steps, batch, 0), jnp.float32)
  if guidance is not None:
    cond = jnp.concatenate([cond, jnp.zeros_like(cond)], axis=1)
  if noise is None:
    noise = jnp.zeros((0,), jnp.float32)
  outputs = (
    jax.ShapeDtypeStruct((steps, batch), jnp.int32),
    jax.ShapeDtypeStruct(cache["history"].shape, jnp.float32),
    jax.ShapeDtypeStruct((), jnp.int32),
    jax.ShapeDtypeStruct((batch,), jnp.int32),
  )
  weights = ("embedding", "taps_now", "taps_past", "cond_w", "bias", "res_skip", "res_b", "skip_b")
  weights += ("hidden_w", "hidden_b", "logits_w", "logits_b")
  call = jax.ffi.ffi_call(TARGET, outputs, input_output_aliases={15: 1})
  tokens, history, t, prev = call(
    *(packed[name] for name in weights),
    cond.astype(jnp.float32),
    noise.astype(jnp.float32),
    forced.astype(jnp.int32),
    cache["history"],
    cache["t"],
    prev.astype(jnp.int32),
    dilations=np.asarray(dilations(model.layers, model.cycle), np.int64),
    kernel_size=np.int64(model.kernel_size),
    temperature=np.float32(temperature),
    guidance=np.float32(1.0 if guidance is None else guidance),
  )
  return ({"t": t, "history": history}, prev), tokens
