"""What each stage trains: its model, loss, eval sums, what it logs, and the checks of the config sections it uses.

  AdaTask      stage 'ada': a level of the hierarchy (encoder, quantizer, conditional WaveNet decoder)
  PriorTask    stage 'prior': the autoregressive model over the top level's codes
  WaveNetTask  stage 'wavenet': an unconditional WaveNet shaped like `model.decoder` (what the codes add)

The train loop (`argmax_music.train`), the sampler and the encoder are the same for every
stage; anything that differs between stages is a method or attribute here.
"""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from argmax_music.config import ConfigError
from argmax_music.metrics.keys import KEYS, key_index
from argmax_music.models import build, generate
from argmax_music.models.ada import LOG2, nll_bits
from argmax_music.models.quantizers import code_statistics
from argmax_music.models.wavenet import corrupt_tokens, receptive_field, replace_tokens


def check_crop(config, crop_key_value: int, model_key: str, section) -> None:
  """Refuse a crop shorter than the receptive field of the WaveNet in config section `model_key`."""
  field = receptive_field(section.layers, section.cycle, section.kernel_size)
  if crop_key_value < field and not config.data.allow_short_crop:
    raise ConfigError(
      f"data.crop={crop_key_value} is shorter than the receptive field of {model_key} ({field} timesteps from "
      f"{model_key}.layers={section.layers}, .cycle={section.cycle}, .kernel_size={section.kernel_size}): the "
      f"model would never see its whole context. Use data.crop >= {field}, a smaller {model_key}, or "
      "data.allow_short_crop=True."
    )


