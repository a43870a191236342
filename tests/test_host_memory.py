"""host_memory.keep_freed_memory: a jitted step's large temporaries are reused, not page-faulted in again."""

import json
import os
import platform
import subprocess
import sys

import pytest
from conftest import REPO

# Imports as a command line tool does (cli first), keeps freed memory, then runs a step with a 64 MB
# temporary 16 times. Kept, the heap can take a few calls to settle (small allocations split freed
# blocks), so the test asks for one call that reused memory; glibc's default reuses none.
SCRIPT = """
import json, resource
from argmax_music import cli, host_memory
kept = host_memory.keep_freed_memory()
import jax, jax.numpy as jnp
step = jax.jit(lambda x: (jnp.sin(x)[:, None] * jnp.cos(x)[None, :]) @ x)
x = jnp.arange(4096.0)
assert step.lower(x).compile().memory_analysis().temp_size_in_bytes >= 4096 * 4096 * 4
faults = []
for _ in range(16):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  step(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": min(faults)}))
"""
PAGES = 4096 * 4096 * 4 // 4096  # One page fault per 4 KiB page of the 64 MB temporary.


def faults(keep: str) -> dict:
  env = dict(os.environ, ARGMAX_MUSIC_KEEP_MEMORY=keep, PYTHONPATH=str(REPO))
  done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
  return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_memory_is_reused_not_faulted_in_again():
  kept, default = faults("1"), faults("0")
  assert kept["kept"] and not default["kept"]
  assert default["faults"] >= PAGES  # glibc's default: the block is unmapped when freed, and faulted in again.
  assert kept["faults"] < PAGES // 10
