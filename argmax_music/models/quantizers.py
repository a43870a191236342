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
  codes: jax.Array  # (batch, time) int32
  embedding: jax.Array  # (batch, time, embed_dim): what the decoder is conditioned on
  aux_loss: jax.Array  # scalar, added to the decoder's NLL
  stats: dict  # scalars, plus "histogram": (num_codes,) code counts


def code_histogram(codes: jax.Array, num_codes: int) -> jax.Array:
  """Counts of each code in `codes` (float32, shape (num_codes,))."""
  return jnp.zeros(num_codes, jnp.float32).at[codes.reshape(-1)].add(1.0)


def code_statistics(histogram, codes_per_second: float | None = None) -> dict:
  """Usage, perplexity, entropy (bits per code) and dead codes of a code histogram; the effective bit rate
  (entropy x codes per second) when the rate is known. Works on jnp (in a jitted step) and numpy arrays."""
  p = histogram / jnp.maximum(histogram.sum(), 1.0)
  entropy = 0.0 - jnp.sum(jnp.where(p > 0, p * jnp.log2(jnp.where(p > 0, p, 1.0)), 0.0))  # 0.0 - : no -0.0
  stats = {
    "usage": jnp.mean(histogram > 0),
    "perplexity": 2.0**entropy,
    "entropy_bits": entropy,
    "dead_codes": jnp.sum(histogram == 0),
  }
  if codes_per_second:
    stats["code_bits_per_s"] = entropy * codes_per_second
  return stats


def _stats(codes, num_codes, **extra) -> dict:
  histogram = code_histogram(codes, num_codes)
  return {**code_statistics(histogram), "histogram": histogram, **extra}


def position_entropy_bits(q: jax.Array) -> jax.Array:
  """The mean over positions of the entropy (bits) of each distribution q[..., :]; finite gradients at q = 0."""
  return -jnp.mean(jnp.sum(q * jnp.log2(jnp.maximum(q, 1e-12)), axis=-1))


