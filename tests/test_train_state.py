"""The train step: Polyak averaging (debiased or plain), per-module gradient norms, model state through the step."""

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from argmax_music import tasks, train_state
from configs import base, tiny


def linear_task(is_level=True, ema_decay=0.9, ema_debias=True):
  """loss = sum(c * params) (NaN when the batch is NaN); the model state counts the steps."""
  config = base.get_config()
  config.stage = "ada" if is_level else "prior"
  config.train.update(ema_decay=ema_decay, ema_debias=ema_debias)

  def loss(params, model_state, batch, rng):
    del rng
    c = {"encoder": {"w": jnp.array([3.0, 4.0])}, "decoder": {"w": jnp.array([1.0, 2.0, 2.0])}}
    value = sum(jnp.sum(c[k]["w"] * params[k]["w"]) for k in params) * batch
    return value, ({"loss": value}, {"state": {"steps": model_state["state"]["steps"] + 1.0}})

  return types.SimpleNamespace(config=config, is_level=is_level, loss=loss)


def linear_state(task, optimizer):
  params = {"encoder": {"w": jnp.array([0.1, -0.7])}, "decoder": {"w": jnp.array([0.3, 1.1, -2.3])}}
  model_state = {"state": {"steps": jnp.zeros(())}}
  other = lambda tree: jax.tree.map(lambda x: 0.3 * x + 0.77, tree)  # An average that is not the parameters.
  step = nan_steps = jnp.zeros((), jnp.int32)
  return train_state.TrainState(
    step, params, optimizer.init(params), model_state, other(params), other(model_state), nan_steps
  )


def test_polyak_debiased():
  # A constant stream (learning rate 0): the average is the parameters exactly from the first update on.
  task, optimizer = linear_task(ema_decay=0.999), optax.sgd(0.0)
  step = jax.jit(functools.partial(train_state.train_step, task, optimizer))
  state = linear_state(task, optimizer)
  params = state.params
  for _ in range(5):
    state, _ = step(state, jnp.float32(1.0), jax.random.key(0))
    for a, p in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(params)):
      np.testing.assert_array_equal(a, p)  # Bitwise.
  # The plain EMA (ema_debias=False) still weighs the initial average d^n.
  plain = linear_task(ema_decay=0.999, ema_debias=False)
  state, _ = jax.jit(functools.partial(train_state.train_step, plain, optimizer))(
    linear_state(plain, optimizer), jnp.float32(1.0), jax.random.key(0)
  )
  p0 = np.array([0.1, -0.7])
  np.testing.assert_allclose(state.ema_params["encoder"]["w"], 0.999 * (0.3 * p0 + 0.77) + 0.001 * p0, rtol=1e-6)

  # Varying parameters, by hand: SGD at learning rate 0.1 on sum(c * w) moves w by -0.1 c a step. A first step
  # with a NaN loss is skipped and does not count: the next finite step is the average's first update.
  d, lr = 0.9, 0.1
  task, optimizer = linear_task(ema_decay=d), optax.sgd(lr)
  step = jax.jit(functools.partial(train_state.train_step, task, optimizer))
  state = linear_state(task, optimizer)
  state, metrics = step(state, jnp.float32(np.nan), jax.random.key(0))
  assert not bool(metrics["finite"]) and int(state.nan_steps) == 1
  p0 = np.array([0.1, -0.7], np.float32)
  c = np.array([3.0, 4.0], np.float32)
  p1, p2 = p0 - lr * c, p0 - 2 * lr * c
  state, _ = step(state, jnp.float32(1.0), jax.random.key(0))
  np.testing.assert_array_equal(state.ema_params["encoder"]["w"], state.params["encoder"]["w"])  # w_1 = 1
  np.testing.assert_array_equal(state.ema_model_state["state"]["steps"], 1.0)
  state, _ = step(state, jnp.float32(1.0), jax.random.key(0))
  w2 = (1 - d) / (1 - d**2)  # = 1 / (1 + d) = 0.5263
  np.testing.assert_allclose(state.ema_params["encoder"]["w"], p1 + w2 * (p2 - p1), rtol=1e-6)
  # The bias-corrected EMA (whatever the initial average): ((1 - d) d p1 + (1 - d) p2) / (1 - d^2).
  np.testing.assert_allclose(state.ema_params["encoder"]["w"], (d * p1 + p2) / (1 + d), rtol=1e-6)
  np.testing.assert_allclose(state.ema_model_state["state"]["steps"], 1 + w2 * (2 - 1), rtol=1e-6)


def test_gradient_norms_per_module():
  optimizer = optax.sgd(0.1)
  for is_level, expected in ((True, {"encoder": 5.0, "decoder": 3.0}), (False, {"prior": np.sqrt(34.0)})):
    task = linear_task(is_level=is_level)
    _, metrics = train_state.train_step(
      task, optimizer, linear_state(task, optimizer), jnp.float32(1.0), jax.random.key(0)
    )
    assert {k: pytest.approx(float(v)) for k, v in metrics.items() if k.startswith("grad_norm/")} == {
      f"grad_norm/{name}": value for name, value in expected.items()
    }
    assert float(metrics["grad_norm"]) == pytest.approx(np.sqrt(34.0))


@pytest.mark.slow
def test_running_diversity_target_lives_in_the_train_state():
  """The AMAE's running targets: model state from init (uniform), updated by the step, averaged with Polyak."""
  config = tiny.get_config()
  config.model.quantizer.update(diversity_target_decay=0.9, mass_floor=0.01)
  config.model.upsampler.normalize = True
  config.train.ema_decay = 0.5
  task = tasks.make_task(config, 256)
  optimizer = train_state.make_optimizer(config.train)
  batch = jax.random.randint(jax.random.key(1), (4, 160), 0, 256)
  state = train_state.create_state(task, optimizer, jax.random.key(0), batch)
  targets = state.model_state["quantizer_state"]["quantizer"]
  assert set(targets) == {"diversity_target", "code_target"}
  for value in targets.values():
    np.testing.assert_array_equal(value, np.full(16, 1 / 16, np.float32))
  new, metrics = jax.jit(functools.partial(train_state.train_step, task, optimizer))(state, batch, jax.random.key(2))
  assert {"grad_norm/encoder", "grad_norm/upsampler", "grad_norm/decoder", "min_relu_mass"} <= set(metrics)
  live = new.model_state["quantizer_state"]["quantizer"]["diversity_target"]
  assert not np.allclose(live, 1 / 16) and float(jnp.sum(live)) == pytest.approx(1.0, abs=1e-3)
  for averaged, current in zip(*map(jax.tree.leaves, (new.ema_model_state, new.model_state))):
    np.testing.assert_array_equal(averaged, current)  # The first debiased update takes the live state.
  params, model_state = new.eval_variables()
  sums = jax.jit(task.eval_sums)(params, model_state, batch)  # train=False: reads the running targets
  assert np.isfinite(float(sums["nll_bits"]))
  assert task.encoder(params, model_state)(batch).shape == (4, 20)
