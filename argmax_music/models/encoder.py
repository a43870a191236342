"""The encoder: a non-causal stack of dilated residual 1-D convolutions with strided downsampling.

It reads a sequence of classes (mu-law samples, or the codes of the level below),
and emits one `out_dim`-vector every `hop = prod(strides)` timesteps: hop 8 = 2x2x2,
20 = 4x5, 64 = 4x4x4 or 8x8.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class ResidualBlock(nn.Module):
  """x + 1x1(relu(dilated conv(relu(x)))), non-causal ('SAME' padding)."""

  channels: int
  kernel_size: int
  dilation: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = nn.Conv(self.channels, (self.kernel_size,), kernel_dilation=(self.dilation,), padding="SAME", dtype=self.dtype)(
      jax.nn.relu(x)
    )
    return x + nn.Dense(self.channels, dtype=self.dtype)(jax.nn.relu(h))


class Encoder(nn.Module):
  """Embeds input classes, then per stride: residual blocks (dilations 1, 2, 4, ...) and a strided conv."""

  num_classes: int
  out_dim: int
  strides: tuple[int, ...] = (4, 5)
  channels: int = 64
  blocks_per_stage: int = 3
  kernel_size: int = 3
  dtype: Any = jnp.float32

  @property
  def hop(self) -> int:
    return math.prod(self.strides)

  @nn.compact
  def __call__(self, tokens: jax.Array) -> jax.Array:
    """(batch, time) classes -> (batch, time / hop, out_dim)."""
    if tokens.shape[1] % self.hop:
      raise ValueError(
        f"encoder input length {tokens.shape[1]} is not a multiple of the hop {self.hop} "
        f"(strides {' x '.join(map(str, self.strides))})"
      )
    h = nn.Embed(self.num_classes, self.channels, dtype=self.dtype)(tokens)
    for stride in self.strides:
      for b in range(self.blocks_per_stage):
        h = ResidualBlock(self.channels, self.kernel_size, 2**b, self.dtype)(h)
      h = nn.Conv(self.channels, (2 * stride,), strides=(stride,), padding="SAME", dtype=self.dtype)(h)
    for b in range(self.blocks_per_stage):
      h = ResidualBlock(self.channels, self.kernel_size, 2**b, self.dtype)(h)
    return nn.Dense(self.out_dim, dtype=self.dtype)(jax.nn.relu(h)).astype(jnp.float32)
