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
