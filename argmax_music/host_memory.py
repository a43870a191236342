"""Host memory: let a process reuse the memory XLA frees instead of faulting it in again.

XLA's CPU backend allocates a jitted step's temporaries afresh at every call (2.3 GB for the
peer benchmark's WaveNet at batch 8 x 8,000) and frees them at its end. glibc hands blocks that
large straight back to the kernel, so the next step page-faults all of them in again and the
kernel zeroes every page: on a 2-core CPU that was a fifth of a training step's time.
`keep_freed_memory` makes glibc keep them. The command line tools call it first thing (`cli.run`);
a notebook or script can call it before its first JAX computation.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
# The same settings for another process, through its environment (glibc reads it at start-up).
GLIBC_TUNABLES = f"glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold={2**62}"


def keep_freed_memory() -> bool:
  """Make glibc's malloc keep freed memory for reuse; True when that applied (Linux with glibc).

  One arena (a thread's own arena would map large blocks apart, and unmap them when freed), no
  block mapped apart from the heap, and no trimming of the heap's free top (-1: glibc reads it as
  the largest size). The process's resident memory then stays at its peak, and the heap can take a
  few calls to settle (small allocations split freed blocks; the demo's training: 2.2 GB resident
  instead of 1.4 GB, for a 0.5 GB step). Settings apply to threads that have not allocated yet,
  so call it before JAX runs anything. ARGMAX_MUSIC_KEEP_MEMORY=0 leaves malloc as it is.
  """
  if os.environ.get("ARGMAX_MUSIC_KEEP_MEMORY") == "0" or not sys.platform.startswith("linux"):
    return False
  if platform.libc_ver()[0] != "glibc":
    return False
  libc = ctypes.CDLL("libc.so.6")
  return all(
    libc.mallopt(param, value) == 1 for param, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1))
  )
