"""The train state, the optimizer and the jitted step, the same for every stage (the task supplies the loss)."""

from __future__ import annotations

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from argmax_music import sharding
from argmax_music.tasks import Task


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  model_state: Any  # Mutable collections (the VQ EMA codebook); {} when there are none.
  ema_params: Any  # Polyak/EMA parameters; {} when train.ema_decay == 0.
  ema_model_state: Any  # The model state averaged the same way (a codebook that matches ema_params), or {}.
  nan_steps: jax.Array  # Steps skipped for a non-finite loss or gradient.

  def eval_variables(self):
    """(params, model_state) for eval and sampling: the EMA ones when kept.

    The VQ EMA codebook is model state that follows the live encoder; with Polyak parameters it is
    averaged with the same decay, so the averaged encoder is evaluated with a codebook averaged over
    the same steps rather than with the live one.
    """
    if self.ema_params:
      return self.ema_params, self.ema_model_state
    return self.params, self.model_state


def make_optimizer(train_config, frozen: tuple[str, ...] = ()) -> optax.GradientTransformation:
  """Clipped AdamW with warmup and `train.schedule`; the top-level parameter modules in `frozen` get no update."""
  t = train_config
  warmup = optax.linear_schedule(0.0, t.learning_rate, max(t.warmup_steps, 1))
  if t.schedule == "cosine":
    after = optax.cosine_decay_schedule(t.learning_rate, max(t.steps - t.warmup_steps, 1))
  elif t.schedule == "rsqrt":
    after = lambda s: t.learning_rate * jax.lax.rsqrt(1.0 + s / max(t.warmup_steps, 1))
  else:
    after = optax.constant_schedule(t.learning_rate)
  schedule = optax.join_schedules([warmup, after], [t.warmup_steps])
  optimizer = optax.chain(optax.clip_by_global_norm(t.grad_clip), optax.adamw(schedule, weight_decay=t.weight_decay))
  if not frozen:
    return optimizer
  labels = lambda params: {name: jax.tree.map(lambda _, fixed=name in frozen: fixed, p) for name, p in params.items()}
  return optax.multi_transform({False: optimizer, True: optax.set_to_zero()}, labels)


def create_state(task: Task, optimizer, rng, batch) -> TrainState:
  params, model_state = task.init(rng, batch)
  ema = bool(task.config.train.ema_decay)
  return TrainState(
    jnp.zeros((), jnp.int32),
    params,
    optimizer.init(params),
    model_state,
    params if ema else {},
    model_state if ema else {},
    jnp.zeros((), jnp.int32),
  )


def abstract_state(task: Task, optimizer, mesh) -> TrainState:
  """The state's shapes and (replicated) shardings, without allocating it."""
  shapes = jax.eval_shape(functools.partial(create_state, task, optimizer), jax.random.key(0), task.example_batch())
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding.replicated(mesh)), shapes)


def init_state(task: Task, optimizer, abstract: TrainState, rng) -> TrainState:
  """The initial state, initialised directly into its shardings (never whole on one device first)."""
  init = jax.jit(
    functools.partial(create_state, task, optimizer), out_shardings=jax.tree.map(lambda a: a.sharding, abstract)
  )
  return init(rng, task.example_batch())


def with_modules(state: TrainState, params, model_state, modules: tuple[str, ...]) -> TrainState:
  """`state` with the top-level parameter `modules` and the whole model state (a level's codebook) taken from
  another stage's `params` and `model_state`, each array placed as the one it replaces (a copy of its own: the
  train step donates every buffer of the state, so no two may share one)."""
  place = lambda new, old: jax.tree.map(lambda n, o: jax.device_put(np.asarray(n), o.sharding), new, old)
  take = lambda ps: {name: place(params[name], p) if name in modules else p for name, p in ps.items()}
  state = state.replace(params=take(state.params), model_state=place(model_state, state.model_state))
  if state.ema_params:
    state = state.replace(ema_params=take(state.ema_params), ema_model_state=place(model_state, state.ema_model_state))
  return state


def polyak_average(average, new, decay: float, n, debias: bool):
  """The Polyak/EMA average after its n-th update (n = 1, 2, ...) with `new`; {} when decay == 0.

  Plain: d * average + (1 - d) * new. Debiased: average + w_n (new - average) with w_n = (1 - d) / (1 - d^n),
  the bias-corrected EMA of the n updates so far. w_1 = 1 takes `new` itself, so the first average is the
  first parameters exactly, and a constant stream then stays exact (new - average = 0).
  """
  if not decay:
    return {}
  if not debias:
    return jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, average, new)
  d = jnp.float32(decay)
  w = jnp.where(n == 1, 1.0, (1 - d) / (1 - d ** jnp.asarray(n, jnp.float32)))
  return jax.tree.map(lambda e, p: jnp.where(w == 1, p, e + w * (p - e)).astype(e.dtype), average, new)


def gradient_norms(task: Task, grads) -> dict:
  """`grad_norm/<module>` for each top-level module of a level (encoder, quantizer, upsampler, decoder);
  one `grad_norm/<stage>` for a prior or WaveNet, whose top-level keys are single parameters."""
  if task.is_level:
    return {f"grad_norm/{name}": optax.tree.norm(g) for name, g in grads.items()}
  return {f"grad_norm/{task.config.stage}": optax.tree.norm(grads)}


def train_step(task: Task, optimizer, state: TrainState, batch, rng):
  """One optimizer step. A non-finite loss or gradient leaves the state unchanged (counted in nan_steps)."""
  rng = jax.random.fold_in(rng, state.step)
  grad_fn = jax.value_and_grad(task.loss, has_aux=True)
  (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  t = task.config.train
  n = state.step - state.nan_steps + 1  # This average's update number: skipped steps do not count.
  average = lambda old, new: polyak_average(old, new, t.ema_decay, n, t.ema_debias)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  new = TrainState(
    state.step + 1,
    params,
    opt_state,
    model_state,
    average(state.ema_params, params),
    average(state.ema_model_state, model_state),
    state.nan_steps,
  )
  keep = lambda a, b: jax.tree.map(lambda x, y: jnp.where(finite, x, y), a, b)
  new = new.replace(
    params=keep(new.params, state.params),
    opt_state=keep(new.opt_state, state.opt_state),
    model_state=keep(new.model_state, state.model_state),
    ema_params=keep(new.ema_params, state.ema_params),
    ema_model_state=keep(new.ema_model_state, state.ema_model_state),
    nan_steps=state.nan_steps + (~finite).astype(jnp.int32),
  )
  metrics.update(grad_norm=grad_norm, param_norm=optax.tree.norm(params), finite=finite, **gradient_norms(task, grads))
  return new, metrics
