"""WaveNet: a causal autoregressive model over a sequence of classes (mu-law samples or codes).

Each layer: a dilated causal convolution of the residual stream, plus the layer's
share of the local conditioning (codes upsampled to this rate) and the global
conditioning, through a gated tanh * sigmoid unit, then a residual projection and
a skip projection. The skips are summed, passed through ReLU -> 1x1 -> ReLU -> 1x1
to logits. Inputs are shifted right by one (a learned start embedding first), so
logits[t] predicts tokens[t] from tokens[:t].

`__call__` runs the whole sequence in parallel (training); `step` advances one
timestep with a per-layer ring buffer holding only the (kernel_size - 1) * dilation
past inputs that layer's kernel reads, so a new sample costs O(layers).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


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


class WaveNet(nn.Module):
  """Gated, dilated, causal WaveNet with optional local and global conditioning."""

  num_classes: int
  layers: int = 20
  cycle: int = 10
  kernel_size: int = 2
  residual_channels: int = 64
  gate_channels: int = 64
  skip_channels: int = 128
  cond_channels: int = 0
  global_channels: int = 0
  dtype: Any = jnp.float32

  def setup(self):
    L, k, R, G, S = self.layers, self.kernel_size, self.residual_channels, self.gate_channels, self.skip_channels
    normal = lambda fan_in: nn.initializers.normal(fan_in ** -0.5)
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
    if self.global_channels:
      self.global_w = self.param("global_w", normal(self.global_channels), (self.global_channels, L, 2 * G))
    self.head = [nn.Dense(S, dtype=self.dtype, name="head_hidden"),
                 nn.Dense(self.num_classes, dtype=self.dtype, name="head_logits")]

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.layers, self.cycle, self.kernel_size)

  def _cast(self, x):
    return jnp.asarray(x, self.dtype)

  def _conditioning(self, cond, glob, time_axes: int) -> list[jax.Array | float]:
    """Per-layer conditioning terms (broadcastable to the gate pre-activations)."""
    terms = [0.0] * self.layers
    if self.cond_channels:
      if cond is None:
        raise ValueError("this WaveNet is conditioned (cond_channels > 0): pass `cond`")
      w = self._cast(self.cond_w)
      if time_axes:  # A sequence: one projection per layer (all layers at once would not fit in memory).
        terms = [t + self._cast(cond) @ w[:, i] for i, t in enumerate(terms)]
      else:  # One timestep: one matmul for every layer.
        proj = (self._cast(cond) @ w.reshape(w.shape[0], -1)).reshape(cond.shape[0], self.layers, -1)
        terms = [t + proj[:, i] for i, t in enumerate(terms)]
    if self.global_channels:
      if glob is None:
        raise ValueError("this WaveNet has global conditioning (global_channels > 0): pass `glob`")
      proj = jnp.einsum("bc,clg->blg", self._cast(glob), self._cast(self.global_w))
      proj = proj.reshape(proj.shape[:1] + (1,) * time_axes + proj.shape[1:])
      terms = [t + proj[..., i, :] for i, t in enumerate(terms)]
    return terms

  def _gate(self, z):
    a, b = jnp.split(z, 2, axis=-1)
    return jnp.tanh(a) * jax.nn.sigmoid(b)

  def _logits(self, skip):
    hidden = self.head[0](jax.nn.relu(skip))
    return self.head[1](jax.nn.relu(hidden)).astype(jnp.float32)

  def __call__(self, tokens: jax.Array, cond: jax.Array | None = None, glob: jax.Array | None = None):
    """Logits (batch, time, num_classes): logits[:, t] predicts tokens[:, t] from tokens[:, :t].

    cond: (batch, time, cond_channels) local conditioning at this rate; glob: (batch, global_channels).
    """
    x = self.perturb("inputs", self._cast(embed_tokens(self.embedding, tokens)))  # Tests take d/d(inputs).
    start = jnp.broadcast_to(self._cast(self.embedding[-1]), (x.shape[0], 1, x.shape[2]))
    h = jnp.concatenate([start, x[:, :-1]], axis=1)  # Shift right: position t sees tokens[:, :t].
    terms = self._conditioning(cond, glob, time_axes=1)
    skip = self._cast(self.skip_b)
    for i, d in enumerate(dilations(self.layers, self.cycle)):
      z = jax.lax.conv_general_dilated(
          h, self._cast(self.conv_w[i]), window_strides=(1,), padding=[((self.kernel_size - 1) * d, 0)],
          rhs_dilation=(d,), dimension_numbers=("NWC", "WIO", "NWC"))
      g = self._gate(z + self._cast(self.conv_b[i]) + terms[i])
      skip = skip + g @ self._cast(self.skip_w[i])
      h = h + g @ self._cast(self.res_w[i]) + self._cast(self.res_b[i])
    return self._logits(skip)

  def init_cache(self, batch: int, length: int | None = None) -> dict:
    """Empty generation state: the time index and one ring buffer of past inputs per layer."""
    del length  # A WaveNet's state does not grow with the sequence.
    buffers = tuple(jnp.zeros((batch, (self.kernel_size - 1) * d, self.residual_channels), self.dtype)
                    for d in dilations(self.layers, self.cycle))
    return {"t": jnp.zeros((), jnp.int32), "buffers": buffers}

  def step(self, cache: dict, prev_token: jax.Array, cond_t: jax.Array | None = None,
           glob: jax.Array | None = None):
    """One timestep: (logits for the token at cache['t'], next cache), given the token before it.

    prev_token: (batch,) int, -1 at the first step; cond_t: (batch, cond_channels) at this timestep.
    """
    t = cache["t"]
    h = self._cast(embed_tokens(self.embedding, prev_token))
    terms = self._conditioning(cond_t, glob, time_axes=0)
    buffers, gated = [], []
    for i, d in enumerate(dilations(self.layers, self.cycle)):
      buffer = cache["buffers"][i]
      size = buffer.shape[1]
      if size:
        taps = [jax.lax.dynamic_slice_in_dim(buffer, (t - m * d) % size, 1, axis=1)
                for m in range(self.kernel_size - 1, 0, -1)]
        window = jnp.concatenate(taps + [h[:, None]], axis=1)
        buffer = jax.lax.dynamic_update_slice(buffer, h[:, None], (0, t % size, 0))
      else:
        window = h[:, None]
      buffers.append(buffer)
      z = jnp.einsum("bkr,krg->bg", window, self._cast(self.conv_w[i]))
      g = self._gate(z + self._cast(self.conv_b[i]) + terms[i])
      gated.append(g)
      h = h + g @ self._cast(self.res_w[i]) + self._cast(self.res_b[i])
    # Every layer's skip projection in one matmul.
    skip_w = self._cast(self.skip_w).reshape(-1, self.skip_channels)
    skip = jnp.concatenate(gated, axis=-1) @ skip_w + self._cast(self.skip_b)
    return self._logits(skip), {"t": t + 1, "buffers": tuple(buffers)}
