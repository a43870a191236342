"""The musical figures of a clip or a set of clips, from the metrics beside this file.

`clip_figures`: one clip (notes/s, polyphony, flatness), against its original (spectral and chroma
distances) and its score (note F1); `reconstruction_figures`: reconstructed clips against theirs;
`codes_figures`: a level's codes of clips, their usage, entropy and information about the score;
`generated_figures`: generated clips against a `TrainingReference` (the training set's notes,
flatness and structure, and white noise's). Raise metrics.MissingDependencies without the evaluation dependencies.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from absl import logging
from tqdm import tqdm

from argmax_music import audio, metrics
from argmax_music.data import clips as clips_lib
from argmax_music.data import dataset
from argmax_music.metrics import (
  chroma,
  code_information,
  flatness,
  keys,
  note_f1,
  pitch_stats,
  scores,
  spectral,
  structure,
  transcription,
)
from argmax_music.models.quantizers import code_statistics

VS_SCORE = "score"
VS_TRANSCRIPTION = "transcription of the original"
MUSIC_MIN_SECONDS = 0.5
NOTES_PER_S_CLIPS = 3  # Training clips transcribed for the notes/s that generated audio is set beside.


def _note_figures(notes: transcription.Transcription) -> dict:
  return {
    "seconds": round(notes.seconds, 3),
    "notes": len(notes.notes),
    "notes_per_s": pitch_stats.notes_per_second(notes.notes, notes.seconds),
    "pitched_fraction": pitch_stats.pitched_fraction(notes.frames, transcription.FRAME_THRESHOLD),
    "polyphony": pitch_stats.polyphony(notes.notes, notes.seconds),
  }


def clip_figures(
  signal: np.ndarray, sample_rate: int, reference: np.ndarray | None = None, midi_notes: np.ndarray | None = None
) -> dict:
  """Figures of one float clip: notes/s, pitched-frame fraction, polyphony, spectral flatness (dB).

  With `midi_notes` ([onset, offset, pitch] rows in the clip's time) its transcription is scored against
  them (`vs`: "score"); otherwise, with a `reference` signal, against the reference's transcription.
  With a `reference`, also the spectral distances, the onset envelopes' correlation and the chroma cosine.
  """
  notes = transcription.transcribe(signal, sample_rate)
  figures = _note_figures(notes) | {"flatness_db": flatness.spectral_flatness_db(signal)}
  if midi_notes is not None:
    figures |= {"vs": VS_SCORE} | note_f1.note_scores(midi_notes, notes.notes)
  elif reference is not None:
    original = transcription.transcribe(reference, sample_rate)
    figures |= {"vs": VS_TRANSCRIPTION} | note_f1.note_scores(original.notes, notes.notes)
  if reference is not None:
    figures |= {
      "stft_distance": spectral.stft_distance(reference, signal),
      "log_mel_distance_db": spectral.log_mel_distance(reference, signal, sample_rate),
      "onset_envelope_corr": spectral.onset_envelope_correlation(reference, signal, sample_rate),
      "chroma_cosine": chroma.chroma_cosine(reference, signal, sample_rate),
    }
  return figures


def training_clip_figures(original: np.ndarray, recon: np.ndarray, sample_rate: float) -> dict:
  """The numeric figures of a mu-law reconstruction against its original, for training's log; {} and a
  warning without the evaluation dependencies or for a clip under MUSIC_MIN_SECONDS."""
  if len(recon) < MUSIC_MIN_SECONDS * sample_rate:
    logging.warning("eval.music_every: the clip is %d samples, too short to transcribe", len(recon))
    return {}
  try:
    figures = clip_figures(audio.mu_law_decode(recon), int(sample_rate), audio.mu_law_decode(original))
  except metrics.MissingDependencies as e:
    logging.warning("eval.music_every: no musical figures: %s", e)
    return {}
  return {k: v for k, v in figures.items() if isinstance(v, (int, float))}


def mean_figures(rows: list[dict]) -> dict:
  """Mean of each numeric figure over the rows that have it."""
  names = dict.fromkeys(k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and k != "start_s")
  return {k: float(np.nanmean([r[k] for r in rows if k in r])) for k in names}


def reconstruction_figures(
  clips: list[clips_lib.Clip], decoded: np.ndarray, sample_rate: int, clip_scores: list[np.ndarray | None]
) -> dict:
  """Each mu-law reconstruction in `decoded` against its clip (and the clip's score, where it has one: None
  otherwise), with the transcriber's own score on the original; and their mean."""
  rows = []
  progress = tqdm(list(zip(clips, decoded, clip_scores)), desc="transcribe", unit="clips")
  for clip, waveform, score in progress:
    original = audio.mu_law_decode(clip.waveform[: len(waveform)])
    row = {"source": clip.source, "start_s": round(clip.start_s, 3)}
    row |= clip_figures(audio.mu_law_decode(waveform), sample_rate, original, score)
    if score is not None:  # The transcriber's own score on the original: the ceiling for this clip.
      row["original_onset_f1"] = clip_figures(original, sample_rate, midi_notes=score)["onset_f1"]
    rows.append(row)
  return {"clips": rows, "summary": mean_figures(rows) | {"vs": " / ".join(sorted({r["vs"] for r in rows}))}}


def codes_figures(codes: np.ndarray, num_codes: int, frame_seconds: float, clip_scores: list) -> dict:
  """A level's codes of some clips (clips, frames): usage and entropy, and the bits per code they share with the
  clips' scores (`code_information.score_information`; absent where no clip has a score)."""
  histogram = np.bincount(np.asarray(codes).reshape(-1), minlength=num_codes)
  figures = {k: float(v) for k, v in code_statistics(histogram, 1.0 / frame_seconds).items()}
  return figures | code_information.score_information(list(codes), clip_scores, frame_seconds)


@dataclasses.dataclass(frozen=True)
class TrainingReference:
  """What generated audio is compared with: the training set's note histograms and flatness, and white noise's."""

  pitch_classes: np.ndarray
  durations: np.ndarray
  flatness_db: float
  noise_flatness_db: float
  notes_from: str  # "MIDI of N training files" or "transcriptions of N training clips"
  notes_per_s: float  # transcribed, over the first NOTES_PER_S_CLIPS training clips
  noise_notes_per_s: float
  structure_same_piece: float  # median `structure.ends_correlation` of a clip with itself (nan: clips too short)
  structure_different_pieces: float  # ... of one clip's opening with the next clip's ending
  pitch_class_halves_distance: float  # pitch-class histogram distance between alternate files (two halves)
  scale_degrees: dict[str, np.ndarray]  # per mode: share of the notes i semitones above their file's key's tonic


def training_reference(
  data_dir: str | os.PathLike, max_files: int = 20, seconds: float = 4.0, midi_root: str | os.PathLike | None = None
) -> TrainingReference:
  """The training split's note histograms (from its MIDI where every clip's file has one, else transcriptions of
  the clips) and the mean spectral flatness of a clip from the middle of each of up to `max_files` files."""
  data = dataset.PreparedDataset(data_dir)
  rate = int(data.manifest["sample_rate"])
  count = min(max_files, sum(e["length"] >= seconds * rate for e in data.entries("train")))
  picked = clips_lib.pick_clips(data, "train", count, int(seconds * rate))
  clips = [audio.mu_law_decode(c.waveform) for c in picked]
  midi = scores.midi_index(data, midi_root)
  if picked and all(os.path.normpath(c.source) in midi for c in picked):
    notes = [note_f1.midi_notes(midi[os.path.normpath(c.source)][0]) for c in picked]
    in_clips = [scores.clip_score(midi, c, seconds) for c in picked]
    notes_from = f"MIDI of {len(picked)} training files"
  else:
    notes = in_clips = [transcription.transcribe(c, rate).notes for c in clips]
    notes_from = f"transcriptions of {len(picked)} training clips ({seconds:g} s each)"
  long_enough = seconds >= 2 * structure.WINDOW_S and len(in_clips) > 1
  ends = lambda pairs: float(np.nanmedian([structure.ends_correlation(a, b, seconds) for a, b in pairs]))
  pool = lambda groups: np.concatenate(groups) if groups else np.zeros((0, 3))
  pooled = pool(notes)
  halves = [pitch_stats.pitch_class_histogram(pool(notes[i::2])) for i in (0, 1)]
  file_keys = data.file_keys("train")
  keyed = [
    (pitch_stats.pitch_class_counts(n), file_keys[c.source]) for n, c in zip(notes, picked) if c.source in file_keys
  ]
  noise = np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32)
  notes_per_s = lambda x: _note_figures(transcription.transcribe(x, rate))["notes_per_s"]
  counted = [notes_per_s(c) for c in clips[:NOTES_PER_S_CLIPS]]
  return TrainingReference(
    pitch_stats.pitch_class_histogram(pooled),
    pitch_stats.duration_histogram(pooled),
    float(np.nanmean([flatness.spectral_flatness_db(c) for c in clips])),
    flatness.spectral_flatness_db(noise),
    notes_from,
    float(np.mean(counted)) if counted else math.nan,
    notes_per_s(noise),
    ends(zip(in_clips, in_clips)) if long_enough else math.nan,
    ends(zip(in_clips, in_clips[1:] + in_clips[:1])) if long_enough else math.nan,
    pitch_stats.histogram_distance(*halves) if len(notes) > 1 else math.nan,
    {mode: c / c.sum() for mode, c in keys.scale_degree_counts(keyed).items() if c.sum()},
  )


