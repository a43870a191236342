"""The decoder and the priors: causality, receptive field, cached generation equal to the naive recompute."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small_wavenet

from argmax_music.models import generate
from argmax_music.models.prior import TransformerPrior
from argmax_music.models.wavenet import corrupt_tokens, embed_tokens, receptive_field


def setup(model, length=48, batch=2, cond_channels=0, seed=0):
  keys = jax.random.split(jax.random.key(seed), 3)
  tokens = jax.random.randint(keys[0], (batch, length), 0, model.num_classes)
  cond = jax.random.normal(keys[1], (batch, length, cond_channels)) if cond_channels else None
  variables = model.init(keys[2], tokens, cond)
  return variables, tokens, cond


def input_gradient(model, variables, tokens, cond, t):
  """|d logits[:, t] / d input embedding[:, s]| summed over batch and channels, for every position s."""
  embedded = model.apply(variables, tokens, method=lambda m, x: embed_tokens(m.embedding, x))

  def out(inputs):
    return model.apply(variables, inputs, cond, method=model.logits_from_embeddings)[:, t].sum()

  g = jax.grad(out)(embedded)
  return np.asarray(jnp.abs(g).sum(axis=(0, 2)))


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_decoder_with_conditioning_is_causal(kernel_size):
  model = small_wavenet(kernel_size=kernel_size, cond_channels=4)
  variables, tokens, cond = setup(model, cond_channels=4)
  for t in (0, 5, 20, 47):
    g = input_gradient(model, variables, tokens, cond, t)
    assert np.all(g[t:] == 0.0), f"output {t} depends on inputs at or after {t}"
    if t:
      assert g[t - 1] > 0


@pytest.mark.parametrize("layers,cycle,kernel_size", [(6, 3, 2), (5, 5, 3), (8, 2, 2)])
def test_receptive_field_formula_matches_measurement(layers, cycle, kernel_size):
  model = small_wavenet(layers=layers, cycle=cycle, kernel_size=kernel_size)
  length = receptive_field(layers, cycle, kernel_size) + 10
  variables, tokens, _ = setup(model, length=length)
  g = input_gradient(model, variables, tokens, None, length - 1)
  assert np.count_nonzero(g) == model.receptive_field == receptive_field(layers, cycle, kernel_size)


@pytest.mark.parametrize(
  "num_classes,layers,cycle,kernel_size,cond_channels,batch",
  [
    (256, 6, 3, 2, 0, 2),  # level 1, unconditional
    (256, 6, 3, 2, 4, 1),  # level 1, conditioned on codes; batch 1 (the sampler's vector path)
    (16, 5, 5, 3, 4, 1),  # level 2 (K = 16 classes), kernel 3
    (16, 4, 1, 2, 0, 2),  # dilation 1 only
  ],
)
def test_cached_generation_equals_naive_recompute(num_classes, layers, cycle, kernel_size, cond_channels, batch):
  model = small_wavenet(num_classes, layers, cycle, kernel_size, cond_channels)
  length = 2 * model.receptive_field + 7
  variables, _, cond = setup(model, length=length, batch=batch, cond_channels=cond_channels)
  params = variables["params"]
  rng = jax.random.key(7)
  for top_p in (None, 0.8):
    cached = generate.generate(model, params, rng, batch, length, cond, 1.0, top_p)
    naive = generate.generate_naive(model, params, rng, batch, length, model.receptive_field, cond, 1.0, top_p)
    np.testing.assert_array_equal(cached, naive)
  # And the cached step's logits equal the parallel forward pass on the same tokens.
  tokens = cached
  full = model.apply({"params": params}, tokens, cond)
  stepped = teacher_forced_steps(model, params, tokens, cond)
  np.testing.assert_allclose(stepped, full, atol=2e-5, rtol=1e-5)


def teacher_forced_steps(model, params, tokens, cond=None):
  """Logits of the cached step fed the given tokens (teacher forcing), stacked over time."""
  batch, length = tokens.shape
  prev = jnp.concatenate([jnp.full((batch, 1), -1), tokens[:, :-1]], axis=1)

  def body(cache, inputs):
    prev_t, cond_t = inputs
    logits, cache = model.apply({"params": params}, cache, prev_t, cond_t, method=model.step)
    return cache, logits

  cond_steps = None if cond is None else jnp.swapaxes(cond, 0, 1)
  _, logits = jax.lax.scan(body, model.init_cache(batch, length), (prev.T, cond_steps))
  return jnp.swapaxes(logits, 0, 1)


def test_sampling_temperature_zero_is_argmax_and_top_p_restricts():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  assert int(generate.sample_logits(jax.random.key(0), logits, 0.0)[0]) == 0
  draws = jax.vmap(lambda k: generate.sample_logits(k, logits, 1.0, 0.7))(jax.random.split(jax.random.key(1), 500))
  assert set(np.unique(draws).tolist()) == {0, 1}  # 0.5 + 0.3 covers top_p = 0.7


def test_transformer_prior_cached_sampling_equals_full_forward():
  model = TransformerPrior(num_classes=16, layers=2, heads=2, dim=16, mlp_dim=32, max_len=32)
  variables, _, _ = setup(model, length=32)
  params = variables["params"]
  tokens = generate.generate(model, params, jax.random.key(3), 2, 24)
  np.testing.assert_allclose(
    teacher_forced_steps(model, params, tokens), model.apply({"params": params}, tokens), atol=2e-5, rtol=1e-5
  )
  naive = generate.generate_naive(model, params, jax.random.key(3), 2, 24, window=24)
  np.testing.assert_array_equal(tokens, naive)
  # Causality of the Transformer: changing a later token leaves earlier logits unchanged.
  changed = tokens.at[:, 10].set((tokens[:, 10] + 1) % 16)
  a, b = model.apply({"params": params}, tokens), model.apply({"params": params}, changed)
  np.testing.assert_array_equal(a[:, :11], b[:, :11])
  assert not np.allclose(a[:, 11:], b[:, 11:])


def test_prior_input_noise_corrupts_the_input_in_training_only():
  from argmax_music.models.ada import LOG2, nll_bits
  from argmax_music.tasks import make_task
  from configs import base

  config = base.get_config()
  config.stage = "prior"
  config.prior.wavenet.update(layers=4, cycle=4, residual_channels=8, gate_channels=8, skip_channels=8)
  codes = jax.random.randint(jax.random.key(1), (2, 800), 0, 32)
  clean = make_task(config, 32)
  config = config.copy_and_resolve_references()
  config.prior.input_noise = 0.25
  noisy = make_task(config, 32)
  params, state = noisy.init(jax.random.key(0), codes)
  key = jax.random.key(2)
  corrupted = corrupt_tokens(key, codes, 0.25, 32)
  assert 0.2 < float(jnp.mean(corrupted != codes)) < 0.3  # 1/4 replaced, 31/32 of them by another class
  assert bool(jnp.all((corrupted >= 0) & (corrupted < 32)))
  np.testing.assert_array_equal(  # Evaluation and sampling see the codes themselves.
    noisy.apply(params, state, codes, train=False)[0], clean.apply(params, state, codes, key)[0]
  )
  trained = noisy.apply(params, state, codes, key)[0]
  np.testing.assert_array_equal(trained, clean.apply(params, state, corrupted, key)[0])  # It read the noisy input...
  loss, _ = noisy.loss(params, state, codes, key)
  np.testing.assert_allclose(loss, nll_bits(trained, codes) * LOG2, rtol=1e-6)  # ...and predicts the clean codes.
  assert float(jnp.max(jnp.abs(trained - clean.apply(params, state, codes, key)[0]))) > 1e-3


def test_prior_sampled_input_noise_feeds_the_priors_own_one_step_samples():
  from argmax_music.models.ada import LOG2, nll_bits
  from argmax_music.tasks import make_task
  from configs import base

  config = base.get_config()
  config.stage = "prior"
  config.prior.wavenet.update(layers=4, cycle=4, residual_channels=8, gate_channels=8, skip_channels=8)
  config.prior.update(input_noise=1.0, input_noise_kind="sampled")
  task = make_task(config, 32)
  codes = jax.random.randint(jax.random.key(1), (2, 300), 0, 32)
  params, state = task.init(jax.random.key(0), codes)
  key = jax.random.key(2)
  inputs = task.noisy_inputs(params, state, codes, key)
  # At p = 1 every input is the prior's sample for its step given the real codes before it.
  expected = jax.random.categorical(jax.random.split(key)[1], task.model.apply({"params": params}, codes))
  np.testing.assert_array_equal(inputs, expected)
  changed = codes.at[:, 100].set((codes[:, 100] + 1) % 32)
  np.testing.assert_array_equal(task.noisy_inputs(params, state, changed, key)[:, :101], inputs[:, :101])
  # The loss reads those inputs and predicts the real codes; evaluation reads the real codes.
  loss, _ = task.loss(params, state, codes, key)
  np.testing.assert_allclose(loss, nll_bits(task.model.apply({"params": params}, inputs), codes) * LOG2, rtol=1e-6)
  clean = task.model.apply({"params": params}, codes)
  np.testing.assert_array_equal(task.apply(params, state, codes, train=False)[0], clean)
  config.prior.input_noise = 0.5
  half = make_task(config, 32).noisy_inputs(params, state, codes, key)
  assert 0.35 < float(jnp.mean(half == inputs)) < 0.65 and bool(jnp.all((half == inputs) | (half == codes)))


def test_key_dropout_hides_whole_crops_keys_in_training_only():
  """prior.key_dropout: in training a crop's key is hidden (all-zero conditioning) with that probability, for all
  its steps at once; evaluation always reads the key."""
  from argmax_music.tasks import make_task
  from configs import base

  config = base.get_config()
  config.stage = "prior"
  config.prior.wavenet.update(layers=4, cycle=4, residual_channels=8, gate_channels=8, skip_channels=8)
  config.prior.update(condition_on_key=True, key_dropout=1.0)
  task = make_task(config, 32)
  codes = jax.random.randint(jax.random.key(1), (64, 40), 0, 32)
  batch = {"codes": codes, "keys": jnp.full(codes.shape, 5)}
  params, state = task.init(jax.random.key(0), batch)
  logits = lambda cond: task.model.apply({"params": params}, codes, cond)
  keyed, hidden = logits(jax.nn.one_hot(batch["keys"], 24)), logits(jnp.zeros(codes.shape + (24,)))
  np.testing.assert_array_equal(task.apply(params, state, batch, jax.random.key(2))[0], hidden)
  np.testing.assert_array_equal(task.apply(params, state, batch, jax.random.key(2), train=False)[0], keyed)
  config.prior.key_dropout = 0.25
  trained = make_task(config, 32).apply(params, state, batch, jax.random.key(2))[0]
  crops_hidden = np.array([bool(jnp.all(t == h)) for t, h in zip(trained, hidden)])
  assert all(bool(jnp.all(t == k)) for t, k in zip(trained[~crops_hidden], keyed[~crops_hidden]))
  assert 8 <= crops_hidden.sum() <= 24


def test_guided_prior_moves_the_logits_by_its_scale_and_its_steps_match_its_forward_pass():
  from argmax_music.models.prior import GuidedPrior

  model = small_wavenet(num_classes=16, cond_channels=4)
  variables, tokens, _ = setup(model, length=30, cond_channels=4)
  cond = jax.nn.one_hot(jnp.array([[1], [3]]).repeat(30, axis=1), 4)
  conditioned = model.apply(variables, tokens, cond)
  unconditioned = model.apply(variables, tokens, jnp.zeros_like(cond))
  guided_params = {"params": {"prior": variables["params"]}}
  for scale in (1.0, 3.0):
    guided = GuidedPrior(model, scale)
    full = guided.apply(guided_params, tokens, cond)
    np.testing.assert_allclose(full, unconditioned + scale * (conditioned - unconditioned), rtol=1e-5, atol=1e-5)
  cache, prev = guided.init_cache(2), jnp.full((2,), -1)
  for t in range(30):
    logits, cache = guided.apply(guided_params, cache, prev, cond[:, t], method=guided.step)
    np.testing.assert_allclose(logits, full[:, t], rtol=1e-4, atol=1e-4)
    prev = tokens[:, t]
  drawn = generate.generate(guided, guided_params["params"], jax.random.key(0), 2, 30, cond)
  assert drawn.shape == (2, 30)


def test_an_autoguided_prior_moves_away_from_its_guide_and_its_steps_match_its_forward_pass():
  from argmax_music.models import native
  from argmax_music.models.prior import GuidedPrior

  model, weaker = (
    small_wavenet(num_classes=16, cond_channels=4, channels=16),
    small_wavenet(num_classes=16, cond_channels=4),
  )
  variables, tokens, _ = setup(model, length=30, cond_channels=4)
  guide_variables, _, _ = setup(weaker, length=30, cond_channels=4, seed=1)
  cond = jax.nn.one_hot(jnp.array([[1], [3]]).repeat(30, axis=1), 4)
  conditioned = model.apply(variables, tokens, cond)
  unconditioned = model.apply(variables, tokens, jnp.zeros_like(cond))
  guide = weaker.apply(guide_variables, tokens, cond)
  params = {"params": {"prior": variables["params"], "guide": guide_variables["params"]}}
  guided = GuidedPrior(model, 3.0, weaker, 2.0)
  full = guided.apply(params, tokens, cond)
  expected = unconditioned + 3.0 * (conditioned - unconditioned) + 2.0 * (conditioned - guide)
  np.testing.assert_allclose(full, expected, rtol=1e-5, atol=1e-5)
  cache, prev = guided.init_cache(2), jnp.full((2,), -1)
  for t in range(30):
    logits, cache = guided.apply(params, cache, prev, cond[:, t], method=guided.step)
    np.testing.assert_allclose(logits, full[:, t], rtol=1e-4, atol=1e-4)
    prev = tokens[:, t]
  assert not native.supports(guided, 2, None)  # Two networks a step: the JAX step samples it,
  drawn = generate.generate(guided, params["params"], jax.random.key(0), 2, 30, cond)
  assert drawn.shape == (2, 30)
