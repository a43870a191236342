"""The analytic FLOP counts of benchmarks/flops.py against the matmuls and convolutions the models really trace."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import jax
import jax.extend
import jax.numpy as jnp

from argmax_music.models.encoder import Encoder
from argmax_music.models.wavenet import WaveNet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import flops  # noqa: E402


def traced_macs(jaxpr) -> int:
  """Multiply-adds of every dot_general and convolution in a jaxpr, nested calls included."""
  total = 0
  for eqn in jaxpr.eqns:
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      total += traced_macs(sub)
    if eqn.primitive.name == "dot_general":
      (contract, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in contract)
    elif eqn.primitive.name == "conv_general_dilated":
      kernel = eqn.invars[1].aval.shape  # Flax: (width, in, out); the output counts `out` already.
      total += math.prod(eqn.outvars[0].aval.shape) * math.prod(kernel[:-1])
  return total


def test_wavenet_macs_match_the_traced_model():
  model = WaveNet(
    7, layers=3, cycle=2, kernel_size=3, residual_channels=4, gate_channels=3, skip_channels=5, cond_channels=2
  )
  tokens, cond = jnp.zeros((2, 16), jnp.int32), jnp.zeros((2, 16, 2))
  params = jax.eval_shape(model.init, jax.random.key(0), tokens, cond)
  jaxpr = jax.make_jaxpr(lambda p: model.apply(p, tokens, cond))(params).jaxpr
  per_timestep = flops.wavenet_forward_macs(3, 3, 4, 3, 5, 7, cond_channels=2)
  # By hand: 3 layers x (3*4*6 + 2*6 + 3*4 + 3*5) + 5*5 + 5*7.
  assert per_timestep == 3 * (72 + 12 + 12 + 15) + 25 + 35
  assert traced_macs(jaxpr) == per_timestep * tokens.size


def test_encoder_macs_match_the_traced_model():
  model = Encoder(7, 6, strides=(2, 3), channels=4, blocks_per_stage=2, kernel_size=3)
  tokens = jnp.zeros((2, 24), jnp.int32)
  params = jax.eval_shape(model.init, jax.random.key(0), tokens)
  jaxpr = jax.make_jaxpr(lambda p: model.apply(p, tokens))(params).jaxpr
  per_timestep = flops.encoder_forward_macs((2, 3), 4, 2, 3, 6)
  assert traced_macs(jaxpr) == round(per_timestep * tokens.size)
