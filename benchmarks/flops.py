"""Analytic FLOP counts of the WaveNet: the one helper behind every MFU or cost figure the benchmarks print.

Counts multiply-adds of the matmuls only (elementwise gates, softmax and the optimizer are
a few percent at these widths). One multiply-add is 2 FLOPs; a training step costs about 3
forward passes (the backward pass computes gradients with respect to both activations and
weights, twice the forward's matmuls).
"""

from __future__ import annotations


def wavenet_forward_macs(
  layers: int,
  kernel_size: int,
  residual_channels: int,
  gate_channels: int,
  skip_channels: int,
  num_classes: int,
  cond_channels: int = 0,
  global_channels: int = 0,
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
  # Global conditioning is projected once per sequence, not per timestep.
  del global_channels
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
