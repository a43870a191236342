"""Autoregressive sampling for any model with `__call__(tokens, cond)`, `init_cache` and `step`.

`generate` is the fast path: one `jax.lax.scan` over timesteps, each calling the
model's cached `step`. `generate_naive` recomputes the full forward pass over the
last `window` timesteps at every step; it exists as the reference that tests and
benchmarks compare the cached path with.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp


def sample_logits(rng: jax.Array, logits: jax.Array, temperature: float = 1.0,
                  top_p: float | None = None) -> jax.Array:
  """Sample classes from logits (..., C) with a temperature (0 = argmax) and optional nucleus top-p."""
  if temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_p is not None and top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # Probability mass of strictly more likely classes.
    cutoff = jnp.min(jnp.where(before < top_p, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("model", "batch", "length", "temperature", "top_p"))
def generate(model: nn.Module, params, rng: jax.Array, batch: int, length: int, cond: jax.Array | None = None,
             temperature: float = 1.0, top_p: float | None = None) -> jax.Array:
  """Sample (batch, length) tokens with the model's cached step; cond: (batch, length, channels) or None."""
  keys = jax.random.split(rng, length)
  cond_steps = None if cond is None else jnp.swapaxes(cond, 0, 1)

  def body(carry, inputs):
    cache, prev = carry
    key, cond_t = inputs
    logits, cache = model.apply({"params": params}, cache, prev, cond_t, method=model.step)
    token = sample_logits(key, logits, temperature, top_p)
    return (cache, token), token

  start = (model.init_cache(batch, length), jnp.full((batch,), -1, jnp.int32))
  _, tokens = jax.lax.scan(body, start, (keys, cond_steps))
  return tokens.T


@functools.partial(jax.jit, static_argnames=("model", "batch", "length", "window", "temperature", "top_p"))
def generate_naive(model: nn.Module, params, rng: jax.Array, batch: int, length: int, window: int,
                   cond: jax.Array | None = None, temperature: float = 1.0, top_p: float | None = None):
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
