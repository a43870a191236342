"""Musical evaluation of a trained stack: are the right notes there, not only a low NLL?

  python -m argmax_music.evaluate --workdir=runs/demo [--clips=4] [--seconds=4] [--generate=2] [--out=FILE]

Reconstruction: validation clips of the level's prepared dataset are encoded, decoded and
transcribed (basic-pitch), then scored note by note against the score (the corpus keeps each
piece's MIDI; MAESTRO has its own) -- or, where a file has no MIDI, against the transcription
of the original clip, which the output says. Spectral (multi-resolution STFT, log-mel) and
harmonic (chroma cosine) distances compare reconstruction and original. Generated audio (with
a prior) gets notes/s, pitched frames, polyphony, pitch-class and duration histogram distances
to the training set's notes, and spectral flatness beside the training audio's and white noise's.
Writes JSON (default ROOT/eval/metrics.json) and prints a table.

Other code calls `clip_figures` (one clip, optionally against its original and its score) and
`generated_figures` (a set of generated clips against a `training_reference`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
from absl import flags, logging
from tqdm import tqdm

from argmax_music import audio, metrics
from argmax_music.data import corpus, dataset
from argmax_music.files import atomic_write_bytes
from argmax_music.metrics import chroma, flatness, note_f1, pitch_stats, spectral, transcription

VS_SCORE = "score"
VS_TRANSCRIPTION = "transcription of the original"


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
  With a `reference`, also the spectral distances and chroma cosine. Raises metrics.MissingDependencies.
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
      "chroma_cosine": chroma.chroma_cosine(reference, signal, sample_rate),
    }
  return figures


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


MUSIC_MIN_SECONDS = 0.5
NOTES_PER_S_CLIPS = 3  # Training clips transcribed for the notes/s that generated audio is set beside.


def training_clip_figures(original: np.ndarray, recon: np.ndarray, sample_rate: float) -> dict:
  """The numeric musical figures of a mu-law reconstruction against its original (note F1 against the
  original's transcription, spectral distances: argmax_music.evaluate); {} and a warning without the
  evaluation dependencies or for a clip under MUSIC_MIN_SECONDS (the clip is at most one eval crop)."""
  if len(recon) < MUSIC_MIN_SECONDS * sample_rate:
    logging.warning("eval.music_every: the clip is %d samples, too short to transcribe", len(recon))
    return {}
  try:
    figures = clip_figures(audio.mu_law_decode(recon), int(sample_rate), audio.mu_law_decode(original))
  except metrics.MissingDependencies as e:
    logging.warning("eval.music_every: no musical figures: %s", e)
    return {}
  return {k: v for k, v in figures.items() if isinstance(v, (int, float))}


def training_reference(
  data_dir: str | os.PathLike, max_files: int = 20, seconds: float = 4.0, midi_root: str | os.PathLike | None = None
) -> TrainingReference:
  """The training split's note histograms (from its MIDI where every file has one, else transcriptions of a
  clip per file) and the mean spectral flatness of a clip per file, over up to `max_files` files."""
  data = dataset.PreparedDataset(data_dir)
  rate = int(data.manifest["sample_rate"])
  entries = data.entries("train")[:max_files]
  midi = midi_index(data, midi_root)
  clips = [_middle_clip(data, e, int(seconds * rate)) for e in entries]
  if entries and all(os.path.normpath(e["source"]) in midi for e in entries):
    notes = [note_f1.midi_notes(midi[os.path.normpath(e["source"])][0]) for e in entries]
    notes_from = f"MIDI of {len(entries)} training files"
  else:
    notes = [transcription.transcribe(c, rate).notes for c in clips]
    notes_from = f"transcriptions of {len(entries)} training clips ({seconds:g} s each)"
  pooled = np.concatenate(notes) if notes else np.zeros((0, 3))
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
  )


def generated_figures(signals: list[np.ndarray], sample_rate: int, training: TrainingReference) -> dict:
  """Per-clip figures of generated float clips, and over all of them: pitch-class and duration histogram
  distances (total variation, 0..1) to the training notes, mean flatness beside the training audio's and noise's."""
  clips, notes = [], []
  for signal in signals:
    notes.append(transcription.transcribe(signal, sample_rate))
    clips.append(_note_figures(notes[-1]) | {"flatness_db": flatness.spectral_flatness_db(signal)})
  pooled = np.concatenate([n.notes for n in notes]) if notes else np.zeros((0, 3))
  summary = _mean(clips) | {
    "pitch_class_distance": pitch_stats.histogram_distance(
      pitch_stats.pitch_class_histogram(pooled), training.pitch_classes
    ),
    "duration_distance": pitch_stats.histogram_distance(pitch_stats.duration_histogram(pooled), training.durations),
    "training_flatness_db": training.flatness_db,
    "noise_flatness_db": training.noise_flatness_db,
    "training_notes_per_s": training.notes_per_s,
    "noise_notes_per_s": training.noise_notes_per_s,
    "training_notes_from": training.notes_from,
  }
  return {"clips": clips, "summary": summary}


def midi_index(data: dataset.PreparedDataset, midi_root: str | os.PathLike | None = None) -> dict:
  """{source: (MIDI path, MIDI time of the audio's start)} for a prepared dataset made from a folder with MIDI
  (the embedded corpus, MAESTRO); `midi_root` overrides the folder the manifest records."""
  root = midi_root or data.manifest["made_by"].get("input")
  return corpus.midi_for_audio(root) if root and Path(root).is_dir() else {}


def score_notes(
  data: dataset.PreparedDataset, entry: dict, start: int, length: int, midi: dict | None = None
) -> np.ndarray | None:
  """The score's notes ([onset, offset, pitch] rows, clip time) starting inside `length` samples from `start`
  in `entry`'s array, or None when the file has no MIDI. `midi`: a `midi_index(data)` to reuse."""
  found = (midi_index(data) if midi is None else midi).get(os.path.normpath(entry["source"]))
  if found is None:
    return None
  rate = float(data.manifest["sample_rate"])
  in_file = entry.get("start", 0) + start  # a validation tail held out of a file starts inside it
  return note_f1.midi_notes(found[0], found[1] + in_file / rate, length / rate)


@dataclasses.dataclass
class Clip:
  """A validation clip: mu-law samples, where it starts in its source file, and its score's notes (or None)."""

  source: str
  start_s: float
  waveform: np.ndarray
  midi_notes: np.ndarray | None


def _middle_clip(data: dataset.PreparedDataset, entry: dict, length: int) -> np.ndarray:
  array = np.load(data.root / entry["array"], mmap_mode="r")
  start = max(0, len(array) - length) // 2
  return audio.mu_law_decode(array[start : start + length])


def validation_clips(
  data_dir: str | os.PathLike, count: int, seconds: float, multiple: int = 1, midi_root: str | os.PathLike | None = None
) -> list[Clip]:
  """`count` clips of `seconds` (rounded down to `multiple` samples) spread over the validation files, with
  the score notes that start inside each (MIDI time aligned by the file's recorded offset)."""
  data = dataset.PreparedDataset(data_dir)
  rate = float(data.manifest["sample_rate"])
  entries = data.entries("validation")
  if not entries:
    raise ValueError(f"{data_dir}: no validation files")
  length = int(seconds * rate) // multiple * multiple
  midi = midi_index(data, midi_root)
  per_file = math.ceil(count / len(entries))
  clips = []
  for i in range(count):
    entry = entries[i % len(entries)]
    array = np.load(data.root / entry["array"], mmap_mode="r")
    if len(array) < length:
      raise ValueError(f"{entry['source']}: {len(array)} samples, shorter than a {seconds} s clip")
    start = int((len(array) - length) * (i // len(entries) + 0.5) / per_file)
    in_file = (entry.get("start", 0) + start) / rate
    clips.append(
      Clip(
        entry["source"],
        in_file,
        np.asarray(array[start : start + length]),
        score_notes(data, entry, start, length, midi),
      )
    )
  return clips


def _mean(rows: list[dict]) -> dict:
  """Mean of each numeric figure over the rows that have it."""
  keys = dict.fromkeys(k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and k != "start_s")
  return {k: float(np.nanmean([r[k] for r in rows if k in r])) for k in keys}


def reconstruction_figures(sampler, clips: list[Clip], levels_used: int, sample_rate: int) -> dict:
  """Encode/decode each clip through `levels_used` levels (sample.Sampler) and score the reconstructions."""
  top = np.stack([sampler.encode_all(c.waveform.astype(np.int32), levels_used)[-1] for c in clips])
  decoded = sampler.decode(top, levels_used)[-1]
  rows = []
  for clip, waveform in tqdm(list(zip(clips, decoded)), desc="transcribe", unit="clips"):
    original = audio.mu_law_decode(clip.waveform)
    row = {"source": clip.source, "start_s": round(clip.start_s, 3)}
    row |= clip_figures(audio.mu_law_decode(waveform), sample_rate, original, clip.midi_notes)
    if clip.midi_notes is not None:  # The transcriber's own score on the original: the ceiling for this clip.
      row["original_onset_f1"] = clip_figures(original, sample_rate, midi_notes=clip.midi_notes)["onset_f1"]
    rows.append(row)
  vs = sorted({r["vs"] for r in rows})
  return {"clips": rows, "summary": _mean(rows) | {"vs": " / ".join(vs)}}


def format_table(result: dict) -> str:
  """The figures as a plain-text table: one line per clip and a mean line per part."""
  lines = []
  if "reconstruction" in result:
    lines.append(f"reconstruction (notes scored against: {result['reconstruction']['summary']['vs']})")
    lines.append(
      f"  {'clip':<40} {'F1 on':>6} {'F1 off':>6} {'orig F1':>7} {'notes':>9} {'STFT':>6} {'mel dB':>6} {'chroma':>6}"
    )
    for r in result["reconstruction"]["clips"] + [dict(result["reconstruction"]["summary"], source="mean")]:
      name = r["source"] if "start_s" not in r else f"{Path(r['source']).stem}@{r['start_s']:.1f}s"
      lines.append(
        f"  {name[-40:]:<40} {r['onset_f1']:6.3f} {r['offset_f1']:6.3f} "
        f"{r.get('original_onset_f1', math.nan):7.3f} "
        f"{r['estimated_notes']:4.0f}/{r['reference_notes']:<4.0f} {r['stft_distance']:6.2f} "
        f"{r['log_mel_distance_db']:6.2f} {r['chroma_cosine']:6.3f}"
      )
  if "generated" in result:
    s = result["generated"]["summary"]
    lines.append("generated")
    lines.append(
      f"  notes/s {s['notes_per_s']:.2f}  pitched frames {s['pitched_fraction']:.2f}  "
      f"polyphony {s['polyphony']:.2f}  pitch-class dist {s['pitch_class_distance']:.2f}  "
      f"duration dist {s['duration_distance']:.2f}  (vs {s['training_notes_from']})"
    )
    lines.append(
      f"  flatness {s['flatness_db']:.1f} dB  (training audio {s['training_flatness_db']:.1f} dB, "
      f"white noise {s['noise_flatness_db']:.1f} dB)"
    )
  lines.append(f"transcriber: {result['transcriber_s_per_audio_s']:.3f} s of compute per s of audio")
  return "\n".join(lines)


FLAGS = flags.FLAGS


def main(argv):
  del argv
  metrics.require()
  from argmax_music import sample  # Here, not above: sample.py imports this module for its page.

  root = Path(FLAGS.workdir)
  level_dirs, prior_dir = sample.find_stack(root)
  if not level_dirs:
    raise sample.StackError(f"--workdir={root}: no level1/ there (a root as the demo makes: level1/, prior/)")
  levels, prior = sample.load_stack(level_dirs, prior_dir if FLAGS.generate else None)
  used = FLAGS.levels_used or len(levels)
  rate = int(levels[0].run["sample_rate"])
  data_dir = levels[0].config.data.dir
  sampler = sample.Sampler(levels, prior, [FLAGS.temperature], None, FLAGS.seed)
  result = {"workdir": str(root), "levels": [s.describe() for s in levels], "levels_used": used}
  hop = math.prod(s.hop for s in levels[:used])
  clips = validation_clips(data_dir, FLAGS.clips, FLAGS.seconds, hop, FLAGS.midi_root)
  result["reconstruction"] = reconstruction_figures(sampler, clips, used, rate)
  if FLAGS.generate and prior is not None:
    top_hop = math.prod(s.hop for s in levels)
    top = sampler.prior_codes(FLAGS.generate, math.ceil(FLAGS.seconds * rate / top_hop))
    waveforms = sampler.decode(top, len(levels))[-1][:, : int(FLAGS.seconds * rate)]
    reference = training_reference(data_dir, seconds=FLAGS.seconds, midi_root=FLAGS.midi_root)
    result["generated"] = generated_figures([audio.mu_law_decode(w) for w in waveforms], rate, reference)
  elif FLAGS.generate:
    print(f"{root}: no prior/, so no generated audio to evaluate")
  result["transcriber_s_per_audio_s"] = transcription.speed()
  out = Path(FLAGS.out or root / "eval" / "metrics.json")
  atomic_write_bytes(out, json.dumps(result, indent=1).encode())
  print(format_table(result))
  print(f"wrote {out}")


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "Root with level1/, level2/, ..., prior/.", required=True)
  flags.DEFINE_integer("clips", 4, "Validation clips to reconstruct.")
  flags.DEFINE_float("seconds", 4.0, "Seconds per clip (reconstructed and generated).")
  flags.DEFINE_integer("generate", 2, "Clips to generate with the prior (0: none; skipped without a prior).")
  flags.DEFINE_integer("levels_used", None, "Levels to encode through (default: all).")
  flags.DEFINE_float("temperature", 1.0, "Sampling temperature of every stage.")
  flags.DEFINE_integer("seed", 0, "Random seed.")
  flags.DEFINE_string(
    "midi_root",
    None,
    "Folder with the dataset's MIDI and metadata CSV (default: the folder the prepared dataset was made from).",
  )
  flags.DEFINE_string("out", None, "JSON output (default: WORKDIR/eval/metrics.json).")
  from argmax_music import cli, sample

  cli.run(main, metrics.MissingDependencies, sample.StackError)
