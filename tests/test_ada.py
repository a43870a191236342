"""The ADA (one level): it learns a clip; what its decoder reads in training: input and code noise, blind sequences."""

import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from argmax_music.models.ada import ADA, Upsampler, nll_bits
from argmax_music.models.encoder import Encoder
from argmax_music.models.quantizers import ArgmaxQuantizer, VectorQuantizer
from argmax_music.models.wavenet import WaveNet, corrupt_tokens


def tiny_ada(quantizer):
  return ADA(
    Encoder(256, quantizer.input_dim, strides=(2, 4), channels=16, blocks_per_stage=1),
    quantizer,
    Upsampler(8, 16, 3),
    WaveNet(256, layers=6, cycle=6, residual_channels=16, gate_channels=16, skip_channels=32, cond_channels=16),
  )


@pytest.mark.parametrize("quantizer", [ArgmaxQuantizer(16), VectorQuantizer(16, dim=8)])
@pytest.mark.slow
def test_ada_overfits_one_clip(quantizer):
  from argmax_music import audio

  t = np.arange(800) / 16000
  clip = jnp.asarray(audio.mu_law_encode(0.6 * np.sin(2 * np.pi * 330 * t))[None].astype(np.int32))
  model = tiny_ada(quantizer)
  params = model.init(jax.random.key(0), clip)["params"]

  def loss(p):
    logits, q = model.apply({"params": p}, clip)
    return nll_bits(logits, clip) * math.log(2) + q.aux_loss, nll_bits(logits, clip)

  opt = optax.adam(3e-3)
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    (_, nll), g = jax.value_and_grad(loss, has_aux=True)(params)
    updates, state = opt.update(g, state)
    return optax.apply_updates(params, updates), state, nll

  first = None
  for _ in range(150):
    params, state, nll = step(params, state)
    first = first if first is not None else float(nll)
  assert first > 7.0 and float(nll) < 3.0
  codes = model.apply({"params": params}, clip, method=model.encode)
  assert codes.shape == (1, 100)
  assert model.apply({"params": params}, codes, method=model.condition).shape == (1, 800, 16)


def test_few_code_positions_per_step_warn_at_start(caplog):
  from argmax_music import tasks
  from configs import tiny

  config = tiny.get_config("ada")  # 4 crops x 160 samples / hop 8 = 80 code positions a step for K = 16.
  with caplog.at_level(logging.WARNING):
    tasks.make_task(config, 256, 16000).check(None)
  assert "80 code positions a step" in caplog.text
  caplog.clear()
  config.model.quantizer.diversity_target_decay = 0.99
  with caplog.at_level(logging.WARNING):
    tasks.make_task(config, 256, 16000).check(None)
  assert "code positions" not in caplog.text


def test_decoder_input_noise_corrupts_the_decoder_input_in_training_only():
  clip = jax.random.randint(jax.random.key(1), (2, 800), 0, 256)
  clean = tiny_ada(VectorQuantizer(16, dim=8))
  noisy = clean.clone(decoder_input_noise=0.25)
  params = noisy.init({"params": jax.random.key(0), "noise": jax.random.key(0)}, clip)["params"]
  corrupted = noisy.apply({"params": params}, clip, rngs={"noise": jax.random.key(2)}, method=noisy.corrupt)
  assert 0.2 < float(jnp.mean(corrupted != clip)) < 0.3  # 1/4 replaced (of 1,600: std 0.011)
  assert bool(jnp.all((corrupted >= 0) & (corrupted < 256)))
  rngs = {"noise": jax.random.key(2)}
  np.testing.assert_array_equal(  # Evaluation and sampling see the signal itself.
    noisy.apply({"params": params}, clip, train=False)[0], clean.apply({"params": params}, clip, train=False)[0]
  )
  trained = noisy.apply({"params": params}, clip, rngs=rngs)[0]
  assert float(jnp.max(jnp.abs(trained - clean.apply({"params": params}, clip)[0]))) > 1e-3
  cond = clean.apply(
    {"params": params}, clean.apply({"params": params}, clip, method=clean.encode), method=clean.condition
  )
  decoded = clean.decoder.apply({"params": params["decoder"]}, corrupted, cond)
  np.testing.assert_allclose(trained, decoded, rtol=1e-5, atol=1e-5)  # The decoder read the corrupted input.


def test_code_noise_conditions_the_decoder_on_random_codes_in_training_only():
  clip = jax.random.randint(jax.random.key(1), (4, 800), 0, 256)
  ada = tiny_ada(VectorQuantizer(16, dim=8)).clone(code_noise=0.5)
  variables = ada.init({"params": jax.random.key(0), "noise": jax.random.key(0)}, clip)
  quantized = ada.apply(variables, clip, method=lambda m, s: m.quantizer(m.encoder(s), train=False))
  vectors = ada.apply(variables, quantized, rngs={"noise": jax.random.key(2)}, method=ada.noisy_code_vectors)
  changed = np.asarray(jnp.any(vectors != quantized.embedding, axis=-1))
  assert 0.37 < changed.mean() < 0.57  # Half replaced, 1/16 of them by the same code (of 400 codes: std 0.025).
  codebook = np.asarray(ada.apply(variables, jnp.arange(16), method=lambda m, c: m.quantizer.embed_codes(c)))
  assert all(np.any(np.all(np.isclose(v, codebook), axis=-1)) for v in np.asarray(vectors)[changed])
  clean = ada.clone(code_noise=0.0)  # Evaluation and sampling read the codes themselves.
  np.testing.assert_array_equal(
    ada.apply(variables, clip, train=False)[0], clean.apply(variables, clip, train=False)[0]
  )


def test_blind_sequences_give_the_decoder_random_input_throughout():
  clip = jax.random.randint(jax.random.key(1), (64, 400), 0, 256)
  ada = tiny_ada(VectorQuantizer(16, dim=8)).clone(decoder_input_noise=0.1, decoder_blind_fraction=0.5)
  params = ada.init({"params": jax.random.key(0), "noise": jax.random.key(0)}, clip)["params"]
  corrupted = ada.apply({"params": params}, clip, rngs={"noise": jax.random.key(2)}, method=ada.corrupt)
  changed = np.asarray(jnp.mean(corrupted != clip, axis=1))  # Per sequence: 255/256 if blind, else about 0.1.
  blind = changed > 0.9
  assert 20 < blind.sum() < 44  # Half of 64 (std 4).
  assert np.all((changed[~blind] > 0.04) & (changed[~blind] < 0.18))
  plain = ada.clone(decoder_blind_fraction=0.0)  # Without it, the noise stream of earlier runs, unchanged.
  rngs = {"noise": jax.random.key(2)}
  key = plain.apply({}, rngs=rngs, method=lambda module: module.make_rng("noise"))
  np.testing.assert_array_equal(
    plain.apply({"params": params}, clip, rngs=rngs, method=plain.corrupt), corrupt_tokens(key, clip, 0.1, 256)
  )
