"""The autoregressive discrete autoencoder: encoder -> quantizer -> upsampler -> conditional WaveNet."""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from argmax_music.models.encoder import Encoder
from argmax_music.models.quantizers import Quantized
from argmax_music.models.wavenet import WaveNet, corrupt_tokens

LOG2 = math.log(2.0)


class Upsampler(nn.Module):
  """Code vectors at the code rate -> conditioning at the signal rate.

  A 1x1 projection, each vector repeated `hop` times, then a learned (non-causal) convolution.
  normalize=True puts a LayerNorm over channels after the projection, so every code's
  conditioning vector starts at unit scale whatever K is (an AMAE's one-hot code picks one row
  of the projection, whose initial scale falls as 1/sqrt(K)).
  """

  hop: int
  channels: int
  kernel_size: int = 9
  normalize: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, vectors: jax.Array) -> jax.Array:
    h = nn.Dense(self.channels, dtype=self.dtype)(vectors)
    if self.normalize:
      # No learned scale or offset: the convolution below is linear in h and has a bias, so it learns a
      # per-channel scale and offset itself; a scale here would only add a second way to shrink the conditioning.
      h = nn.LayerNorm(use_scale=False, use_bias=False, dtype=self.dtype)(h)
    h = jnp.repeat(h, self.hop, axis=1)
    return nn.Conv(self.channels, (self.kernel_size,), padding="SAME", dtype=self.dtype)(h)


class ADA(nn.Module):
  """One level of the hierarchy. Build with `build_ada(config)` (argmax_music.models.build)."""

  encoder: Encoder
  quantizer: nn.Module
  upsampler: Upsampler
  decoder: WaveNet
  decoder_input_noise: float = 0.0
  decoder_blind_fraction: float = 0.0
  fixed_codes: bool = False  # The encoder and quantizer are another level's (model.codes_from): no loss reaches them.
  code_noise: float = 0.0  # In training, the share of codes the decoder reads as random ones (noisy_code_vectors).

  @property
  def hop(self) -> int:
    return self.encoder.hop

  def __call__(self, signal: jax.Array, train: bool = True) -> tuple[jax.Array, Quantized]:
    """Decoder logits (batch, time, classes) for `signal` (batch, time), and the quantizer's output."""
    quantized = self.quantizer(self.encoder(signal), train=train and not self.fixed_codes)
    if self.fixed_codes:  # No codebook update or restart above; no gradient or auxiliary loss here.
      embedding = jax.lax.stop_gradient(quantized.embedding)
      quantized = quantized._replace(embedding=embedding, aux_loss=jnp.zeros_like(quantized.aux_loss))
    inputs = self.corrupt(signal) if train else signal
    vectors = self.noisy_code_vectors(quantized) if train and self.code_noise else quantized.embedding
    return self.decoder(inputs, self.upsampler(vectors)), quantized

  def noisy_code_vectors(self, quantized: Quantized) -> jax.Array:
    """The code vectors the decoder is conditioned on in training with `code_noise`: each, with that probability,
    a uniformly random code's (the rest keep their gradient), so that the decoder learns to render codes with errors
    in them, as a prior's samples have."""
    codes = corrupt_tokens(self.make_rng("noise"), quantized.codes, self.code_noise, self.quantizer.num_codes)
    changed = (codes != quantized.codes)[..., None]
    return jnp.where(changed, self.quantizer.embed_codes(codes).astype(quantized.embedding.dtype), quantized.embedding)

  def corrupt(self, signal: jax.Array) -> jax.Array:
    """The decoder's input in training: each timestep, with probability `decoder_input_noise`, a random class
    instead (the targets stay clean), so that the decoder cannot predict from its own past alone and must read the
    codes (word dropout, Bowman et al. 2016); each sequence, with probability `decoder_blind_fraction`, random
    throughout, so that on it the decoder predicts from the codes alone. 0 and 0: the signal itself."""
    if not (self.decoder_input_noise or self.decoder_blind_fraction):
      return signal
    key, rate = self.make_rng("noise"), self.decoder_input_noise
    if self.decoder_blind_fraction:  # (Only then a second key: runs without it keep their noise stream.)
      blind_key, key = jax.random.split(key)
      blind = jax.random.bernoulli(blind_key, self.decoder_blind_fraction, (signal.shape[0], 1))
      rate = jnp.where(blind, 1.0, rate)
    return corrupt_tokens(key, signal, rate, self.decoder.num_classes)

  def encode(self, signal: jax.Array) -> jax.Array:
    """Codes (batch, time / hop) of a signal."""
    return self.quantizer(self.encoder(signal), train=False).codes

  def condition(self, codes: jax.Array) -> jax.Array:
    """The decoder's conditioning (batch, time * hop, channels) for given codes."""
    return self.upsampler(self.quantizer.embed_codes(codes))

  def expected_condition(self, probabilities: jax.Array) -> jax.Array:
    """The decoder's conditioning for a distribution over the codes (batch, time, K): that of the expected code
    vector (a one-hot distribution gives `condition` of its code)."""
    vectors = self.quantizer.embed_codes(jnp.arange(probabilities.shape[-1]))
    return self.upsampler(probabilities @ vectors)


def nll_bits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean negative log-likelihood of `targets` under `logits`, in bits per timestep."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.mean(jnp.take_along_axis(logp, targets[..., None].astype(jnp.int32), axis=-1)) / LOG2
