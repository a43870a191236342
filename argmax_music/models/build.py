"""Build models from config sections: a section's keys are the module's fields (`WaveNet(**model.decoder)`).

A new module field needs only a key in `configs/base.py`; nothing here changes.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from argmax_music.models.ada import ADA, Upsampler
from argmax_music.models.encoder import Encoder
from argmax_music.models.prior import TransformerPrior
from argmax_music.models.quantizers import ArgmaxQuantizer, VectorQuantizer
from argmax_music.models.wavenet import WaveNet

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
QUANTIZERS = {"argmax": ArgmaxQuantizer, "vq": VectorQuantizer}
PRIORS = {"wavenet": WaveNet, "transformer": TransformerPrior}


def compute_dtype(name: str):
  if name not in DTYPES:
    raise ValueError(f"dtype={name!r}: expected one of {sorted(DTYPES)}")
  return DTYPES[name]


def kwargs(section, cls=None) -> dict:
  """A config section as keyword arguments (lists as tuples); with `cls`, only the keys that are its fields."""
  names = None if cls is None else {f.name for f in dataclasses.fields(cls)}
  return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items() if names is None or k in names}


def build_quantizer(q, num_codes: int):
  """The quantizer of kind `q.kind`; the section's keys that are its fields configure it."""
  if q.kind not in QUANTIZERS:
    raise ValueError(f"model.quantizer.kind={q.kind!r}: expected one of {sorted(QUANTIZERS)}")
  cls = QUANTIZERS[q.kind]
  return cls(num_codes, **kwargs(q, cls))


def build_wavenet(section, num_classes: int, cond_channels: int = 0, dtype=jnp.float32) -> WaveNet:
  return WaveNet(num_classes, **kwargs(section), cond_channels=cond_channels, dtype=dtype)


def build_ada(model, signal_classes: int) -> ADA:
  """The ADA of config section `model` for a signal of `signal_classes` classes (256 or the K below)."""
  dtype = compute_dtype(model.dtype)
  quantizer = build_quantizer(model.quantizer, model.num_codes)
  encoder = Encoder(signal_classes, quantizer.input_dim, **kwargs(model.encoder), dtype=dtype)
  upsampler = Upsampler(encoder.hop, **kwargs(model.upsampler, Upsampler), dtype=dtype)
  decoder = build_wavenet(model.decoder, signal_classes, model.upsampler.channels, dtype)
  return ADA(
    encoder,
    quantizer,
    upsampler,
    decoder,
    model.decoder_input_noise,
    model.decoder_blind_fraction,
    fixed_codes=bool(model.codes_from),
    code_noise=model.code_noise,
  )


def build_prior(prior, num_codes: int, cond_channels: int = 0):
  """The prior of config section `prior` (its `kind` names the sub-section) over `num_codes` codes; a WaveNet
  prior with `cond_channels` of conditioning at every step."""
  if prior.kind not in PRIORS:
    raise ValueError(f"prior.kind={prior.kind!r}: expected one of {sorted(PRIORS)}")
  extra = {"cond_channels": cond_channels} if cond_channels else {}
  return PRIORS[prior.kind](num_codes, **kwargs(prior[prior.kind]), **extra, dtype=compute_dtype(prior.dtype))
