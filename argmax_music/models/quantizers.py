"""Quantizers: the paper's argmax autoencoder (AMAE) and the VQ-VAE baseline.

Both map encoder vectors (batch, time, input_dim) to a `Quantized`: integer codes,
the vectors the decoder is conditioned on (with a straight-through gradient), an
auxiliary loss and statistics. Under `jax.jit` over a device mesh the batch is one
global array, so every batch mean here (the diversity target, the EMA counts) is
the global one, whatever the number of devices.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp


class Quantized(NamedTuple):
  codes: jax.Array      # (batch, time) int32
  embedding: jax.Array  # (batch, time, embed_dim): what the decoder is conditioned on
  aux_loss: jax.Array   # scalar, added to the decoder's NLL
  stats: dict           # scalars, plus "histogram": (num_codes,) code counts


def code_histogram(codes: jax.Array, num_codes: int) -> jax.Array:
  """Counts of each code in `codes` (float32, shape (num_codes,))."""
  return jnp.zeros(num_codes, jnp.float32).at[codes.reshape(-1)].add(1.0)


def usage_and_perplexity(histogram: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Fraction of codes used at least once, and exp(entropy) of the code distribution."""
  p = histogram / jnp.maximum(histogram.sum(), 1.0)
  entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
  return jnp.mean(histogram > 0), jnp.exp(entropy)


def _stats(codes, num_codes, **extra) -> dict:
  histogram = code_histogram(codes, num_codes)
  usage, perplexity = usage_and_perplexity(histogram)
  return {"usage": usage, "perplexity": perplexity, "histogram": histogram, **extra}


class ArgmaxQuantizer(nn.Module):
  """AMAE: q = relu(z) / sum(relu(z)); code = argmax q, one-hot forward, straight-through gradient to q.

  Diversity loss: K/(K-1) * sum_k (mean(q)_k - 1/K)^2 over batch and time; 0 when the
  average q is uniform, 1 when every vector picks the same code.
  """

  num_codes: int
  diversity_weight: float = 1.0
  epsilon: float = 1e-6

  @property
  def input_dim(self) -> int:
    return self.num_codes

  @property
  def embed_dim(self) -> int:
    return self.num_codes

  def normalise(self, z: jax.Array) -> jax.Array:
    r = jax.nn.relu(z)
    return r / (jnp.sum(r, axis=-1, keepdims=True) + self.epsilon)

  def diversity_loss(self, q: jax.Array) -> jax.Array:
    k = self.num_codes
    mean_q = jnp.mean(q.reshape(-1, k), axis=0)
    return k / (k - 1) * jnp.sum((mean_q - 1.0 / k) ** 2)

  def __call__(self, z: jax.Array, train: bool = True) -> Quantized:
    del train
    q = self.normalise(z.astype(jnp.float32))
    codes = jnp.argmax(q, axis=-1).astype(jnp.int32)
    one_hot = jax.nn.one_hot(codes, self.num_codes)
    embedding = one_hot + (q - jax.lax.stop_gradient(q))  # Exactly one-hot forward; d/dq backward.
    diversity = self.diversity_loss(q)
    return Quantized(codes, embedding, self.diversity_weight * diversity,
                     _stats(codes, self.num_codes, diversity_loss=diversity))

  def embed_codes(self, codes: jax.Array) -> jax.Array:
    """The decoder's conditioning vectors for given codes (one-hot)."""
    return jax.nn.one_hot(codes, self.num_codes)


class VectorQuantizer(nn.Module):
  """VQ-VAE: nearest of K codebook vectors, straight-through, codebook + beta * commitment losses.

  ema_decay > 0 replaces the codebook loss with exponential-moving-average updates
  (Laplace-smoothed counts) kept in the mutable `vq_ema` collection; then
  restart_threshold > 0 moves codes whose EMA count falls below it onto random
  encoder outputs of the current batch (needs an rng named 'restart').
  """

  num_codes: int
  dim: int = 64
  commitment: float = 0.25
  ema_decay: float = 0.0
  restart_threshold: float = 0.0
  epsilon: float = 1e-5

  @property
  def input_dim(self) -> int:
    return self.dim

  @property
  def embed_dim(self) -> int:
    return self.dim

  def setup(self):
    init = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")
    shape = (self.num_codes, self.dim)
    if not self.ema_decay:
      if self.restart_threshold:
        raise ValueError("quantizer.restart_threshold needs EMA codebook updates (quantizer.ema_decay > 0)")
      self.codebook = self.param("codebook", init, shape)
      return
    self.ema_codebook = self.variable("vq_ema", "codebook", lambda: init(self.make_rng("params"), shape))
    self.ema_counts = self.variable("vq_ema", "counts", lambda: jnp.ones(self.num_codes, jnp.float32))
    self.ema_sums = self.variable("vq_ema", "sums", lambda: self.ema_codebook.value)

  def _codebook(self) -> jax.Array:
    return self.ema_codebook.value if self.ema_decay else self.codebook

  def __call__(self, z: jax.Array, train: bool = True) -> Quantized:
    z = z.astype(jnp.float32)
    codebook = self._codebook()
    flat = z.reshape(-1, self.dim)
    distances = (jnp.sum(flat**2, 1, keepdims=True) - 2 * flat @ codebook.T + jnp.sum(codebook**2, 1)[None])
    codes = jnp.argmin(distances, axis=-1).reshape(z.shape[:-1]).astype(jnp.int32)
    e = codebook[codes]
    commitment = jnp.mean((z - jax.lax.stop_gradient(e)) ** 2)
    codebook_loss = 0.0 if self.ema_decay else jnp.mean((jax.lax.stop_gradient(z) - e) ** 2)
    embedding = z + jax.lax.stop_gradient(e - z)
    stats = _stats(codes, self.num_codes, commitment_distance=commitment)
    if self.ema_decay and train and self.is_mutable_collection("vq_ema") and not self.is_initializing():
      stats["dead_codes"] = self._ema_update(flat, codes.reshape(-1))
    return Quantized(codes, embedding, codebook_loss + self.commitment * commitment, stats)

  def _ema_update(self, flat, codes):
    codebook, counts, sums = self.ema_codebook, self.ema_counts, self.ema_sums
    one_hot = jax.nn.one_hot(codes, self.num_codes)
    d = self.ema_decay
    counts.value = d * counts.value + (1 - d) * one_hot.sum(0)
    sums.value = d * sums.value + (1 - d) * (one_hot.T @ flat)
    total = counts.value.sum()
    smoothed = (counts.value + self.epsilon) / (total + self.num_codes * self.epsilon) * total
    codebook.value = sums.value / smoothed[:, None]
    dead = counts.value < self.restart_threshold
    if self.restart_threshold:
      picks = jax.random.randint(self.make_rng("restart"), (self.num_codes,), 0, flat.shape[0])
      codebook.value = jnp.where(dead[:, None], flat[picks], codebook.value)
      sums.value = jnp.where(dead[:, None], flat[picks], sums.value)
      counts.value = jnp.where(dead, 1.0, counts.value)
    return jnp.sum(dead)

  def embed_codes(self, codes: jax.Array) -> jax.Array:
    """The decoder's conditioning vectors for given codes (codebook rows)."""
    return self._codebook()[codes]
