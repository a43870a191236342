"""What the benchmarks share: timing a jitted call, and memory (XLA's plan, the device's peak, the host's RSS)."""

from __future__ import annotations

import resource
import time

import jax


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


def peak_memory_mb() -> dict:
  """The process's peak host RSS, and the first device's peak allocation where the backend reports it."""
  result = {"host_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    result["device_peak_mb"] = stats["peak_bytes_in_use"] / 2**20
  return result
