"""The native CPU sampler (C++ through the XLA FFI) against the JAX step: same tokens, same cache; its build."""

import fcntl
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO, small_wavenet

from argmax_music.models import generate, native

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="the native sampler is a CPU kernel")


def wavenet(num_classes, layers, cycle, kernel_size, cond_channels):
  """16 gate channels: 2 threads get 8 gate units each, the kernel's minimum."""
  return small_wavenet(num_classes, layers, cycle, kernel_size, cond_channels, channels=16)


LEVEL_1 = (256, 12, 6, 2, 4, 1)  # Dilations 1..32: layers below and at or above the kernel's 8-step blocks.
KERNEL_3 = (16, 7, 5, 3, 0, 3)  # Two past taps, unconditioned, batch 3.


@pytest.mark.parametrize(
  "num_classes,layers,cycle,kernel_size,cond_channels,batch,threads,temperature",
  [(*LEVEL_1, 1, 1.0), (*LEVEL_1, 2, 0.0), (*KERNEL_3, 2, 1.0), (*KERNEL_3, 1, 0.0)],
)
def test_native_sampler_matches_the_jax_step(
  num_classes, layers, cycle, kernel_size, cond_channels, batch, threads, temperature
):
  assert native.available(), "the native sampler did not build (a C++ compiler is needed: apt install g++)"
  model = wavenet(num_classes, layers, cycle, kernel_size, cond_channels)
  length = model.receptive_field + 45  # Not a multiple of the kernel's blocks, and past every ring's wrap.
  keys = jax.random.split(jax.random.key(0), 3)
  cond = jax.random.normal(keys[0], (batch, length, cond_channels)) if cond_channels else None
  params = model.init(keys[1], jnp.zeros((batch, 8), jnp.int32), None if cond is None else cond[:, :8])["params"]
  forced = jnp.full((batch, length), -1, jnp.int32).at[:, :5].set(3)  # A 5-token prompt.
  carry = (model.init_cache(batch, length), jnp.full((batch,), -1, jnp.int32))
  step_keys = jax.random.split(keys[2], length)
  (cache, last), tokens = generate.generate_steps(model, params, carry, step_keys, cond, forced, temperature)
  half = length // 2 + 3  # Two calls: the cache handed from one to the next.
  part = lambda x, window: None if x is None else x[:, window]
  on_kernel = lambda carry, window: generate.generate_steps(
    model, params, carry, step_keys[window], part(cond, window), forced[:, window], temperature, native=threads
  )
  first, head = on_kernel(carry, slice(None, half))
  (native_cache, native_last), tail = on_kernel(first, slice(half, None))
  np.testing.assert_array_equal(jnp.concatenate([head, tail], axis=1), tokens)
  np.testing.assert_array_equal(tokens[:, :5], 3)
  np.testing.assert_array_equal(native_last, last)
  assert int(native_cache["t"]) == int(cache["t"]) == length
  np.testing.assert_allclose(native_cache["history"], cache["history"], atol=2e-5, rtol=1e-5)


