"""WaveNet: a causal autoregressive model over a sequence of classes (mu-law samples or codes).

Each layer: a dilated causal convolution of the residual stream, plus the layer's
share of the local conditioning (codes upsampled to this rate), through a gated tanh * sigmoid unit, then a residual projection and
a skip projection. The skips are summed, passed through ReLU -> 1x1 -> ReLU -> 1x1
to logits. Inputs are shifted right by one (a learned start embedding first), so
logits[t] predicts tokens[t] from tokens[:t].

`__call__` runs the whole sequence in parallel (training); `step` advances one
timestep with a per-layer ring buffer holding, for the last (kernel_size - 1) * dilation
steps, that layer's inputs already multiplied by its past kernel taps, so a new sample costs O(layers);
`step_with_terms` is the same step given the conditioning projected in advance.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def dilations(layers: int, cycle: int) -> tuple[int, ...]:
  """Dilations 1, 2, ..., 2**(cycle-1), repeated for `layers` layers."""
  return tuple(2 ** (i % cycle) for i in range(layers))


def receptive_field(layers: int, cycle: int, kernel_size: int) -> int:
  """How many past inputs the prediction of one timestep depends on."""
  return 1 + sum((kernel_size - 1) * d for d in dilations(layers, cycle))


def embed_tokens(table: jax.Array, tokens: jax.Array) -> jax.Array:
  """Rows of `table` for `tokens`; a negative token means "start" (the table's last row)."""
  start = table.shape[0] - 1
  return table[jnp.where(tokens < 0, start, tokens)]


def corrupt_tokens(key: jax.Array, tokens: jax.Array, rate, num_classes: int) -> jax.Array:
  """`tokens` with each replaced, with probability `rate` (a float, or an array broadcast to tokens), by a class
  drawn uniformly from `num_classes`: a model's input in training (its targets stay clean), so that it learns to
  predict from a past with errors in it, as its own samples have (word dropout, Bowman et al. 2016; data noising,
  Xie et al. 2017)."""
  where_key, class_key = jax.random.split(key)
  return replace_tokens(where_key, tokens, rate, jax.random.randint(class_key, tokens.shape, 0, num_classes))


def replace_tokens(key: jax.Array, tokens: jax.Array, rate, replacements: jax.Array) -> jax.Array:
  """`tokens` with each replaced, with probability `rate`, by `replacements` at the same position."""
  return jnp.where(jax.random.bernoulli(key, rate, tokens.shape), replacements, tokens)


class WaveNet(nn.Module):
  """Gated, dilated, causal WaveNet with optional local conditioning."""

  num_classes: int
  layers: int = 20
  cycle: int = 10
  kernel_size: int = 2
  residual_channels: int = 64
  gate_channels: int = 64
  skip_channels: int = 128
  cond_channels: int = 0
  dtype: Any = jnp.float32

  def setup(self):
    L, k, R, G, S = self.layers, self.kernel_size, self.residual_channels, self.gate_channels, self.skip_channels
    normal = lambda fan_in: nn.initializers.normal(fan_in**-0.5)
    zeros = nn.initializers.zeros
    self.embedding = self.param("embedding", nn.initializers.normal(1.0), (self.num_classes + 1, R))
    self.conv_w = self.param("conv_w", normal(k * R), (L, k, R, 2 * G))
    self.conv_b = self.param("conv_b", zeros, (L, 2 * G))
    self.res_w = self.param("res_w", normal(G * L), (L, G, R))
    self.res_b = self.param("res_b", zeros, (L, R))
    self.skip_w = self.param("skip_w", normal(G * L), (L, G, S))
    self.skip_b = self.param("skip_b", zeros, (S,))
    if self.cond_channels:
      self.cond_w = self.param("cond_w", normal(self.cond_channels), (self.cond_channels, L, 2 * G))
    self.head = [
      nn.Dense(S, dtype=self.dtype, name="head_hidden"),
      nn.Dense(self.num_classes, dtype=self.dtype, name="head_logits"),
    ]

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.layers, self.cycle, self.kernel_size)

  def _cast(self, x):
    return jnp.asarray(x, self.dtype)

  def _conditioning(self, cond) -> list[jax.Array | float]:
    """Per-layer conditioning terms (broadcastable to the gate pre-activations), for a sequence."""
    terms = [0.0] * self.layers
    if self.cond_channels:
      if cond is None:
        raise ValueError("this WaveNet is conditioned (cond_channels > 0): pass `cond`")
      w = self._cast(self.cond_w)
      # One projection per layer: all layers at once would not fit in memory for long sequences.
      terms = [t + self._cast(cond) @ w[:, i] for i, t in enumerate(terms)]
    return terms

  def _gate(self, z):
    a, b = jnp.split(z, 2, axis=-1)
    return jnp.tanh(a) * jax.nn.sigmoid(b)

  def _logits(self, skip):
    hidden = self.head[0](jax.nn.relu(skip))
    return self.head[1](jax.nn.relu(hidden)).astype(jnp.float32)

  def __call__(self, tokens: jax.Array, cond: jax.Array | None = None):
    """Logits (batch, time, num_classes): logits[:, t] predicts tokens[:, t] from tokens[:, :t].

    cond: (batch, time, cond_channels): local conditioning at this rate.
    """
    return self.logits_from_embeddings(embed_tokens(self.embedding, tokens), cond)

  def logits_from_embeddings(self, inputs: jax.Array, cond: jax.Array | None = None) -> jax.Array:
    """`__call__` from the embedded tokens (batch, time, residual_channels): differentiable in them.

    Each dilated convolution is one matmul over the input and its copies shifted in time, side
    by side (on CPU, XLA's matmuls and their gradients are several times faster than its
    dilated convolutions, and one matmul over all taps faster than one per tap).
    """
    x = self._cast(inputs)
    start = jnp.broadcast_to(self._cast(self.embedding[-1]), (x.shape[0], 1, x.shape[2]))
    h = jnp.concatenate([start, x[:, :-1]], axis=1)  # Shift right: position t sees tokens[:, :t].
    terms = self._conditioning(cond)
    skip = self._cast(self.skip_b)
    k, length = self.kernel_size, h.shape[1]
    for i, d in enumerate(dilations(self.layers, self.cycle)):
      shifts = [min(m * d, length) for m in range(k - 1, 0, -1)]  # Tap j reads the input (k - 1 - j) * d steps back.
      taps = [jnp.pad(h[:, : length - s], ((0, 0), (s, 0), (0, 0))) for s in shifts] + [h]
      w = self._cast(self.conv_w[i]).reshape(k * h.shape[-1], -1)
      z = jnp.concatenate(taps, axis=-1) @ w + self._cast(self.conv_b[i]) + terms[i]
      g = self._gate(z)
      skip = skip + g @ self._cast(self.skip_w[i])
      h = h + g @ self._cast(self.res_w[i]) + self._cast(self.res_b[i])
    return self._logits(skip)

  def _history_slots(self) -> tuple[np.ndarray, np.ndarray]:
    """Static layout of the cache's history: each layer's first row in it and its row count."""
    sizes = np.array([(self.kernel_size - 1) * d for d in dilations(self.layers, self.cycle)])
    return np.cumsum(sizes) - sizes, sizes

  def init_cache(self, batch: int, length: int | None = None) -> dict:
    """Empty generation state: the time index and, per layer, a ring buffer of what its kernel reads of the past.

    A layer's input is multiplied by all its kernel taps in the step that makes it; the buffer keeps
    its products with the past taps, (kernel_size - 1) x 2 * gate_channels per row, for the steps
    that read them. The buffers are rows of one (batch, sum of sizes, ...) history, so a step reads
    every layer's past taps with one gather and stores the new products with one scatter.
    """
    del length  # A WaveNet's state does not grow with the sequence.
    _, sizes = self._history_slots()
    width = (self.kernel_size - 1) * 2 * self.gate_channels
    return {"t": jnp.zeros((), jnp.int32), "history": jnp.zeros((batch, int(sizes.sum()), width), self.dtype)}

  def conditioning_terms(self, cond: jax.Array | None = None) -> jax.Array:
    """What `step_with_terms` adds to each layer's gate: bias + conditioning, (batch, [time,] layers, 2 * gate).

    cond: (batch, [time,] cond_channels). Computing it for many
    timesteps at once turns the per-step conditioning projections into one large matmul.
    """
    terms = self._cast(self.conv_b)
    if self.cond_channels:
      if cond is None:
        raise ValueError("this WaveNet is conditioned (cond_channels > 0): pass `cond`")
      w = self._cast(self.cond_w)
      proj = self._cast(cond) @ w.reshape(w.shape[0], -1)
      terms = terms + proj.reshape(proj.shape[:-1] + (self.layers, -1))
    return terms

  def step(self, cache: dict, prev_token: jax.Array, cond_t: jax.Array | None = None):
    """One timestep: (logits for the token at cache['t'], next cache), given the token before it.

    prev_token: (batch,) int, -1 at the first step; cond_t: (batch, cond_channels) at this timestep.
    """
    terms = jnp.broadcast_to(
      self.conditioning_terms(cond_t), (prev_token.shape[0], self.layers, 2 * self.gate_channels)
    )
    return self.step_with_terms(cache, prev_token, terms, self.step_weights())

  def step_weights(self) -> dict:
    """The weights `step_with_terms` reads, one array per layer and matmul.

    A sampling loop makes them once, outside its body: slices or transposes of the stacked
    parameters taken inside it would be copied at every step.
    """
    w = self._cast(self.conv_w)
    return {
      # Per layer, every kernel tap side by side, the current one first: (residual, kernel_size x 2 * gate).
      "taps": tuple(jnp.concatenate(list(w[:, ::-1].swapaxes(0, 1)), axis=-1)),
      "res_skip": tuple(jnp.concatenate([self._cast(self.res_w), self._cast(self.skip_w)], axis=-1)),
      "res_b": tuple(self._cast(self.res_b)),
    }

  def step_with_terms(self, cache: dict, prev_token: jax.Array, terms: jax.Array, weights: dict):
    """`step` given this timestep's `conditioning_terms` (batch, layers, 2 * gate) and `step_weights()`."""
    t, history = cache["t"], cache["history"]
    offsets, sizes = self._history_slots()
    k, batch, width = self.kernel_size, prev_token.shape[0], 2 * self.gate_channels
    h = self._cast(embed_tokens(self.embedding, prev_token))
    if k > 1:  # Every layer's past taps, read before any is overwritten: tap m from the row m * d steps back.
      back = np.arange(1, k)[None, :] * (sizes[:, None] // (k - 1))  # Layer x tap: steps back.
      rows = offsets[:, None] + (t - back) % sizes[:, None]
      slots = rows * (k - 1) + np.arange(k - 1)  # Row t - m * d holds tap m's product in its part m.
      parts = history.reshape(batch, -1, width)[:, slots.reshape(-1)]
      terms = terms + parts.reshape(batch, self.layers, k - 1, width).sum(axis=2)
    if batch == 1:  # Vectors: XLA's CPU backend copies a (1, n) operand around every matmul.
      h, terms = h[0], terms[0]
    stored, skip = [], self._cast(self.skip_b)
    for i in range(self.layers):
      products = h @ weights["taps"][i]  # This step's tap, then what the next (k - 1) taps will read.
      stored.append(products[..., width:])
      g = self._gate(terms[..., i, :] + products[..., :width])
      res_skip = g @ weights["res_skip"][i]  # One matmul for both projections.
      h = h + res_skip[..., : h.shape[-1]] + weights["res_b"][i]
      skip = skip + res_skip[..., h.shape[-1] :]
    if k > 1:
      history = history.at[:, offsets + t % sizes].set(jnp.stack(stored, axis=-2))
    logits = self._logits(skip)
    return logits.reshape(batch, -1), {"t": t + 1, "history": history}
