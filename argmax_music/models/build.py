"""Build models from config sections (ml_collections ConfigDicts or plain dicts)."""

from __future__ import annotations

import jax.numpy as jnp

from argmax_music.models.ada import ADA, Upsampler
from argmax_music.models.encoder import Encoder
from argmax_music.models.prior import TransformerPrior
from argmax_music.models.quantizers import ArgmaxQuantizer, VectorQuantizer
from argmax_music.models.wavenet import WaveNet

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str):
  if name not in DTYPES:
    raise ValueError(f"model.dtype={name!r}: expected one of {sorted(DTYPES)}")
  return DTYPES[name]


def build_quantizer(q, num_codes: int):
  if q.kind == "argmax":
    return ArgmaxQuantizer(num_codes, diversity_weight=q.diversity_weight)
  if q.kind == "vq":
    return VectorQuantizer(num_codes, dim=q.dim, commitment=q.commitment, ema_decay=q.ema_decay,
                           restart_threshold=q.restart_threshold)
  raise ValueError(f"model.quantizer.kind={q.kind!r}: expected 'argmax' or 'vq'")


def build_wavenet(d, num_classes: int, cond_channels: int = 0, dtype=jnp.float32) -> WaveNet:
  return WaveNet(num_classes, layers=d.layers, cycle=d.cycle, kernel_size=d.kernel_size,
                 residual_channels=d.residual_channels, gate_channels=d.gate_channels,
                 skip_channels=d.skip_channels, cond_channels=cond_channels, dtype=dtype)


def build_ada(model, signal_classes: int) -> ADA:
  """The ADA of config section `model` for a signal of `signal_classes` classes (256 or the K below)."""
  dtype = compute_dtype(model.dtype)
  quantizer = build_quantizer(model.quantizer, model.num_codes)
  e, u = model.encoder, model.upsampler
  encoder = Encoder(signal_classes, quantizer.input_dim, strides=tuple(e.strides), channels=e.channels,
                    blocks_per_stage=e.blocks_per_stage, kernel_size=e.kernel_size, dtype=dtype)
  upsampler = Upsampler(encoder.hop, u.channels, u.kernel_size, u.mode, dtype)
  decoder = build_wavenet(model.decoder, signal_classes, u.channels, dtype)
  return ADA(encoder, quantizer, upsampler, decoder)


def build_prior(prior, num_codes: int):
  """The prior of config section `prior` over `num_codes` codes."""
  dtype = compute_dtype(prior.dtype)
  if prior.kind == "wavenet":
    return build_wavenet(prior.wavenet, num_codes, dtype=dtype)
  if prior.kind == "transformer":
    t = prior.transformer
    return TransformerPrior(num_codes, t.layers, t.heads, t.dim, t.mlp_dim, t.max_len, dtype)
  raise ValueError(f"prior.kind={prior.kind!r}: expected 'wavenet' or 'transformer'")
