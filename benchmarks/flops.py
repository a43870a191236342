"""Analytic FLOP counts of the models: the one helper behind every MFU or cost figure the benchmarks print.

Counts multiply-adds of the matmuls only (elementwise gates, softmax and the optimizer are
a few percent at these widths). One multiply-add is 2 FLOPs; a training step costs about 3
forward passes (the backward pass computes gradients with respect to both activations and
weights, twice the forward's matmuls).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# The default configs of the cost and speed benchmarks and the classes of the signal each one models (mu-law audio,
# or level 1's K = 2048 codes).
SIGNAL_CLASSES = {
  "configs/paper.py": 256,
  "configs/paper.py:level=2": 2048,
  "configs/paper.py:stage=prior": 2048,
  "configs/tpu_hop20.py": 256,
  "configs/tpu_hop20.py:prior": 2048,
}


def wavenet_forward_macs(
  layers: int,
  kernel_size: int,
  residual_channels: int,
  gate_channels: int,
  skip_channels: int,
  num_classes: int,
  cond_channels: int = 0,
) -> int:
  """Multiply-adds per timestep of one WaveNet forward pass (`argmax_music.models.wavenet.WaveNet`)."""
  gate_inputs = 2 * gate_channels  # The dilated convolution makes the tanh and the sigmoid halves.
  per_layer = (
    kernel_size * residual_channels * gate_inputs  # dilated convolution
    + cond_channels * gate_inputs  # local conditioning
    + gate_channels * residual_channels  # residual projection
    + gate_channels * skip_channels
  )  # skip projection
  head = skip_channels * skip_channels + skip_channels * num_classes
  return layers * per_layer + head


def encoder_forward_macs(strides, channels: int, blocks_per_stage: int, kernel_size: int, out_dim: int) -> float:
  """Multiply-adds per input timestep of the encoder (`argmax_music.models.encoder.Encoder`)."""
  block = kernel_size * channels * channels + channels * channels  # dilated convolution + 1x1
  rate, macs = 1.0, 0.0  # rate: the stage's timesteps per input timestep
  for stride in strides:
    macs += rate * blocks_per_stage * block
    rate /= stride
    macs += rate * 2 * stride * channels * channels  # strided convolution, kernel 2 x stride
  return macs + rate * (blocks_per_stage * block + channels * out_dim)


def upsampler_forward_macs(hop: int, embed_dim: int, channels: int, kernel_size: int) -> float:
  """Multiply-adds per signal timestep of the 'repeat' upsampler: a projection per code, a convolution per step."""
  return embed_dim * channels / hop + kernel_size * channels * channels


def train_flops(forward_macs_per_timestep: int, timesteps: int) -> float:
  """FLOPs of one training step (forward + backward) over `timesteps` timesteps in all."""
  return 2.0 * 3.0 * forward_macs_per_timestep * timesteps


def signal_classes(spec: str, config) -> int:
  """The classes of the signal `spec` models: from SIGNAL_CLASSES, else from its prepared data's manifest."""
  if spec in SIGNAL_CLASSES:
    return SIGNAL_CLASSES[spec]
  manifest = Path(config.data.dir) / "manifest.json"
  if not manifest.exists():
    raise ValueError(f"{spec}: no {manifest} to read its signal's classes from; prepare its data.dir first")
  return int(json.loads(manifest.read_text())["num_classes"])


def without_cycle(section) -> dict:
  return {k: v for k, v in section.items() if k != "cycle"}  # The dilations do not change the count.


def analytic_macs(config, classes: int) -> dict:
  """Forward multiply-adds per signal timestep of a config's model of `classes`-way signals: the autoregressive
  WaveNet alone, and the whole model."""
  if config.stage == "prior":
    if config.prior.kind != "wavenet":
      raise ValueError("the analytic count covers WaveNet priors only")
    wavenet = wavenet_forward_macs(num_classes=classes, **without_cycle(config.prior.wavenet))
    return {"wavenet": wavenet, "total": wavenet}
  model = config.model
  wavenet = wavenet_forward_macs(
    num_classes=classes, cond_channels=model.upsampler.channels, **without_cycle(model.decoder)
  )
  hop = math.prod(model.encoder.strides)
  embed_dim = model.num_codes if model.quantizer.kind == "argmax" else model.quantizer.dim
  encoder = encoder_forward_macs(
    model.encoder.strides, model.encoder.channels, model.encoder.blocks_per_stage, model.encoder.kernel_size, embed_dim
  )
  upsampler = upsampler_forward_macs(hop, embed_dim, model.upsampler.channels, model.upsampler.kernel_size)
  vq = model.num_codes * model.quantizer.dim / hop if model.quantizer.kind == "vq" else 0.0
  return {"wavenet": wavenet, "encoder": encoder, "upsampler": upsampler, "total": wavenet + encoder + upsampler + vq}