class ArgmaxQuantizer(nn.Module):
  """AMAE: q = relu(z) / sum(relu(z)); code = argmax q, one-hot forward, straight-through gradient to q.

  Diversity loss, as published descriptions of the paper write it (`diversity_reduce='sum'`):

      L_div = sum_k (K * qbar_k - 1)^2,   qbar = the mean of q over batch and time,

  or that divided by K (`'mean'`). It is 0 when qbar is uniform and K(K-1) ('sum') or K-1
  ('mean') when every vector is one-hot on the same code; its gradient on an unused code
  (qbar_k = 0) is -2K ('sum') or -2 ('mean') with respect to qbar_k. Under jit the mean is
  over the global batch. `aux_loss = diversity_weight * L_div + code_diversity_weight * L_codes`.

  L_codes is the same sum (same reduction) over the argmax codes' own batch frequencies
  (the mean of the one-hot codes), with the straight-through gradient of qbar: its value
  measures how evenly the codes themselves are used, which L_div does not (near-uniform
  q vectors with a small bump on one code give L_div near 0 and a single code).

  diversity_target_decay = d > 0 evaluates both terms at running means instead of the batch's
  alone: in training, mix = d * running + (1 - d) * batch mean; the loss's value is L(mix), its
  gradient L'(mix) reaches the batch mean at full weight (not scaled by 1 - d), and running := mix.
  The running means live in the mutable `quantizer_state` collection (initialised uniform, 1/K);
  outside training (train=False, or the collection not mutable) L(running) is used and not updated.
  diversity_target_mode varies it: 'full' (as above), 'scaled' (the gradient of L(mix) itself, (1 - d) times
  L'(mix)), 'codes' (L_codes alone at its running mean; L_div at the batch's).

  mass_floor > 0 normalises by max(sum relu(z), mass_floor): q's gradient, ~1/sum relu(z), stays
  bounded when the positive mass is tiny (q then sums to less than one; the argmax is unchanged).
  0 is the published normalisation, relu(z) / (sum relu(z) + epsilon).

  confidence_weight > 0 adds that weight times the mean entropy of q at each position (bits;
  logged as `q_entropy` whatever the weight): the forward pass uses the one-hot code and the
  backward pass q, so a diffuse q makes the straight-through gradient describe a different
  input than the decoder saw. 0: not in the published loss.

  balance_rate > 0 picks codes by argmax(q + b) instead of argmax q, where b is a per-code bias (in
  `quantizer_state`; not a parameter, no gradient) that each training step moves by balance_rate towards the
  codes the batch used less than 1/K: b_k += balance_rate * sign(1/K - f_k), f the codes' batch frequencies
  (auxiliary-loss-free load balancing, as mixture-of-experts routers do it). Usage is then kept up without a loss
  on q; q, its gradients and the losses are unchanged, and encoding (train=False) uses b as trained.

  normalizer='softmax' makes q = softmax(z) instead (not the published form): the codes are the same (argmax z
  where an entry is positive), but the straight-through gradient and the losses reach every entry of z, where
  relu(z) gives none to the negative entries, so a code can win a position only if its z there is already positive.

  A vector with no positive entry would give q = 0, code 0 and no gradient; such a
  vector is normalised by a softmax instead (its code is then argmax z, and gradients
  reach every entry, so training can move it back). A code whose z is negative in every
  vector still gets no gradient from either loss (the ReLU's).
  """

  num_codes: int
  diversity_weight: float = 1.0
  diversity_reduce: str = "mean"
  code_diversity_weight: float = 0.0
  diversity_target_decay: float = 0.0
  diversity_target_mode: str = "full"
  mass_floor: float = 0.0
  normalizer: str = "relu"
  confidence_weight: float = 0.0
  balance_rate: float = 0.0
  epsilon: float = 1e-6

  @property
  def input_dim(self) -> int:
    return self.num_codes

  @property
  def embed_dim(self) -> int:
    return self.num_codes

  def normalise(self, z: jax.Array) -> jax.Array:
    """q: relu(z) normalised by its sum (at least `mass_floor`); softmax(z) where no entry of z is positive, or
    everywhere with normalizer='softmax'."""
    if self.normalizer not in ("relu", "softmax"):
      raise ValueError(f"model.quantizer.normalizer={self.normalizer!r}: expected 'relu' or 'softmax'")
    if self.normalizer == "softmax":
      return jax.nn.softmax(z, axis=-1)
    r = jax.nn.relu(z)
    total = jnp.sum(r, axis=-1, keepdims=True)
    return jnp.where(total > 0, r / jnp.maximum(total + self.epsilon, self.mass_floor), jax.nn.softmax(z, axis=-1))

  def spread(self, mean_q: jax.Array) -> jax.Array:
    """sum_k (K * mean_q_k - 1)^2 ('sum'), or that / K ('mean'), of a (K,) mean."""
    if self.diversity_reduce not in ("sum", "mean"):
      raise ValueError(f"model.quantizer.diversity_reduce={self.diversity_reduce!r}: expected 'sum' or 'mean'")
    k = self.num_codes
    total = jnp.sum((k * mean_q - 1.0) ** 2)
    return total / k if self.diversity_reduce == "mean" else total

  def diversity_loss(self, q: jax.Array) -> jax.Array:
    """The batch's own diversity loss: `spread` of the mean of q over all leading axes."""
    return self.spread(jnp.mean(q.reshape(-1, self.num_codes), axis=0))

  def target(self, name: str, batch_mean: jax.Array, update: bool) -> jax.Array:
    """The mean the loss sees: the batch's, or (diversity_target_decay > 0) the running one, in value only."""
    d, mode = self.diversity_target_decay, self.diversity_target_mode
    if mode not in ("full", "scaled", "codes"):
      raise ValueError(f"model.quantizer.diversity_target_mode={mode!r}: expected 'full', 'scaled' or 'codes'")
    if not d or (mode == "codes" and name == "diversity_target"):
      return batch_mean
    uniform = lambda: jnp.full((self.num_codes,), 1.0 / self.num_codes, jnp.float32)
    running = self.variable("quantizer_state", name, uniform)
    value = jnp.asarray(running.value)
    if update:
      value = d * value + (1 - d) * jax.lax.stop_gradient(batch_mean)
      running.value = value
    scale = 1 - d if mode == "scaled" else 1.0
    return scale * batch_mean + jax.lax.stop_gradient(value - scale * batch_mean)  # Value: `value`.

  def pick(self, q: jax.Array, update: bool) -> jax.Array:
    """The codes: argmax q, or (balance_rate > 0) argmax (q + b), b then moved towards the batch's rarer codes."""
    if not self.balance_rate:
      return jnp.argmax(q, axis=-1).astype(jnp.int32)
    bias = self.variable("quantizer_state", "balance_bias", lambda: jnp.zeros((self.num_codes,), jnp.float32))
    codes = jnp.argmax(q + bias.value, axis=-1).astype(jnp.int32)
    if update:
      frequencies = code_histogram(codes, self.num_codes) / codes.size
      bias.value = bias.value + self.balance_rate * jnp.sign(1.0 / self.num_codes - frequencies)
    return codes

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True) -> Quantized:
    k = self.num_codes
    z = z.astype(jnp.float32)
    q = self.normalise(z)
    update = train and self.is_mutable_collection("quantizer_state") and not self.is_initializing()
    codes = self.pick(q, update)  # (argmax: no gradient through the choice.)
    one_hot = jax.nn.one_hot(codes, k)
    embedding = one_hot + (q - jax.lax.stop_gradient(q))  # Exactly one-hot forward; d/dq backward.
    mean_q = jnp.mean(q.reshape(-1, k), axis=0)
    frequencies = jnp.mean(embedding.reshape(-1, k), axis=0)  # Value: the codes' frequencies; gradient: qbar's.
    diversity = self.spread(self.target("diversity_target", mean_q, update))
    code_diversity = self.spread(self.target("code_target", frequencies, update))
    q_entropy = position_entropy_bits(q)
    aux = self.diversity_weight * diversity + self.code_diversity_weight * code_diversity
    aux += self.confidence_weight * q_entropy
    min_mass = jnp.min(jnp.sum(jax.nn.relu(z), axis=-1))
    stats = _stats(
      codes,
      k,
      diversity_loss=diversity,
      code_diversity_loss=code_diversity,
      min_relu_mass=min_mass,
      q_entropy=q_entropy,
    )
    return Quantized(codes, embedding, aux, stats)

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
    # jnp: restored parameters may be numpy arrays, which cannot be indexed by traced codes.
    return jnp.asarray(self.ema_codebook.value if self.ema_decay else self.codebook)

  def __call__(self, z: jax.Array, train: bool = True) -> Quantized:
    z = z.astype(jnp.float32)
    codebook = self._codebook()
    flat = z.reshape(-1, self.dim)
    distances = jnp.sum(flat**2, 1, keepdims=True) - 2 * flat @ codebook.T + jnp.sum(codebook**2, 1)[None]
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
