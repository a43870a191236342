"""Line plots for results and benchmarks, saved as PNG files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from argmax_music.files import atomic_save_figure


@dataclass
class Panel:
  """One set of axes: named series of (xs, ys)."""

  title: str
  xlabel: str
  ylabel: str
  series: dict[str, tuple[list, list]] = field(default_factory=dict)
  log_x: bool = False
  log_y: bool = False


def save_panels(path: str | os.PathLike, panels: list[Panel]) -> None:
  """Draw the panels side by side (lines with markers, one legend each) to a PNG file."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
  for ax, panel in zip(axes[0], panels):
    for name, (xs, ys) in panel.series.items():
      ax.plot(xs, ys, marker="o" if len(xs) <= 20 else None, markersize=3, label=name)
    ax.set(
      title=panel.title,
      xlabel=panel.xlabel,
      ylabel=panel.ylabel,
      xscale="log" if panel.log_x else "linear",
      yscale="log" if panel.log_y else "linear",
    )
    ax.grid(alpha=0.3)
    if panel.series:
      ax.legend(fontsize=8)
  fig.tight_layout()
  atomic_save_figure(path, fig, dpi=90)
