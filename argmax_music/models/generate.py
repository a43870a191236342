"""Autoregressive sampling for any model with `__call__(tokens, cond)`, `init_cache` and `step`.

`generate` is the fast path: one `jax.lax.scan` over timesteps, each calling the
model's cached `step`; on a CPU, a WaveNet's steps run in the C++ kernel of
`native.py` instead (the same draws, about 3x faster at batch 1). `generate_naive`
recomputes the full forward pass over the last `window` timesteps at every step; it
exists as the reference that tests and benchmarks compare the cached path with.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from argmax_music.models import native as native_sampler

# Steps per iteration of the sampling loop: amortises the loop overhead at small batches on CPU.
SCAN_UNROLL = 4
# Steps whose conditioning projections and Gumbel noise are computed together, outside the per-step body.
BLOCK = 64


def sample_logits(rng: jax.Array, logits: jax.Array, temperature: float = 1.0, top_p: float | None = None) -> jax.Array:
  """Sample classes from logits (..., C) with a temperature (0 = argmax) and optional nucleus top-p."""
  return sample_with_noise(jax.random.gumbel(rng, logits.shape, jnp.float32), logits, temperature, top_p)


def sample_with_noise(
  noise: jax.Array, logits: jax.Array, temperature: float = 1.0, top_p: float | None = None
) -> jax.Array:
  """`sample_logits` given its standard Gumbel noise (the shape of logits): argmax(logits / T + noise).

  With noise = jax.random.gumbel(rng, logits.shape) this is jax.random.categorical(rng, logits / T).
  """
  if temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_p is not None and top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # Probability mass of strictly more likely classes.
    cutoff = jnp.min(jnp.where(before < top_p, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return jnp.argmax(logits + noise, axis=-1).astype(jnp.int32)


def _scan_block(model: nn.Module, params, weights, carry, keys, cond, forced, temperature, top_p, native):
  """Steps for len(keys) timesteps (time-major inputs): the per-step noise and conditioning come precomputed.

  weights: a WaveNet's `step_weights()` (or with `native`, `native_sampler.pack`), else None.
  """
  cache, prev = carry
  noise = None
  if temperature != 0:
    noise = jax.vmap(lambda k: jax.random.gumbel(k, (prev.shape[0], model.num_classes), jnp.float32))(keys)
  if native:
    forced = jnp.full((len(keys), prev.shape[0]), -1, jnp.int32) if forced is None else forced
    return native_sampler.sample_block(model, weights, carry, cond, noise, forced, temperature)
  if weights is not None:  # A WaveNet: every step's conditioning projected in one matmul.
    terms = model.apply({"params": params}, cond, method=model.conditioning_terms)
    per_step = jnp.broadcast_to(terms, (len(keys), prev.shape[0]) + terms.shape[-2:])
    step = lambda cache, prev, terms_t: model.apply(
      {"params": params}, cache, prev, terms_t, weights, method=model.step_with_terms
    )
  else:
    per_step = cond
    step = lambda cache, prev, cond_t: model.apply({"params": params}, cache, prev, cond_t, method=model.step)

  def body(carry, inputs):
    cache, prev = carry
    per_step_t, noise_t, forced_t = inputs
    logits, cache = step(cache, prev, per_step_t)
    token = sample_with_noise(noise_t, logits, temperature, top_p)
    if forced_t is not None:
      token = jnp.where(forced_t >= 0, forced_t, token)
    return (cache, token), token

  return jax.lax.scan(body, (cache, prev), (per_step, noise, forced), unroll=SCAN_UNROLL)


@functools.partial(jax.jit, static_argnames=("model", "temperature", "top_p", "native"))
def generate_steps(
  model: nn.Module,
  params,
  carry,
  keys: jax.Array,
  cond: jax.Array | None = None,
  forced: jax.Array | None = None,
  temperature: float = 1.0,
  top_p: float | None = None,
  native: int = 0,
):
  """Advance `carry` = (cache, previous token) by len(keys) steps: (carry, tokens (batch, steps)).

  cond: (batch, steps, channels) or None; forced: (batch, steps) tokens to emit instead of sampling
  where >= 0 (a prompt), or None. Runs in blocks of BLOCK steps (and one shorter block for the rest);
  `native` > 0: each block of native_sampler.BLOCK steps in one call of its C++ kernel, on that many
  threads (a WaveNet where `native_sampler.supports` it; `native_sampler.threads_for` the count).
  """
  weights = None
  if native:
    weights = native_sampler.pack(model, params, native)
  elif hasattr(model, "step_weights"):
    weights = model.apply({"params": params}, method=model.step_weights)
  block = lambda carry, inputs: _scan_block(model, params, weights, carry, *inputs, temperature, top_p, native)
  time_major = lambda x: None if x is None else jnp.swapaxes(x, 0, 1)
  inputs = (keys, time_major(cond), time_major(forced))
  steps = len(keys)
  size = native_sampler.BLOCK if native else BLOCK
  whole = steps - steps % size
  pieces = []
  if whole:
    blocks = jax.tree.map(lambda x: x[:whole].reshape((whole // size, size) + x.shape[1:]), inputs)
    carry, tokens = jax.lax.scan(block, carry, blocks)
    pieces.append(tokens.reshape((whole,) + tokens.shape[2:]))
  if whole < steps:
    carry, tokens = block(carry, jax.tree.map(lambda x: x[whole:], inputs))
    pieces.append(tokens)
  return carry, jnp.concatenate(pieces, axis=0).T


def generate(
  model: nn.Module,
  params,
  rng: jax.Array,
  batch: int,
  length: int,
  cond: jax.Array | None = None,
  temperature: float = 1.0,
  top_p: float | None = None,
  prompt: jax.Array | None = None,
  chunk: int | None = None,
  on_chunk=None,
  sharding=None,
) -> jax.Array:
  """Sample (batch, length) tokens with the model's cached step.

  cond: (batch, length, channels) or None. prompt: (batch, P) tokens kept as the first P outputs.
  The loop runs in chunks of `chunk` steps (one jitted scan each), calling on_chunk(steps) after
  each; the result does not depend on the chunking. `sharding` places the batch (e.g. over 'data').
  """
  keys = jax.random.split(rng, length)
  forced = None
  if prompt is not None:
    forced = jnp.full((batch, length), -1, jnp.int32).at[:, : prompt.shape[1]].set(prompt[:, :length])
  carry = (model.init_cache(batch, length), jnp.full((batch,), -1, jnp.int32))
  if sharding is not None:
    place = lambda x: x if x is None or x.ndim == 0 else jax.device_put(x, sharding)
    carry, cond, forced = jax.tree.map(place, (carry, cond, forced))
  one_device = sharding is None or len(sharding.device_set) == 1
  native = native_sampler.threads_for(model) if one_device and native_sampler.supports(model, batch, top_p) else 0
  chunk = chunk or length
  pieces = []
  for start in range(0, length, chunk):
    window = slice(start, min(start + chunk, length))
    cond_part, forced_part = (None if x is None else x[:, window] for x in (cond, forced))
    carry, tokens = generate_steps(
      model, params, carry, keys[window], cond_part, forced_part, temperature, top_p, native
    )
    pieces.append(tokens)
    if on_chunk is not None:
      jax.block_until_ready(tokens)
      on_chunk(tokens.shape[1])
  return jnp.concatenate(pieces, axis=1)


@functools.partial(jax.jit, static_argnames=("model", "batch", "length", "window", "temperature", "top_p"))
def generate_naive(
  model: nn.Module,
  params,
  rng: jax.Array,
  batch: int,
  length: int,
  window: int,
  cond: jax.Array | None = None,
  temperature: float = 1.0,
  top_p: float | None = None,
):
  """Reference sampler: every step reruns the full forward pass over the last `window` timesteps.

  Exact when `window` covers the model's receptive field (for a Transformer: the whole length).
  """
  keys = jax.random.split(rng, length)
  padded = max(length, window)
  tokens = jnp.zeros((batch, padded), jnp.int32)
  if cond is not None:
    cond = jnp.pad(cond, ((0, 0), (0, padded - length), (0, 0)))

  def body(t, tokens):
    start = jnp.clip(t - window + 1, 0, padded - window)
    inputs = jax.lax.dynamic_slice_in_dim(tokens, start, window, axis=1)
    cond_window = None if cond is None else jax.lax.dynamic_slice_in_dim(cond, start, window, axis=1)
    logits = model.apply({"params": params}, inputs, cond_window)
    token = sample_logits(keys[t], jnp.take(logits, t - start, axis=1), temperature, top_p)
    return tokens.at[:, t].set(token)

  return jax.lax.fori_loop(0, length, body, tokens)[:, :length]