class Task:
  """An unconditional autoregressive model over the data's classes (the base of the prior and the WaveNet)."""

  is_level = False  # A level has an encoder and codes; the prior and the baseline do not.
  keyed = False  # A key-conditioned prior trains on {"codes", "keys"} batches and samples in a key.
  hop = 1
  frozen: tuple[str, ...] = ()  # Top-level parameter modules the optimizer leaves as they are.
  sections: tuple[str, ...] = ()  # Config keys whose change makes checkpoints incompatible.

  def __init__(self, config, signal_classes: int, data_rate: float | None = None):
    self.config, self.signal_classes, self.data_rate = config, signal_classes, data_rate
    self.model = self.build()
    self.num_codes = signal_classes  # The classes the model emits.

  def build(self):
    raise NotImplementedError

  def check(self, data) -> None:
    """Fail at start, naming the key, on values of this stage's sections that cannot work with `data`."""

  def example_batch(self):
    """The batch the model is initialised with: one crop of zeros (a whole number of codes), shaped as the data
    this stage trains on."""
    return jnp.zeros((1, max(self.hop, self.config.data.crop // self.hop * self.hop)), jnp.int32)

  def targets(self, batch) -> jax.Array:
    """The classes the model predicts in `batch`."""
    return batch

  def model_inputs(self, batch) -> tuple:
    """The model's arguments for `batch`."""
    return (batch,)

  def init(self, rng, batch):
    rngs = {"params": rng, "restart": rng, "noise": rng}
    variables = dict(flax.core.unfreeze(self.model.init(rngs, *self.model_inputs(batch))))
    return variables.pop("params"), variables

  def apply(self, params, model_state, batch, rng=None, train=True):
    """(logits, quantized or None, new model_state)."""
    del rng, train
    return self.model.apply({"params": params, **model_state}, batch), None, model_state

  def loss(self, params, model_state, batch, rng):
    logits, _, model_state = self.apply(params, model_state, batch, rng)
    nll = nll_bits(logits, self.targets(batch))
    return nll * LOG2, ({"nll_bits": nll, "loss": nll * LOG2}, model_state)

  def eval_sums(self, params, model_state, batch):
    """Sums over one eval batch: NLL bits and timesteps (and, for a level, the code histogram)."""
    logits, _, _ = self.apply(params, model_state, batch, train=False)
    targets = self.targets(batch)
    return {"nll_bits": nll_bits(logits, targets) * targets.size, "timesteps": jnp.asarray(targets.size, jnp.float32)}

  def summarize(self, totals: dict) -> dict:
    """The eval result from the summed eval batches."""
    return {"nll_bits": float(totals["nll_bits"] / totals["timesteps"])}

  def log_text(self, metrics: dict) -> str:
    """What this stage adds to the training log line."""
    del metrics
    return ""

  def generator(self, params):
    """(module, params) of the autoregressive model that samples this stage's signal."""
    return self.model, params


class PriorTask(Task):
  """The prior over the top level's codes: a WaveNet or a Transformer (`prior.kind`); with
  `prior.condition_on_key`, a WaveNet conditioned at every step on the key of the piece the code is from (a
  one-hot of `metrics.keys.KEYS`), whose batches are {"codes", "keys"}."""

  sections = ("stage", "prior")

  @property
  def keyed(self) -> bool:
    return bool(self.config.prior.condition_on_key)

  def build(self):
    return build.build_prior(self.config.prior, self.signal_classes, len(KEYS) if self.keyed else 0)

  def example_batch(self):
    codes = super().example_batch()
    return {"codes": codes, "keys": codes} if self.keyed else codes

  def targets(self, batch) -> jax.Array:
    return batch["codes"] if self.keyed else batch

  def model_inputs(self, batch) -> tuple:
    return (batch["codes"], self.key_condition(batch["keys"])) if self.keyed else (batch,)

  @staticmethod
  def key_condition(keys: jax.Array) -> jax.Array:
    """The prior's conditioning (..., len(KEYS)) for key indices (...)."""
    return jax.nn.one_hot(keys, len(KEYS))

  def pieces_condition(self, keys: list[str], length: int) -> jax.Array:
    """The conditioning (pieces, length, len(KEYS)) that asks for piece i in the key named keys[i]."""
    indices = jnp.asarray([key_index(k) for k in keys])
    return jnp.broadcast_to(self.key_condition(indices)[:, None], (len(keys), length, len(KEYS)))

  def check(self, data) -> None:
    config = self.config
    if config.prior.input_noise_kind not in ("uniform", "sampled"):
      raise ConfigError(f"prior.input_noise_kind={config.prior.input_noise_kind!r}; expected 'uniform' or 'sampled'")
    if data.kind != "codes":
      raise ConfigError(
        f"data.dir={config.data.dir} holds {data.kind} data; the prior trains on codes (python -m argmax_music.encode)"
      )
    if config.prior.kind == "transformer" and config.data.crop > config.prior.transformer.max_len:
      raise ConfigError(
        f"data.crop={config.data.crop} exceeds prior.transformer.max_len={config.prior.transformer.max_len}"
      )
    if config.prior.kind == "wavenet":
      check_crop(config, config.data.crop, "prior.wavenet", config.prior.wavenet)
    if self.keyed:
      if config.prior.kind != "wavenet":
        raise ConfigError("prior.condition_on_key=True needs prior.kind='wavenet'")
      data.keys("train")  # An error naming the first file without a key.

  def apply(self, params, model_state, batch, rng=None, train=True):
    hide = self.config.prior.key_dropout
    if self.keyed and train and hide and rng is not None:  # Whole crops without their key: all-zero conditioning.
      hidden = jax.random.bernoulli(jax.random.fold_in(rng, 1), hide, (batch["keys"].shape[0], 1))
      batch = batch | {"keys": jnp.where(hidden, -1, batch["keys"])}
    codes, *cond = self.model_inputs(batch)
    noise = self.config.prior.input_noise
    if train and noise and rng is not None:
      codes = self.noisy_inputs(params, model_state, codes, rng, *cond)
    return self.model.apply({"params": params, **model_state}, codes, *cond), None, model_state

  def noisy_inputs(self, params, model_state, batch, rng, cond=None):
    """`batch` with each code replaced, with probability `prior.input_noise`, by a uniformly random code
    (`prior.input_noise_kind='uniform'`) or by the prior's own sample for that step given the real codes before it
    ('sampled': one more forward pass, whose integer draws pass no gradient; parallel scheduled sampling, Duckworth
    et al. 2019), so that in training the prior continues a past with the errors its samples have."""
    prior, kind = self.config.prior, self.config.prior.input_noise_kind
    if kind == "uniform":
      return corrupt_tokens(rng, batch, prior.input_noise, self.signal_classes)
    where_key, sample_key = jax.random.split(rng)
    logits = self.model.apply({"params": params, **model_state}, batch, cond)
    sampled = generate.sample_logits(sample_key, logits)
    return replace_tokens(where_key, batch, prior.input_noise, sampled)


class WaveNetTask(Task):
  """An unconditional WaveNet shaped like `model.decoder`: the baseline that shows what the codes add."""

  sections = ("stage", "model.decoder")

  def build(self):
    return build.build_wavenet(
      self.config.model.decoder, self.signal_classes, dtype=build.compute_dtype(self.config.model.dtype)
    )

  def check(self, data) -> None:
    del data
    check_crop(self.config, self.config.data.crop, "model.decoder", self.config.model.decoder)


class AdaTask(Task):
  """A level: encoder -> quantizer -> upsampler -> conditional WaveNet decoder; NLL plus the quantizer's loss."""

  is_level = True
  sections = ("stage", "model")

  def __init__(self, config, signal_classes: int, data_rate: float | None = None):
    super().__init__(config, signal_classes, data_rate)
    self.hop = self.model.hop
    self.num_codes = config.model.num_codes
    self.frozen = ("encoder", "quantizer") if config.model.codes_from else ()

  def build(self):
    return build.build_ada(self.config.model, self.signal_classes)

  @property
  def codes_per_second(self) -> float | None:
    return self.data_rate / self.hop if self.data_rate else None

  def check(self, data) -> None:
    del data
    config = self.config
    if config.data.crop % self.hop:
      raise ConfigError(
        f"data.crop={config.data.crop} is not a multiple of the hop {self.hop} "
        f"(model.encoder.strides={tuple(config.model.encoder.strides)})"
      )
    check_crop(config, config.data.crop, "model.decoder", config.model.decoder)
    q = config.model.quantizer
    positions = config.train.batch_size * config.data.crop // self.hop
    diverse = q.diversity_weight or q.code_diversity_weight
    if q.kind == "argmax" and diverse and not q.diversity_target_decay and positions < 8 * self.num_codes:
      logging.warning(
        "the diversity loss sees %d code positions a step (train.batch_size x data.crop / hop) for K = %d codes: "
        "with fewer than 8 per code it punishes any code that repeats within the batch; a running target "
        "(model.quantizer.diversity_target_decay, e.g. 0.99) or a larger batch measures usage over more positions",
        positions,
        self.num_codes,
      )

  def apply(self, params, model_state, batch, rng=None, train=True):
    variables = {"params": params, **model_state}
    rngs = {"restart": rng, "noise": jax.random.fold_in(rng, 1)} if rng is not None else None
    if train and model_state:
      (logits, quantized), new_state = self.model.apply(
        variables, batch, train=True, rngs=rngs, mutable=list(model_state)
      )
      return logits, quantized, dict(new_state)
    logits, quantized = self.model.apply(variables, batch, train=train, rngs=rngs)
    return logits, quantized, model_state

  def loss(self, params, model_state, batch, rng):
    logits, quantized, model_state = self.apply(params, model_state, batch, rng)
    nll = nll_bits(logits, batch)
    loss = nll * LOG2 + quantized.aux_loss
    metrics = {
      "nll_bits": nll,
      "aux_loss": quantized.aux_loss,
      "loss": loss,
      **code_statistics(quantized.stats["histogram"], self.codes_per_second),
    }
    metrics.update({k: v for k, v in quantized.stats.items() if k != "histogram"})  # VQ: dead codes by EMA count.
    return loss, (metrics, model_state)

  def eval_sums(self, params, model_state, batch):
    logits, quantized, _ = self.apply(params, model_state, batch, train=False)
    return {
      "nll_bits": nll_bits(logits, batch) * batch.size,
      "timesteps": jnp.asarray(batch.size, jnp.float32),
      "histogram": quantized.stats["histogram"],
    }

  def summarize(self, totals: dict) -> dict:
    """NLL, and for the argmax codes: usage, perplexity, entropy, dead codes, effective bit rate, collapse."""
    result = super().summarize(totals)
    stats = code_statistics(np.asarray(totals["histogram"]), self.codes_per_second)
    result.update({k: float(v) for k, v in stats.items()}, dead_codes=int(stats["dead_codes"]))
    e = self.config.eval
    result["collapsed"] = bool(result["entropy_bits"] < e.collapse_entropy_bits or result["usage"] < e.collapse_usage)
    if result["collapsed"]:
      logging.warning(
        "the codes have collapsed: entropy %.3f bits per code (eval.collapse_entropy_bits=%g), "
        "usage %.3f of the %d codes (eval.collapse_usage=%g), perplexity %.2f",
        result["entropy_bits"],
        e.collapse_entropy_bits,
        result["usage"],
        self.num_codes,
        e.collapse_usage,
        result["perplexity"],
      )
    return result

  def log_text(self, metrics: dict) -> str:
    return f"  usage {metrics['usage']:.2f}  entropy {metrics['entropy_bits']:.2f} bits/code"

  def generator(self, params):
    return self.model.decoder, params["decoder"]

  def encoder(self, params, model_state):
    """A jitted function: signal (batch, time) -> codes (batch, time / hop)."""
    variables = {"params": params, **model_state}
    return jax.jit(functools.partial(self.model.apply, variables, method=self.model.encode))

  def condition(self, params, model_state, codes):
    """The decoder's conditioning (batch, time * hop, channels) for given codes."""
    return self.model.apply({"params": params, **model_state}, jnp.asarray(codes), method=self.model.condition)

  def expected_condition(self, params, model_state, probabilities):
    """The decoder's conditioning for a distribution over the codes at each step (batch, time, K)."""
    variables = {"params": params, **model_state}
    return self.model.apply(variables, jnp.asarray(probabilities), method=self.model.expected_condition)


TASKS = {"ada": AdaTask, "prior": PriorTask, "wavenet": WaveNetTask}
STAGES = tuple(TASKS)


def make_task(config, signal_classes: int, data_rate: float | None = None) -> Task:
  """The task of `config.stage` for a signal of `signal_classes` classes at `data_rate` timesteps per second."""
  if config.stage not in TASKS:
    raise ConfigError(f"stage={config.stage!r}: expected one of {STAGES}")
  return TASKS[config.stage](config, signal_classes, data_rate)
