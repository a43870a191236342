import numpy as np
import pytest

from argmax_music.experiments import prior_drift


def test_drift_figures_against_hand_computed_values():
  """2 codes/s, windows of 2 s (4 codes); the one ending code is 3 (3 of the files' last 4 codes)."""
  training = [np.array([0, 1, 2, 3, 0, 1, 2, 3]), np.array([0, 1, 3, 3])]
  pieces = np.array([[0, 0, 0, 0, 1, 1, 2, 3]])
  f = prior_drift.code_figures(pieces, training, classes=4, rate=2.0, endings=1)
  assert f["window_entropy_bits"] == [0.0, 1.5]  # [0, 0, 0, 0]; [1, 1, 2, 3]: halves and quarters.
  assert f["piece_entropy_bits"] == 1.75 and f["distinct_codes"] == 4
  assert f["repeats"] == pytest.approx(4 / 7, abs=1e-3)  # 0-0 three times, 1-1 once, of 7 pairs.
  assert f["ending_codes_share"] == 0.125 and f["ending_codes_share_training"] == pytest.approx(4 / 12, abs=1e-3)
  # Counts + 1: training (4, 4, 3, 5) / 16, pieces (5, 3, 2, 2) / 12.
  real, generated = np.array([4, 4, 3, 5]) / 16, np.array([5, 3, 2, 2]) / 12
  assert f["kl_bits"] == pytest.approx(np.sum(real * np.log2(real / generated)), abs=1e-3)
  assert f["kl_bits"] == pytest.approx(0.131, abs=1e-3)
  same = prior_drift.code_figures(np.stack([np.concatenate(training)]), training, classes=4, rate=2.0)
  assert same["kl_bits"] == 0.0 and same["repeats"] == pytest.approx(1 / 11, abs=1e-3)


def test_one_step_samples_are_the_priors_draws_given_the_real_past(tiny_stack):
  from argmax_music import stack

  _, prior = stack.open_stack(tiny_stack)
  codes = np.random.default_rng(0).integers(0, prior.task.signal_classes, (2, 300)).astype(np.int32)
  drawn = prior_drift.one_step_samples(prior_drift.teacher_forced(prior, codes), seed=0)
  assert drawn.shape == codes.shape and drawn.dtype == np.int32
  changed = codes.copy()
  changed[:, 100] = (changed[:, 100] + 1) % prior.task.signal_classes
  again = prior_drift.one_step_samples(prior_drift.teacher_forced(prior, changed), seed=0)
  np.testing.assert_array_equal(again[:, :101], drawn[:, :101])  # A code's draw reads only the codes before it.
  logits = prior.task.model.apply({"params": prior.params}, codes)
  coldest = prior_drift.one_step_samples(prior_drift.teacher_forced(prior, codes), seed=0, temperature=1e-6)
  np.testing.assert_array_equal(coldest, np.argmax(logits, axis=-1))  # Near temperature 0: the most likely code.


def test_surprise_is_the_priors_nll_of_each_code_by_window(tiny_stack):
  import jax

  from argmax_music import stack

  _, prior = stack.open_stack(tiny_stack)
  codes = np.random.default_rng(1).integers(0, prior.task.signal_classes, (2, 250)).astype(np.int32)
  logits = prior.task.model.apply({"params": prior.params}, codes)
  bits = -np.take_along_axis(np.asarray(jax.nn.log_softmax(logits, -1)), codes[..., None], -1)[..., 0] / np.log(2)
  by_window = prior_drift.surprise_bits(
    prior_drift.teacher_forced(prior, codes), codes, rate=10.0, window_s=10.0
  )  # Windows of 100 codes: 2 whole.
  np.testing.assert_allclose(by_window, [bits[:, :100].mean(), bits[:, 100:200].mean()], atol=2e-3)


def test_window_figures_count_onsets_and_pitch_classes_in_each_window():
  """Four decaying 440-Hz tones, two in each 2-s window of a 4-s signal, transcribed: 1 note/s in each window, all
  on A (pitch class 9): distance 0 from a histogram of A alone, 0.5 from A and E in halves, 1 from C alone."""
  rate = 16000
  t = np.arange(4 * rate) / rate
  signal = np.zeros_like(t)
  for onset in (0.2, 1.2, 2.2, 3.2):
    on = (t >= onset) & (t < onset + 0.5)
    signal[on] += 0.5 * np.sin(2 * np.pi * 440.0 * t[on]) * np.exp(-3 * (t[on] - onset))
  a, a_and_e, c = np.eye(12)[9], (np.eye(12)[9] + np.eye(12)[4]) / 2, np.eye(12)[0]
  assert prior_drift.window_figures([signal, signal], rate, a, window_s=2.0) == {
    "notes_per_s_by_quarter": [1.0, 1.0],
    "pitch_class_distance_by_quarter": [0.0, 0.0],
  }
  three_s = prior_drift.window_figures([signal], rate, a_and_e, window_s=3.0)  # The 1-s remainder is left out.
  assert three_s == {"notes_per_s_by_quarter": [1.0], "pitch_class_distance_by_quarter": [0.5]}
  assert prior_drift.window_figures([signal], rate, c, window_s=2.0)["pitch_class_distance_by_quarter"] == [1.0, 1.0]
