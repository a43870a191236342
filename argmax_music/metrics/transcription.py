"""Automatic piano/polyphonic transcription with Spotify's basic-pitch model, run through onnxruntime.

basic-pitch's wheel ships its model as ONNX; it is installed without its declared dependencies
(which pin TensorFlow), so inference here is the model plus basic-pitch's note decoding.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import time

import numpy as np
import soxr

from argmax_music import metrics

ONSET_THRESHOLD = 0.5  # basic-pitch's defaults
FRAME_THRESHOLD = 0.3
MIN_NOTE_SECONDS = 0.1277
OVERLAP_FRAMES = 30
# Back-ends basic-pitch probes at import; hidden so that only onnxruntime is used (and TensorFlow, when another
# part of the environment has it, is not imported into this process).
_OTHER_BACKENDS = ("tensorflow", "coremltools", "tflite_runtime")
_work = {"audio_s": 0.0, "compute_s": 0.0}  # what this process has transcribed, for `speed`


@dataclasses.dataclass(frozen=True)
class Transcription:
  """Notes as an (n, 3) array of [onset s, offset s, MIDI pitch], and per-frame pitch activations."""

  notes: np.ndarray
  frames: np.ndarray  # (frames, 88) note activations in [0, 1]
  frame_rate: float
  seconds: float


@functools.cache
def _basic_pitch():
  """basic-pitch's modules and its ONNX model, loaded once per process."""
  metrics.require()
  hidden = [name for name in _OTHER_BACKENDS if name not in sys.modules]
  for name in hidden:
    sys.modules[name] = None  # `import name` now raises ImportError.
  logging.disable(logging.WARNING)  # basic-pitch warns at import about every back-end it did not find.
  try:
    import basic_pitch
    from basic_pitch import constants, inference, note_creation
  finally:
    logging.disable(logging.NOTSET)
    for name in hidden:
      del sys.modules[name]
  model = inference.Model(basic_pitch.build_icassp_2022_model_path(basic_pitch.FilenameSuffix.onnx))
  return constants, inference, note_creation, model


def transcribe(x: np.ndarray, sample_rate: int) -> Transcription:
  """Notes of a mono float signal (any rate; resampled to the model's 22.05 kHz)."""
  constants, inference, note_creation, model = _basic_pitch()
  start = time.perf_counter()
  rate = constants.AUDIO_SAMPLE_RATE
  y = soxr.resample(np.asarray(x, np.float32), sample_rate, rate, quality="HQ").astype(np.float32)
  overlap = OVERLAP_FRAMES * constants.FFT_HOP
  padded = np.concatenate([np.zeros(overlap // 2, np.float32), y])
  windows = np.stack([w for w, _ in inference.window_audio_file(padded, constants.AUDIO_N_SAMPLES - overlap)])
  output = {k: inference.unwrap_output(v, len(y), OVERLAP_FRAMES) for k, v in model.predict(windows).items()}
  frame_rate = rate / constants.FFT_HOP
  events = note_creation.output_to_notes_polyphonic(
    output["note"],
    output["onset"],
    onset_thresh=ONSET_THRESHOLD,
    frame_thresh=FRAME_THRESHOLD,
    infer_onsets=True,
    min_note_len=int(round(MIN_NOTE_SECONDS * frame_rate)),
    min_freq=None,
    max_freq=None,
    melodia_trick=True,
  )
  times = note_creation.model_frames_to_time(output["note"].shape[0])
  notes = np.array([[times[start], times[end], pitch] for start, end, pitch, *_ in events], np.float64)
  notes = notes.reshape(-1, 3)
  _work["audio_s"] += len(x) / sample_rate
  _work["compute_s"] += time.perf_counter() - start
  return Transcription(notes[np.argsort(notes[:, 0], kind="stable")], output["note"], frame_rate, len(x) / sample_rate)


def speed() -> float:
  """Seconds of compute per second of audio over every transcription so far in this process (NaN before one)."""
  return _work["compute_s"] / _work["audio_s"] if _work["audio_s"] else float("nan")
