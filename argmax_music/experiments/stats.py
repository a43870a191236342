"""Means, spreads and Welch (or paired) confidence intervals over seeds, for the claims RESULTS.md makes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from scipy import stats  # A dependency of jax itself.


class Interval(NamedTuple):
  """An estimate with its 95% confidence interval (nan bounds when there are too few seeds)."""

  estimate: float
  low: float
  high: float

  @property
  def known(self) -> bool:
    return not (math.isnan(self.low) or math.isnan(self.high))

  @property
  def excludes_zero(self) -> bool:
    return self.known and (self.low > 0 or self.high < 0)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (ddof 1; nan for a single value, both nan for none)."""
  n = len(values)
  if n == 0:
    return math.nan, math.nan
  mean = sum(values) / n
  std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
  return mean, std


def contrast(groups: Sequence[Sequence[float]], weights: Sequence[float], level: float = 0.95) -> Interval:
  """sum_i w_i mean(group_i) with a Welch-Satterthwaite interval (independent groups, unequal variances).

  With weights (1, -1) this is Welch's interval for a difference of two means; with (1, -1, -1, 1)
  a difference of two differences. Every group needs at least two values for an interval.
  """
  summaries = [mean_std(g) for g in groups]
  estimate = sum(w * m for w, (m, _) in zip(weights, summaries))
  if any(len(g) < 2 for g in groups):
    return Interval(estimate, math.nan, math.nan)
  terms = [w * w * s * s / len(g) for w, g, (_, s) in zip(weights, groups, summaries)]
  variance = sum(terms)
  if variance == 0:  # Identical runs: no spread to speak of; the estimate is exact.
    return Interval(estimate, estimate, estimate)
  df = variance**2 / sum(t * t / (len(g) - 1) for t, g in zip(terms, groups))
  half = stats.t.ppf(0.5 + level / 2, df) * math.sqrt(variance)
  return Interval(estimate, estimate - half, estimate + half)


def difference(a: Sequence[float], b: Sequence[float]) -> Interval:
  """mean(a) - mean(b) with Welch's 95% interval."""
  return contrast([a, b], [1.0, -1.0])


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Interval:
  """mean(a_i - b_i) over pairs (the same pieces measured two ways) with its 95% t interval."""
  return contrast([[x - y for x, y in zip(a, b, strict=True)]], [1.0])
