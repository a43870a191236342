"""Musical metrics of audio: transcribed notes, note F1 against a score, spectral and harmonic
fidelity, noise (spectral flatness) and pitch statistics. `argmax_music.evaluate` combines them.

The transcriber and the note scorer need the optional evaluation dependencies (`INSTALL`); the
other metrics need only numpy. Heavy imports happen on first use, so this package and
`argmax_music.evaluate` import without them.
"""

from __future__ import annotations

import importlib.util

INSTALL = "pip install -r requirements-eval.txt && pip install --no-deps basic-pitch==0.4.0"
EVAL_MODULES = ("onnxruntime", "librosa", "resampy", "pretty_midi", "mir_eval", "scipy", "basic_pitch")


class MissingDependencies(ImportError):
  """The evaluation dependencies are not installed; the message is one line naming the install command."""


def missing_dependencies() -> list[str]:
  """Names of the evaluation modules that are not installed (empty when all are)."""
  return [name for name in EVAL_MODULES if importlib.util.find_spec(name) is None]


def require() -> None:
  """Raise MissingDependencies (one line with the install command) unless every evaluation module is present."""
  missing = missing_dependencies()
  if missing:
    raise MissingDependencies(f"musical evaluation needs {', '.join(missing)}: run `{INSTALL}` (or `make venv`)")