def test_a_guided_prior_draws_on_the_native_sampler_the_jax_steps_tokens():
  from argmax_music.models.prior import GuidedPrior

  model = wavenet(256, 12, 6, 2, 4)
  batch, length = 2, model.receptive_field + 45
  keys = jax.random.split(jax.random.key(4), 2)
  cond = jax.nn.one_hot(jnp.array([[1], [3]]).repeat(length, axis=1), 4)  # A key per piece, as the prior's.
  params = {"prior": model.init(keys[0], jnp.zeros((batch, 8), jnp.int32), cond[:, :8])["params"]}
  guided = GuidedPrior(model, 3.0)
  assert native.supports(guided, batch, None) and not native.supports(guided, native.MAX_BATCH // 2 + 1, None)
  carry = (guided.init_cache(batch, length), jnp.full((batch,), -1, jnp.int32))
  forced = jnp.full((batch, length), -1, jnp.int32).at[:, :5].set(7)
  step_keys = jax.random.split(keys[1], length)
  on = lambda threads: generate.generate_steps(guided, params, carry, step_keys, cond, forced, native=threads)
  (cache, last), tokens = on(0)
  (native_cache, native_last), native_tokens = on(2)
  unguided = generate.generate_steps(
    model, params["prior"], (model.init_cache(batch, length), carry[1]), step_keys, cond, forced
  )[1]
  assert not np.array_equal(tokens, unguided)  # The guidance moved the draws,
  np.testing.assert_array_equal(native_tokens, tokens)  # and the kernel moved them alike.
  np.testing.assert_array_equal(native_last, last)
  np.testing.assert_allclose(native_cache["history"], cache["history"], atol=2e-5, rtol=1e-5)


def test_generate_takes_the_native_path_on_one_device_with_the_jax_steps_tokens(monkeypatch):
  model = wavenet(256, 8, 4, 2, 4)
  cond = jax.random.normal(jax.random.key(1), (2, 300, 4))
  params = model.init(jax.random.key(2), jnp.zeros((2, 8), jnp.int32), cond[:, :8])["params"]
  assert native.supports(model, 2, None)
  assert not native.supports(model, 2, 0.9)  # Nucleus sampling stays on the JAX step,
  assert not native.supports(model, native.MAX_BATCH + 1, None)  # and so do large batches.
  one_device = jax.sharding.NamedSharding(
    jax.sharding.Mesh(jax.devices()[:1], ("data",)), jax.sharding.PartitionSpec("data")
  )
  calls, sample_block = [], native.sample_block
  monkeypatch.setattr(native, "sample_block", lambda *args: calls.append(args) or sample_block(*args))
  sample = lambda: generate.generate(model, params, jax.random.key(3), 2, 300, cond, chunk=128, sharding=one_device)
  with_kernel = sample()
  assert calls, "generate did not take the native path"
  monkeypatch.setattr(native, "supports", lambda *args: False)
  np.testing.assert_array_equal(sample(), with_kernel)


def test_without_a_compiler_sampling_falls_back_to_the_jax_step(monkeypatch, tmp_path, caplog):
  monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
  monkeypatch.setenv("ARGMAX_MUSIC_CACHE", str(tmp_path / "cache"))
  native.available.cache_clear()
  try:
    assert not native.available()
    assert "no-such-compiler" in caplog.text
    model = wavenet(16, 4, 2, 2, 0)
    params = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    assert generate.generate(model, params, jax.random.key(1), 1, 20).shape == (1, 20)
    monkeypatch.setenv("ARGMAX_MUSIC_NATIVE", "0")
    monkeypatch.delenv("CXX")
    native.available.cache_clear()
    assert not native.available()
  finally:
    native.available.cache_clear()


FAKE_COMPILER = """#!/bin/sh
# A C++ compiler's stand-in: its version from $FAKE_CXX_VERSION; each build logged, slept and an empty -o file.
if [ "$1" = --version ]; then echo "fake c++ ${FAKE_CXX_VERSION:-1}"; exit 0; fi
echo build >> "$FAKE_CXX_LOG"
sleep "${FAKE_CXX_SECONDS:-0}"
while [ $# -gt 1 ]; do if [ "$1" = -o ]; then : > "$2"; fi; shift; done
"""


@pytest.fixture
def fake_compiler(tmp_path, monkeypatch):
  """CXX set to FAKE_COMPILER, a fresh cache; the build log's path."""
  compiler = tmp_path / "fake-c++"
  compiler.write_text(FAKE_COMPILER)
  compiler.chmod(0o755)
  log = tmp_path / "builds.log"
  monkeypatch.setenv("CXX", str(compiler))
  monkeypatch.setenv("FAKE_CXX_LOG", str(log))
  monkeypatch.setenv("ARGMAX_MUSIC_CACHE", str(tmp_path / "cache"))
  return log


@pytest.mark.slow
def test_two_processes_building_at_once_compile_once(fake_compiler, tmp_path):
  cache = tmp_path / "cache"
  cache.mkdir()
  script = "from argmax_music.models import native; print('ready', flush=True); print(native._build())"
  env = dict(os.environ, FAKE_CXX_SECONDS="1", JAX_PLATFORMS="cpu")
  with open(cache / "wavenet_sampler.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # Held until both have looked for the library and found none.
    builders = [
      subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
      for _ in range(2)
    ]
    assert [b.stdout.readline() for b in builders] == ["ready\n"] * 2
    time.sleep(1.0)
  paths = [b.communicate(timeout=120)[0].strip() for b in builders]
  assert [b.returncode for b in builders] == [0, 0]
  assert paths[0] == paths[1] and os.path.exists(paths[0])
  assert fake_compiler.read_text().splitlines() == ["build"]


def test_another_compiler_version_builds_anew_and_replaces_the_old_build(fake_compiler, monkeypatch):
  first = native._build()
  assert native._build() == first and len(fake_compiler.read_text().splitlines()) == 1  # Cached.
  monkeypatch.setenv("FAKE_CXX_VERSION", "2")
  second = native._build()
  assert second != first and len(fake_compiler.read_text().splitlines()) == 2
  assert set(os.listdir(os.path.dirname(second))) == {"wavenet_sampler.lock", os.path.basename(second)}


def test_a_build_past_its_timeout_fails(fake_compiler, monkeypatch):
  monkeypatch.setenv("FAKE_CXX_SECONDS", "10")
  monkeypatch.setattr(native, "BUILD_TIMEOUT_S", 1)
  with pytest.raises(RuntimeError, match="took over 1 s"):
    native._build()