def scale_degree_figures(notes: list[np.ndarray], asked_keys: list[str], training: TrainingReference) -> dict:
  """How clips ([onset, offset, pitch] notes) use the scales of the keys they were asked in, beside the training
  files' use of theirs: `scale_degree_distance`, the pitch-class distance with every note counted from its clip's
  tonic, per mode (weighted by notes; 0 when each clip uses its scale as the training files do, whichever keys);
  `key_mix_distance`, the pitch-class distance to the training notes of the clips' keys alone (each clip's notes
  spread over its key as the training files spread theirs): the part of `pitch_class_distance` the keys account
  for. NaN without notes or where the training files have no key in a clip's mode."""
  counts = [pitch_stats.pitch_class_counts(n) for n in notes]
  degrees = keys.scale_degree_counts(list(zip(counts, asked_keys, strict=True)))
  total = sum(c.sum() for c in degrees.values())
  if not total or not set(degrees) <= set(training.scale_degrees):
    return {"scale_degree_distance": math.nan, "key_mix_distance": math.nan}
  distances = [pitch_stats.histogram_distance(c, training.scale_degrees[m]) * c.sum() for m, c in degrees.items()]
  mix = sum(
    keys.in_key(training.scale_degrees[keys.tonic_and_mode(k)[1]], k) * c.sum() for c, k in zip(counts, asked_keys)
  )
  return {
    "scale_degree_distance": float(sum(distances) / total),
    "key_mix_distance": pitch_stats.histogram_distance(mix, training.pitch_classes),
  }


