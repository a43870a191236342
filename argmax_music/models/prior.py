"""Code priors: unconditional autoregressive models over the top level's codes.

The default is a WaveNet (`wavenet.WaveNet` without conditioning, built by
`build_prior`); `TransformerPrior` is a causal Transformer with a key/value cache
for sampling. Both offer `__call__(tokens)`, `init_cache` and `step`, so
`generate.generate` samples from either.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from argmax_music.models.wavenet import embed_tokens


class _Block(nn.Module):
  """Pre-norm Transformer block: causal self-attention and an MLP."""

  heads: int
  dim: int
  mlp_dim: int
  dtype: Any = jnp.float32

  def setup(self):
    self.attn_norm = nn.LayerNorm(dtype=self.dtype)
    self.qkv = nn.DenseGeneral((3, self.heads, self.dim // self.heads), dtype=self.dtype)
    self.attn_out = nn.DenseGeneral(self.dim, axis=(-2, -1), dtype=self.dtype)
    self.mlp_norm = nn.LayerNorm(dtype=self.dtype)
    self.mlp_in = nn.Dense(self.mlp_dim, dtype=self.dtype)
    self.mlp_out = nn.Dense(self.dim, dtype=self.dtype)

  def _attend(self, q, k, v, mask):
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
    weights = jax.nn.softmax(jnp.where(mask, scores.astype(jnp.float32), -1e30), axis=-1).astype(v.dtype)
    return self.attn_out(jnp.einsum("bhqk,bkhd->bqhd", weights, v))

  def _mlp(self, x):
    return x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.mlp_norm(x))))

  def __call__(self, x):
    q, k, v = jnp.moveaxis(self.qkv(self.attn_norm(x)), 2, 0)
    t = x.shape[1]
    mask = jnp.tril(jnp.ones((t, t), bool))[None, None]
    return self._mlp(x + self._attend(q, k, v, mask))

  def step(self, x, keys, values, t):
    """x: (batch, 1, dim) at position t; keys/values: (batch, max_len, heads, head_dim) caches."""
    q, k, v = jnp.moveaxis(self.qkv(self.attn_norm(x)), 2, 0)
    keys = jax.lax.dynamic_update_slice(keys, k.astype(keys.dtype), (0, t, 0, 0))
    values = jax.lax.dynamic_update_slice(values, v.astype(values.dtype), (0, t, 0, 0))
    mask = (jnp.arange(keys.shape[1]) <= t)[None, None, None]
    return self._mlp(x + self._attend(q, keys, values, mask)), keys, values


class TransformerPrior(nn.Module):
  """Causal decoder-only Transformer over `num_classes` codes, with learned positions up to max_len."""

  num_classes: int
  layers: int = 4
  heads: int = 4
  dim: int = 128
  mlp_dim: int = 512
  max_len: int = 1024
  dtype: Any = jnp.float32

  def setup(self):
    self.embedding = self.param("embedding", nn.initializers.normal(0.02), (self.num_classes + 1, self.dim))
    self.positions = self.param("positions", nn.initializers.normal(0.02), (self.max_len, self.dim))
    self.blocks = [_Block(self.heads, self.dim, self.mlp_dim, self.dtype) for _ in range(self.layers)]
    self.norm = nn.LayerNorm(dtype=self.dtype)
    self.head = nn.Dense(self.num_classes, dtype=self.dtype)

  @property
  def receptive_field(self) -> int:
    return self.max_len

  def __call__(self, tokens: jax.Array, cond: jax.Array | None = None) -> jax.Array:
    """Logits (batch, time, num_classes); logits[:, t] predicts tokens[:, t] from tokens[:, :t]."""
    if cond is not None:
      raise ValueError("the Transformer prior is unconditional")
    t = tokens.shape[1]
    if t > self.max_len:
      raise ValueError(f"sequence of {t} codes is longer than the prior's max_len {self.max_len}")
    x = embed_tokens(self.embedding, jnp.pad(tokens, ((0, 0), (1, 0)), constant_values=-1)[:, :-1])
    x = (x + self.positions[:t]).astype(self.dtype)
    for block in self.blocks:
      x = block(x)
    return self.head(self.norm(x)).astype(jnp.float32)

  def init_cache(self, batch: int, length: int) -> dict:
    """Empty key/value caches for `length` positions (at most max_len)."""
    if length > self.max_len:
      raise ValueError(f"cannot sample {length} codes: the prior's max_len is {self.max_len}")
    shape = (batch, length, self.heads, self.dim // self.heads)
    zeros = tuple(jnp.zeros(shape, self.dtype) for _ in range(self.layers))
    return {"t": jnp.zeros((), jnp.int32), "keys": zeros, "values": zeros}

  def step(self, cache: dict, prev_token: jax.Array, cond_t: jax.Array | None = None):
    """(logits for the token at cache['t'], next cache), given the token before it (-1 at the start)."""
    del cond_t
    t = cache["t"]
    x = (embed_tokens(self.embedding, prev_token) + self.positions[t]).astype(self.dtype)[:, None]
    keys, values = [], []
    for block, k, v in zip(self.blocks, cache["keys"], cache["values"]):
      x, k, v = block.step(x, k, v, t)
      keys.append(k)
      values.append(v)
    logits = self.head(self.norm(x[:, 0])).astype(jnp.float32)
    return logits, {"t": t + 1, "keys": tuple(keys), "values": tuple(values)}


class GuidedPrior(nn.Module):
  """Classifier-free guidance (Ho and Salimans 2022) of a conditioned prior trained also without its condition
  (`prior.key_dropout`): each step's logits are the unconditioned ones (all-zero conditioning) moved `scale` times
  as far as the condition moves them, u + scale (c - u); scale 1 is the conditioned prior itself. Runs the prior on
  the batch twice over (conditioned, then not); its parameters are {"prior": the prior's}.

  With a `guide` (a weaker prior over the same codes and condition: fewer steps or channels), also autoguidance
  (Karras et al. 2024): the logits move `guide_scale` times further along c - g, g the guide's conditioned logits,
  away from what the weaker prior predicts more than the prior does. Its parameters then add {"guide": the
  guide's}, and its cache is {"prior": ..., "guide": ...}."""

  prior: nn.Module
  scale: float
  guide: nn.Module | None = None
  guide_scale: float = 0.0

  @property
  def num_classes(self) -> int:
    return self.prior.num_classes

  @property
  def receptive_field(self) -> int:
    return max(self.prior.receptive_field, self.guide.receptive_field if self.guide else 0)

  def _guide(self, logits: jax.Array, guide: jax.Array | None) -> jax.Array:
    conditioned, unconditioned = jnp.split(logits, 2)
    guided = unconditioned + self.scale * (conditioned - unconditioned)
    return guided if guide is None else guided + self.guide_scale * (conditioned - guide)

  def __call__(self, tokens: jax.Array, cond: jax.Array) -> jax.Array:
    logits = self.prior(jnp.concatenate([tokens, tokens]), jnp.concatenate([cond, jnp.zeros_like(cond)]))
    return self._guide(logits, self.guide(tokens, cond) if self.guide else None)

  def init_cache(self, batch: int, length: int | None = None) -> dict:
    cache = self.prior.init_cache(2 * batch, length)
    return cache if self.guide is None else {"prior": cache, "guide": self.guide.init_cache(batch, length)}

  def step(self, cache: dict, prev_token: jax.Array, cond_t: jax.Array):
    """`WaveNet.step` of the guided logits."""
    both = jnp.concatenate([cond_t, jnp.zeros_like(cond_t)])
    prior_cache = cache if self.guide is None else cache["prior"]
    logits, prior_cache = self.prior.step(prior_cache, jnp.concatenate([prev_token, prev_token]), both)
    if self.guide is None:
      return self._guide(logits, None), prior_cache
    guide, guide_cache = self.guide.step(cache["guide"], prev_token, cond_t)
    return self._guide(logits, guide), {"prior": prior_cache, "guide": guide_cache}
