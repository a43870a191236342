"""Atomic file writes: everything the project writes lands whole or not at all."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

TEMPORARY = ".*.tmp"  # The name an atomic write gives its file until the rename, as a pattern over the final name.


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Write `data` to a temporary name beside `path`, fsync, then rename over `path`.

  On failure (a full disk, say) the temporary file is removed, `path` keeps its old content,
  and the OSError names `path`.
  """
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(TEMPORARY.replace("*", path.name))
  try:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    tmp.unlink(missing_ok=True)
    raise OSError(e.errno, f"{path}: {e.strerror or e}") from e


def remove_temporaries(folder: str | os.PathLike) -> None:
  """Remove, anywhere under `folder`, the temporary files of atomic writes that a kill cut short."""
  for leftover in Path(folder).rglob(TEMPORARY):
    leftover.unlink()


def atomic_write_json(path: str | os.PathLike, obj) -> None:
  """Write JSON atomically."""
  atomic_write_bytes(path, json.dumps(obj, indent=1).encode())


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
  """np.save atomically."""
  buffer = io.BytesIO()
  np.save(buffer, array)
  atomic_write_bytes(path, buffer.getvalue())


def atomic_write_csv(path: str | os.PathLike, header: list[str], rows) -> None:
  """Write a CSV file (a header, then rows) atomically."""
  text = io.StringIO()
  writer = csv.writer(text)
  writer.writerow(header)
  writer.writerows(rows)
  atomic_write_bytes(path, text.getvalue().encode())


def atomic_save_figure(path: str | os.PathLike, fig, dpi: int = 80) -> None:
  """Save a matplotlib figure as a PNG atomically, then close it."""
  import matplotlib.pyplot as plt

  buffer = io.BytesIO()
  fig.savefig(buffer, dpi=dpi, format="png", bbox_inches="tight")
  plt.close(fig)
  atomic_write_bytes(path, buffer.getvalue())