def key_agreement(rows: list[dict]) -> dict:
  """The share of clips (rows with "key" and "asked_key") whose notes are in the key asked for, and in it or its
  relative."""
  asked = [(r["key"], r["asked_key"]) for r in rows]
  return {
    "key_agreement": float(np.mean([k == a for k, a in asked])) if asked else math.nan,
    "signature_agreement": float(np.mean([k in (a, keys.relative(a)) for k, a in asked])) if asked else math.nan,
  }


def generated_figures(
  signals: list[np.ndarray], sample_rate: int, training: TrainingReference, asked_keys: list[str] | None = None
) -> dict:
  """Per-clip figures of generated float clips (`structure`, the correlation of the pitch classes of their first and
  last 5 s, from 10 s up; `key`, the key of their notes), and over all of them: pitch-class and duration histogram
  distances (total variation, 0..1) to the training notes, mean flatness and structure beside the training audio's
  (and noise's flatness). With `asked_keys` (the key each clip was sampled in, or its score's), `key_agreement`:
  the share of clips whose notes are in that key, and `signature_agreement`: in that key or its relative; and
  `scale_degree_figures`."""
  rows, notes = [], []
  for signal in signals:
    notes.append(transcription.transcribe(signal, sample_rate))
    key = keys.key_of(pitch_stats.pitch_class_histogram(notes[-1].notes)) if len(notes[-1].notes) else None
    rows.append(_note_figures(notes[-1]) | {"flatness_db": flatness.spectral_flatness_db(signal), "key": key})
    if notes[-1].seconds >= 2 * structure.WINDOW_S:  # Long enough to have a beginning and an end.
      rows[-1]["structure"] = structure.ends_correlation(notes[-1].notes, notes[-1].notes, notes[-1].seconds)
  pooled = np.concatenate([n.notes for n in notes]) if notes else np.zeros((0, 3))
  summary = mean_figures(rows) | {
    "pitch_class_distance": pitch_stats.histogram_distance(
      pitch_stats.pitch_class_histogram(pooled), training.pitch_classes
    ),
    "duration_distance": pitch_stats.histogram_distance(pitch_stats.duration_histogram(pooled), training.durations),
    "training_flatness_db": training.flatness_db,
    "noise_flatness_db": training.noise_flatness_db,
    "training_notes_per_s": training.notes_per_s,
    "noise_notes_per_s": training.noise_notes_per_s,
    "training_notes_from": training.notes_from,
    "training_structure_same_piece": training.structure_same_piece,
    "training_structure_different_pieces": training.structure_different_pieces,
    "training_pitch_class_halves_distance": training.pitch_class_halves_distance,
  }
  if asked_keys is not None:
    for row, asked in zip(rows, asked_keys, strict=True):
      row["asked_key"] = asked
    summary |= key_agreement(rows) | scale_degree_figures([n.notes for n in notes], asked_keys, training)
  return {"clips": rows, "summary": summary}
