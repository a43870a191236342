"""The encoder, the quantizers and the upsampler (the ADA itself: tests/test_ada.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from argmax_music.models.ada import Upsampler
from argmax_music.models.encoder import Encoder
from argmax_music.models.quantizers import ArgmaxQuantizer, VectorQuantizer


@pytest.mark.parametrize("strides", [(2, 2, 2), (4, 5), (4, 4, 4), (8, 8)])
def test_encoder_output_length_is_input_over_hop(strides):
  enc = Encoder(256, out_dim=16, strides=strides, channels=8, blocks_per_stage=1)
  hop = math.prod(strides)
  x = jnp.zeros((2, 3 * hop), jnp.int32)
  params = enc.init(jax.random.key(0), x)
  assert enc.apply(params, x).shape == (2, 3, 16)
  with pytest.raises(ValueError, match=f"not a multiple of the hop {hop}"):
    enc.apply(params, jnp.zeros((2, 3 * hop + 1), jnp.int32))


def test_argmax_forward_is_one_hot_and_gradient_is_straight_through():
  q = ArgmaxQuantizer(num_codes=8)
  z = jax.random.normal(jax.random.key(0), (2, 5, 8))
  out = q.apply({}, z)
  np.testing.assert_array_equal(out.embedding, jax.nn.one_hot(jnp.argmax(z, -1), 8))
  np.testing.assert_array_equal(out.codes, jnp.argmax(z, -1))
  w = jax.random.normal(jax.random.key(1), (2, 5, 8))
  through_quantizer = jax.grad(lambda z: jnp.sum(w * q.apply({}, z).embedding))(z)
  through_normalised = jax.grad(lambda z: jnp.sum(w * q.normalise(z)))(z)
  np.testing.assert_allclose(through_quantizer, through_normalised, rtol=1e-6)
  assert np.any(through_quantizer != 0)


def test_all_negative_vector_gets_its_largest_entry_as_code_and_a_gradient():
  q = ArgmaxQuantizer(num_codes=8)
  z = jnp.stack([-1.0 - jnp.arange(8.0)[::-1], jnp.arange(8.0) - 3.0])[None]  # (1, 2, 8): all negative, then mixed
  out = q.apply({}, z)
  np.testing.assert_array_equal(out.codes, [[7, 7]])  # Not code 0: the largest entry, as for the mixed vector.
  np.testing.assert_allclose(q.normalise(z)[0, 0], jax.nn.softmax(z[0, 0]), rtol=1e-6)
  np.testing.assert_allclose(q.normalise(z)[0, 1], jax.nn.relu(z[0, 1]) / 10.0, rtol=1e-5)
  w = jax.random.normal(jax.random.key(1), (1, 2, 8))
  grad = jax.grad(lambda z: jnp.sum(w * q.apply({}, z).embedding) + q.apply({}, z).aux_loss)(z)
  assert np.all(np.isfinite(grad)) and np.all(grad[0, 0] != 0)  # Every entry of the dead vector moves.


@pytest.mark.parametrize("k, collapsed_sum, half_sum", [(64, 4032.0, 1008.0), (2048, 4192256.0, 1048064.0)])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_diversity_loss_published_form(k, collapsed_sum, half_sum, reduce):
  # L = sum_k (K qbar_k - 1)^2 ('sum') or / K ('mean'), qbar the mean of q over 8 vectors (batch 2 x time 4).
  # Collapsed: every q one-hot on code 0: (K-1)^2 + (K-1) = K(K-1). Half: 4 one-hot on code 0, 4 uniform:
  # qbar_0 = 1/2 + 1/(2K), others 1/(2K): (K-1)^2/4 + (K-1)/4 = K(K-1)/4.
  # Gradient on an unused code k (never the argmax) of one vector's q: 2K (K qbar_k - 1) / 8, i.e.
  # -2K/8 collapsed and -K/8 half ('sum'); the 'mean' form divides all of these by K.
  div = ArgmaxQuantizer(num_codes=k, diversity_reduce=reduce)
  scale = 1.0 if reduce == "sum" else 1.0 / k
  collapsed = jax.nn.one_hot(jnp.zeros((2, 4), int), k)
  half = jnp.concatenate([collapsed[:1], jnp.full((1, 4, k), 1.0 / k)])
  for q, value, unused_grad in ((collapsed, collapsed_sum, -2 * k / 8), (half, half_sum, -k / 8)):
    loss, grad = jax.value_and_grad(div.diversity_loss)(q)
    assert float(loss) == pytest.approx(value * scale, rel=1e-5)
    np.testing.assert_allclose(grad[:, :, 5], unused_grad * scale, rtol=1e-5)
    np.testing.assert_allclose(grad[:, :, 0], 2 * k * (k * float(jnp.mean(q[..., 0])) - 1) / 8 * scale, rtol=1e-5)
  # The hand numbers for the reader: K=64 collapsed, 'sum': 4032, d/dq_k = -16; 'mean': 63, -0.25.
  z = jax.random.normal(jax.random.key(0), (2, 4, k))
  weighted = ArgmaxQuantizer(num_codes=k, diversity_weight=0.3, diversity_reduce=reduce).apply({}, z)
  assert float(weighted.aux_loss) == pytest.approx(0.3 * float(div.diversity_loss(div.normalise(z))), rel=1e-6)
  with pytest.raises(ValueError, match="diversity_reduce='max'"):
    ArgmaxQuantizer(num_codes=k, diversity_reduce="max").diversity_loss(q)


def test_code_diversity_term_sees_a_collapse_the_q_term_misses():
  # Near-uniform q with a small bump on code 0: qbar is almost uniform, yet every code is 0.
  k = 16
  z = jnp.ones((4, 10, k)).at[..., 0].add(0.01)
  quantizer = ArgmaxQuantizer(num_codes=k, diversity_weight=1.0, code_diversity_weight=1.0)
  out = quantizer.apply({}, z)
  assert float(out.stats["usage"]) == 1 / k
  assert float(out.stats["diversity_loss"]) < 1e-4
  assert float(out.stats["code_diversity_loss"]) == pytest.approx(k - 1)  # One code: K(K-1) / K.
  # Its gradient is the q-term's, evaluated at the codes' frequencies: it pushes code 0 down hard.
  q_only = jax.grad(lambda z: ArgmaxQuantizer(k).apply({}, z).aux_loss)(z)
  both = jax.grad(lambda z: quantizer.apply({}, z).aux_loss)(z)
  assert float(jnp.abs(both[..., 0]).mean()) > 1000 * float(jnp.abs(q_only[..., 0]).mean())


def test_diversity_loss_zero_at_uniform_and_its_minimisation_raises_usage():
  q = ArgmaxQuantizer(num_codes=16)
  assert float(q.diversity_loss(jnp.full((4, 10, 16), 1 / 16))) == pytest.approx(0.0, abs=1e-12)
  assert float(q.diversity_loss(jax.nn.one_hot(jnp.zeros((4, 10), int), 16))) == pytest.approx(15.0)
  # Random inputs through a learned linear map whose biases start collapsed on two codes.
  x = jax.random.normal(jax.random.key(0), (512, 8))
  w = 0.3 * jax.random.normal(jax.random.key(1), (8, 16))
  b = jnp.zeros(16).at[:2].set(3.0)
  params = (w, b)
  usage = lambda p: float(q.apply({}, (x @ p[0] + p[1])[None]).stats["usage"])
  loss = lambda p: q.apply({}, (x @ p[0] + p[1])[None]).aux_loss
  before = usage(params)
  opt = optax.adam(0.05)
  state = opt.init(params)
  for _ in range(200):
    updates, state = opt.update(jax.grad(loss)(params), state)
    params = optax.apply_updates(params, updates)
  assert before <= 0.35 and usage(params) >= 0.9


def test_running_diversity_target():
  # K = 3, 'sum' form, both terms at weight 1, decay d = 0.5: two training steps, then eval, all by hand.
  k, d, eps = 3, 0.5, 1e-6
  quantizer = ArgmaxQuantizer(k, diversity_reduce="sum", code_diversity_weight=1.0, diversity_target_decay=d)
  z1 = np.array([[[2.0, 1.0, 1.0], [0.0, 3.0, 1.0]]], np.float32)  # codes 0, 1
  z2 = np.array([[[0.0, 1.0, 4.0], [1.0, 0.0, 3.0]]], np.float32)  # codes 2, 2
  state = quantizer.init(jax.random.key(0), z1)
  np.testing.assert_array_equal(state["quantizer_state"]["diversity_target"], np.full(3, 1 / 3, np.float32))
  np.testing.assert_array_equal(state["quantizer_state"]["code_target"], np.full(3, 1 / 3, np.float32))

  def step(state, z):
    def aux(z):
      out, new = quantizer.apply(state, z, mutable=["quantizer_state"])
      return out.aux_loss, new

    return jax.value_and_grad(aux, has_aux=True)(jnp.asarray(z))

  running_q, running_f = np.full(3, 1 / 3), np.full(3, 1 / 3)
  for z in (z1, z2):
    (loss, state), grad = step(state, z)
    r = np.maximum(z[0], 0.0)  # (T, K), T = 2 vectors
    mass = r.sum(-1, keepdims=True) + eps
    q = r / mass
    f = np.eye(k)[np.argmax(q, -1)].mean(0)  # the codes' frequencies
    running_q = d * running_q + (1 - d) * q.mean(0)
    running_f = d * running_f + (1 - d) * f
    np.testing.assert_allclose(loss, np.sum((k * running_q - 1) ** 2) + np.sum((k * running_f - 1) ** 2), rtol=1e-6)
    # dL/dqbar at the mixed targets, at full weight (not (1 - d) times it), shared by the T vectors:
    g = (2 * k * (k * running_q - 1) + 2 * k * (k * running_f - 1)) / 2
    # Through q = r / mass: dL/dz_j = (g_j - sum_k g_k q_k) / mass where z_j > 0, else 0.
    expected = (g[None] - np.sum(g * q, -1, keepdims=True)) / mass * (z[0] > 0)
    np.testing.assert_allclose(grad[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["quantizer_state"]["diversity_target"], running_q, rtol=1e-6)
    np.testing.assert_allclose(state["quantizer_state"]["code_target"], running_f, rtol=1e-6)
  # The hand numbers: running qbar [0.2917, 0.4167, 0.2917] after step 1 (batch qbar [0.25, 0.5, 0.25]), then
  # [0.2083, 0.2583, 0.5333] (batch [0.125, 0.1, 0.775]); the codes' running frequencies: [0.4167, 0.4167, 0.1667]
  # (batch [0.5, 0.5, 0]), then [0.2083, 0.2083, 0.5833] (batch [0, 0, 1]).
  np.testing.assert_allclose(running_q, [0.20833, 0.25833, 0.53333], atol=1e-5)
  np.testing.assert_allclose(running_f, [0.20833, 0.20833, 0.58333], atol=1e-5)
  # Outside training (or with the collection immutable): L(running), no update.
  for train in (False, True):
    out = quantizer.apply(state, jnp.asarray(z1), train=train)
    np.testing.assert_allclose(out.aux_loss, np.sum((k * running_q - 1) ** 2) + np.sum((k * running_f - 1) ** 2), 1e-6)
  _, unchanged = quantizer.apply(state, jnp.asarray(z1), train=False, mutable=["quantizer_state"])
  np.testing.assert_array_equal(unchanged["quantizer_state"]["diversity_target"], running_q.astype(np.float32))
  # decay 0 keeps no state.
  assert not ArgmaxQuantizer(k).init(jax.random.key(0), z1)


def test_mass_floor_bounds_the_normaliser_gradient_and_keeps_the_argmax():
  z = jnp.array([[[1e-4, 5e-5, -1.0], [2.0, 1.0, 0.5]]])
  plain, floored = ArgmaxQuantizer(3), ArgmaxQuantizer(3, mass_floor=0.1)
  np.testing.assert_allclose(floored.normalise(z)[0, 0], [1e-3, 5e-4, 0.0], rtol=1e-5)  # relu(z) / 0.1
  np.testing.assert_allclose(floored.normalise(z)[0, 1], plain.normalise(z)[0, 1], rtol=1e-6)  # mass 3.5 > 0.1
  jacobian = lambda quantizer: jax.jacobian(lambda v: quantizer.normalise(v))(z[0, 0])
  assert float(jnp.abs(jacobian(plain)).max()) > 1000  # ~1 / mass: mass 1.5e-4
  assert float(jnp.abs(jacobian(floored)).max()) == pytest.approx(10.0, rel=1e-5)  # 1 / mass_floor
  random_z = jax.random.normal(jax.random.key(0), (4, 50, 8)) * 0.01
  np.testing.assert_array_equal(
    ArgmaxQuantizer(8).apply({}, random_z).codes, ArgmaxQuantizer(8, mass_floor=1.0).apply({}, random_z).codes
  )
  assert float(plain.apply({}, z).stats["min_relu_mass"]) == pytest.approx(1.5e-4, rel=1e-5)


def test_confidence_term_is_the_entropy_of_q_per_position():
  z = jnp.array([[[1.0, 1.0, 0.0, -1.0], [3.0, 1.0, -2.0, -2.0]]])  # q: (1/2, 1/2, 0, 0) and (3/4, 1/4, 0, 0)
  h = (1.0 + (0.75 * math.log2(4 / 3) + 0.25 * 2.0)) / 2  # 1 bit and 0.811 bits
  plain, confident = (
    ArgmaxQuantizer(4, diversity_weight=0.0),
    ArgmaxQuantizer(4, diversity_weight=0.0, confidence_weight=0.5),
  )
  assert float(plain.apply({}, z).stats["q_entropy"]) == pytest.approx(h, rel=1e-6)
  assert float(plain.apply({}, z).aux_loss) == 0.0
  assert float(confident.apply({}, z).aux_loss) == pytest.approx(0.5 * h, rel=1e-6)
  grad = jax.grad(lambda v: confident.apply({}, v).aux_loss)(z)
  assert bool(jnp.all(jnp.isfinite(grad))) and float(jnp.abs(grad[..., 2:]).max()) == 0.0  # relu'd entries: none
  # At the first position (q = 1/2, 1/2) the entropy is at its maximum (along z_0 - z_1): no gradient there.
  np.testing.assert_allclose(grad[0, 0, :2], [0.0, 0.0], atol=1e-6)
  assert float(grad[0, 1, 0]) < 0 < float(grad[0, 1, 1])  # (3/4, 1/4): sharpening toward code 0 lowers it


@pytest.mark.parametrize("k", [16, 1024])
def test_upsampler_normalize_gives_every_code_unit_scale(k):
  codes = jax.nn.one_hot(jnp.arange(16)[None], k)  # (1, 16 codes, K)
  scale = {}
  for normalize in (False, True):
    up = Upsampler(4, 32, 3, normalize=normalize)
    params = up.init(jax.random.key(0), codes)
    assert up.apply(params, codes).shape == (1, 64, 32)
    _, found = up.apply(params, codes, capture_intermediates=True)
    projected = found["intermediates"]["LayerNorm_0" if normalize else "Dense_0"]["__call__"][0]
    scale[normalize] = float(jnp.sqrt(jnp.mean(jnp.var(projected, axis=-1))))
    assert "LayerNorm_0" not in params["params"]  # No parameters: the same tree with or without it.
  assert scale[True] == pytest.approx(1.0, abs=1e-3)
  assert scale[False] == pytest.approx(1 / math.sqrt(k), rel=0.3)  # lecun_normal rows: shrinks with K


def test_vq_picks_nearest_code_and_has_straight_through_gradient():
  vq = VectorQuantizer(num_codes=6, dim=3)
  z = jax.random.normal(jax.random.key(0), (2, 7, 3))
  params = vq.init(jax.random.key(1), z)
  out = vq.apply(params, z)
  codebook = params["params"]["codebook"]
  brute = jnp.argmin(jnp.linalg.norm(z[..., None, :] - codebook, axis=-1), -1)
  np.testing.assert_array_equal(out.codes, brute)
  np.testing.assert_allclose(out.embedding, codebook[brute], atol=1e-6)
  g = jax.grad(lambda z: jnp.sum(vq.apply(params, z).embedding * 2.0))(z)
  np.testing.assert_allclose(g, 2.0 * jnp.ones_like(z))  # straight-through: the identity to z
  # Restored parameters are numpy arrays: the codebook lookup must still trace under jit.
  jitted = jax.jit(lambda z: vq.apply(jax.device_get(params), z).codes)(z)
  np.testing.assert_array_equal(jitted, brute)
  assert 0 < float(out.stats["usage"]) <= 1 and float(out.stats["perplexity"]) >= 1


def test_vq_ema_counts_agree_on_one_and_four_devices():
  vq = VectorQuantizer(num_codes=8, dim=4, ema_decay=0.9, restart_threshold=0.05)
  z = jax.random.normal(jax.random.key(0), (8, 16, 4))
  variables = vq.init({"params": jax.random.key(1), "restart": jax.random.key(2)}, z)

  def update(variables, z):
    _, new = vq.apply(variables, z, mutable=["vq_ema"], rngs={"restart": jax.random.key(3)})
    return new["vq_ema"]

  one = jax.jit(update)(variables, z)
  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  z4 = jax.device_put(z, NamedSharding(mesh, P("data")))
  four = jax.jit(update)(jax.device_put(variables, NamedSharding(mesh, P())), z4)
  for key in ("counts", "sums", "codebook"):
    np.testing.assert_allclose(one[key], four[key], rtol=1e-5, atol=1e-6)
  counts = np.asarray(one["counts"])
  expected = 0.9 * 1.0 + 0.1 * np.bincount(np.asarray(vq.apply(variables, z).codes).ravel(), minlength=8)
  restarted = expected < 0.05
  np.testing.assert_allclose(counts[~restarted], expected[~restarted], rtol=1e-5)


def test_diversity_loss_is_global_across_devices():
  q = ArgmaxQuantizer(num_codes=8)
  z = jax.random.normal(jax.random.key(0), (8, 4, 8)) + jnp.arange(8)[:, None, None] * jnp.eye(8)[:, None]
  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  f = jax.jit(lambda z: q.apply({}, z).aux_loss)
  np.testing.assert_allclose(f(z), f(jax.device_put(z, NamedSharding(mesh, P("data")))), rtol=1e-6)


@pytest.mark.parametrize("mode", ["scaled", "codes"])
def test_running_target_modes(mode):
  # One training step from the uniform running means (K = 3, 'sum', both terms at weight 1, d = 0.5), by hand:
  # 'scaled' takes the gradient of L(mix) itself, 'codes' keeps L_div on the batch's mean.
  k, d, eps = 3, 0.5, 1e-6
  quantizer = ArgmaxQuantizer(
    k, diversity_reduce="sum", code_diversity_weight=1.0, diversity_target_decay=d, diversity_target_mode=mode
  )
  z = np.array([[[2.0, 1.0, 1.0], [0.0, 3.0, 1.0]]], np.float32)  # q [0.5, 0.25, 0.25] and [0, 0.75, 0.25]
  state = quantizer.init(jax.random.key(0), z)

  def aux(z):
    out, new = quantizer.apply(state, z, mutable=["quantizer_state"])
    return out.aux_loss, new

  (loss, new), grad = jax.value_and_grad(aux, has_aux=True)(jnp.asarray(z))
  r = np.maximum(z[0], 0.0)
  mass = r.sum(-1, keepdims=True) + eps
  q = r / mass
  running_f = d / k + (1 - d) * np.array([0.5, 0.5, 0.0])  # the codes 0 and 1
  seen_q = q.mean(0) if mode == "codes" else d / k + (1 - d) * q.mean(0)  # [0.25, 0.5, 0.25] or its mix
  np.testing.assert_allclose(loss, np.sum((k * seen_q - 1) ** 2) + np.sum((k * running_f - 1) ** 2), rtol=1e-6)
  g = (2 * k * (k * seen_q - 1) + 2 * k * (k * running_f - 1)) / 2
  g = (1 - d) * g if mode == "scaled" else g
  expected = (g[None] - np.sum(g * q, -1, keepdims=True)) / mass * (z[0] > 0)
  np.testing.assert_allclose(grad[0], expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(new["quantizer_state"]["code_target"], running_f, rtol=1e-6)
  assert ("diversity_target" in new["quantizer_state"]) == (mode == "scaled")
  with pytest.raises(ValueError, match="diversity_target_mode='both'"):
    ArgmaxQuantizer(k, diversity_target_decay=d, diversity_target_mode="both").init(jax.random.key(0), z)


def test_balance_bias_moves_codes_to_the_rarer_ones_without_touching_gradients():
  # K = 3, rate 0.3; q rows [0.5, 0.25, 0.25] and [0, 0.75, 0.25], by hand: step 1 picks codes 0 and 1 (b = 0) and
  # sets b = 0.3 * sign(1/3 - [0.5, 0.5, 0]) = [-0.3, -0.3, 0.3]; step 2 then picks code 2 twice and moves b back to 0.
  quantizer = ArgmaxQuantizer(3, diversity_weight=0.0, balance_rate=0.3)
  z = jnp.asarray([[[2.0, 1.0, 1.0], [0.0, 3.0, 1.0]]], jnp.float32)
  variables = quantizer.init(jax.random.key(0), z)
  out, new = quantizer.apply(variables, z, mutable=["quantizer_state"])
  np.testing.assert_array_equal(out.codes, [[0, 1]])
  np.testing.assert_allclose(new["quantizer_state"]["balance_bias"], [-0.3, -0.3, 0.3], rtol=1e-6)
  encoded = quantizer.apply(new, z, train=False)  # Encoding reads b as trained and leaves it.
  np.testing.assert_array_equal(encoded.codes, [[2, 2]])
  out, newer = quantizer.apply(new, z, mutable=["quantizer_state"])
  np.testing.assert_array_equal(out.codes, [[2, 2]])
  np.testing.assert_allclose(newer["quantizer_state"]["balance_bias"], [0.0, 0.0, 0.0], atol=1e-6)

  def probe(quantizer, variables):
    weights = jnp.arange(6.0).reshape(1, 2, 3)
    return jax.grad(lambda z: jnp.sum(quantizer.apply(variables, z, train=False).embedding * weights))(z)

  plain = ArgmaxQuantizer(3, diversity_weight=0.0)
  np.testing.assert_allclose(probe(quantizer, new), probe(plain, plain.init(jax.random.key(0), z)), rtol=1e-6)


def test_softmax_normalizer_keeps_the_codes_and_reaches_negative_entries():
  z = jnp.asarray([[[2.0, -1.0, 0.5], [-0.5, 1.0, -2.0]]], jnp.float32)
  relu, soft = ArgmaxQuantizer(3, diversity_weight=0.0), ArgmaxQuantizer(3, diversity_weight=0.0, normalizer="softmax")

  def probe(quantizer):
    out = quantizer.apply({}, z)
    weights = jnp.asarray([1.0, 3.0, 2.0])
    return out.codes, jax.grad(lambda z: jnp.sum(quantizer.apply({}, z).embedding * weights))(z)

  (relu_codes, relu_grad), (soft_codes, soft_grad) = probe(relu), probe(soft)
  np.testing.assert_array_equal(relu_codes, [[0, 1]])
  np.testing.assert_array_equal(soft_codes, relu_codes)
  assert np.all(np.asarray(relu_grad)[z < 0] == 0)  # The ReLU's: nothing reaches a negative entry...
  q = jax.nn.softmax(z, axis=-1)  # ... the softmax's Jacobian does: q_j (w_j - sum_i q_i w_i).
  expected = q * (jnp.asarray([1.0, 3.0, 2.0]) - jnp.sum(q * jnp.asarray([1.0, 3.0, 2.0]), -1, keepdims=True))
  np.testing.assert_allclose(soft_grad, expected, rtol=1e-5)
  with pytest.raises(ValueError, match="normalizer='tanh'"):
    ArgmaxQuantizer(3, normalizer="tanh").apply({}, z)
