"""The embedded piano corpus: music21's bundled scores rendered through fluidsynth's piano.

  python -m argmax_music.data.corpus --out=data/piano --pieces=40

Every part of every score is played on the General MIDI acoustic grand piano of
FluidR3_GM at 16 kHz, gain-normalised and trimmed of leading/trailing silence.
Pieces are taken in a fixed order (keyboard composers first), MIDI and audio are
cached, and a second run renders nothing new. The folder is written in MAESTRO's
layout (audio files + `metadata.csv` with `split`, `audio_filename`, `duration`)
so `argmax_music.data.prepare` reads it like a MAESTRO download; its `midi_filename`
and `midi_offset` columns tie each file to its score (`midi_offset`: seconds of the
render trimmed before the audio starts, so audio time t is MIDI time t + midi_offset).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from absl import flags, logging
from tqdm import tqdm

from argmax_music import audio, files
from argmax_music.data import dataset
from argmax_music.files import atomic_write_bytes, atomic_write_csv

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SAMPLE_RATE = 16000
# Keyboard-friendly composers come first, so a small corpus is mostly keyboard music.
COMPOSER_ORDER = (
  "bach",
  "beethoven",
  "mozart",
  "haydn",
  "chopin",
  "joplin",
  "schumann_clara",
  "schumann_robert",
  "cpebach",
  "beach",
  "schubert",
  "handel",
  "scarlatti",
)
PEAK = 0.9
TRIM_DB = -50.0
VALIDATION_FRACTION = TEST_FRACTION = 0.05


def corpus_pieces() -> list[str]:
  """All music21 corpus entries as paths relative to the corpus root, in the corpus order."""
  from music21 import corpus

  root = corpus_root()
  rel = [os.path.relpath(p, root) for p in corpus.getPaths()]

  def key(path: str):
    composer = Path(path).parts[0]
    rank = COMPOSER_ORDER.index(composer) if composer in COMPOSER_ORDER else len(COMPOSER_ORDER)
    return rank, path

  return sorted(rel, key=key)


def corpus_root() -> Path:
  import music21

  return Path(music21.__file__).parent / "corpus"


def piece_name(piece: str) -> str:
  """A corpus entry's file stem in the rendered folder: bach/bwv104.6.mxl -> bach__bwv104.6."""
  return str(Path(piece).with_suffix("")).replace(os.sep, "__")


def score_to_piano_midi(piece: str, midi_path: Path) -> None:
  """Parse a corpus entry and write it as MIDI with every part on the acoustic grand piano.

  A multi-score file (an opus of folk tunes) becomes its scores played in sequence, 2 s apart.
  """
  from music21 import converter, instrument, midi, note, stream, tempo

  parsed = converter.parse(corpus_root() / piece)
  scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
  combined = stream.Score()
  offset = 0.0
  for score in scores:
    for i, part in enumerate(score.parts or [score]):
      while len(combined.parts) <= i:
        piano = instrument.Piano()
        piano.midiChannel = len(combined.parts) % 9  # Never channel 10 (index 9): GM drums.
        new_part = stream.Part()
        new_part.insert(0, piano)
        combined.insert(0, new_part)
      flat = part.flatten()
      for element in flat.getElementsByClass((note.NotRest, tempo.MetronomeMark)):
        combined.parts[i].insert(offset + flat.elementOffset(element), element)
    offset += float(score.highestTime) + 2.0
  if not combined.flatten().notes:
    raise ValueError("score has no notes")
  atomic_write_bytes(midi_path, midi.translate.music21ObjectToMidiFile(combined).writestr())


def render_midi(midi_path: Path, soundfont: str = SOUNDFONT) -> np.ndarray:
  """Render a MIDI file with fluidsynth to a float32 mono signal at 16 kHz."""
  with tempfile.TemporaryDirectory() as tmp:
    wav = Path(tmp) / "render.wav"
    cmd = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SAMPLE_RATE), "-F", str(wav), soundfont, str(midi_path)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not wav.exists():
      raise RuntimeError(f"fluidsynth failed: {result.stderr.strip()[-300:]}")
    return audio.load_audio(wav, SAMPLE_RATE)


def normalise_and_trim(x: np.ndarray) -> tuple[np.ndarray, int]:
  """Scale the peak to 0.9 and cut leading/trailing audio quieter than -50 dB of the peak.

  Returns the trimmed signal and the number of leading samples cut.
  """
  peak = float(np.max(np.abs(x))) if len(x) else 0.0
  if peak < 1e-6:
    raise ValueError("render is silent")
  x = x * (PEAK / peak)
  loud = np.flatnonzero(np.abs(x) > PEAK * 10 ** (TRIM_DB / 20))
  return x[loud[0] : loud[-1] + 1], int(loud[0])


def render_piece(args) -> tuple[str, float | None, float | None, str | None]:
  """Worker: render one piece (using the cache).

  `args` is (piece, out folder, its known midi_offset or None). Returns (piece, seconds, midi_offset,
  reason for a skip); seconds and midi_offset are None for a skipped piece. A cached FLAC whose offset
  is unknown (a corpus rendered before offsets were kept) is rendered again to measure it.
  """
  piece, out, known_offset = args
  name = piece_name(piece)
  flac = out / "audio" / f"{name}.flac"
  if flac.exists() and known_offset is not None:
    return piece, sf.info(flac).duration, known_offset, None
  midi = out / "midi" / f"{name}.mid"
  try:
    if not midi.exists():
      score_to_piano_midi(piece, midi)
    x, start = normalise_and_trim(render_midi(midi))
  except Exception as e:  # music21 and fluidsynth fail in many ways; each is a reason to skip the piece.
    return piece, None, None, f"{type(e).__name__}: {str(e)[:200]}"
  if not flac.exists():
    audio.save_audio(flac, x, SAMPLE_RATE)
  return piece, len(x) / SAMPLE_RATE, start / SAMPLE_RATE, None


def render_corpus(out: str | os.PathLike, pieces: int, workers: int = 1) -> dict:
  """Render the first `pieces` corpus entries into `out`; returns a summary dict."""
  if shutil.which("fluidsynth") is None:
    raise RuntimeError("fluidsynth is not installed (apt-get install fluidsynth fluid-soundfont-gm)")
  if not Path(SOUNDFONT).exists():
    raise RuntimeError(f"{SOUNDFONT} is missing (apt-get install fluid-soundfont-gm)")
  out = Path(out)
  for sub in ("audio", "midi"):
    (out / sub).mkdir(parents=True, exist_ok=True)
  failed_path = out / "failed.json"
  failed = _read_json(failed_path, {})
  chosen = corpus_pieces()[:pieces]
  todo = [p for p in chosen if p not in failed]
  known = {row["audio_filename"]: float(row["midi_offset"]) for row in midi_index_rows(out) if row["midi_offset"]}
  rendered: dict[str, tuple[float, float]] = {}
  progress = tqdm(total=len(todo), desc="render", unit="pieces")
  args = [(p, out, known.get(f"audio/{piece_name(p)}.flac")) for p in todo]
  for piece, seconds, offset, reason in dataset.ordered_map(render_piece, args, workers):
    if reason is None:
      rendered[piece] = seconds, offset
    else:
      logging.warning("skipping %s: %s", piece, reason)
      failed[piece] = reason
      files.atomic_write_json(failed_path, failed)
    progress.set_postfix_str(f"{sum(s for s, _ in rendered.values()) / 3600:.2f} h", refresh=False)
    progress.update()
  progress.close()
  write_metadata(out, rendered)
  return {"pieces": len(rendered), "hours": sum(s for s, _ in rendered.values()) / 3600, "skipped": len(failed)}


def write_metadata(out: Path, rendered: dict[str, tuple[float, float]]) -> None:
  """MAESTRO-style metadata.csv: canonical_composer, canonical_title, split, audio_filename, duration,
  midi_filename, and midi_offset (seconds of the render trimmed before the audio starts)."""
  rows = []
  for piece, (seconds, offset) in rendered.items():
    name = piece_name(piece)
    split = dataset.hash_split(name, VALIDATION_FRACTION, TEST_FRACTION)
    rows.append(
      [Path(piece).parts[0], name, split, f"audio/{name}.flac", f"{seconds:.3f}", f"midi/{name}.mid", f"{offset:.6f}"]
    )
  atomic_write_csv(
    out / "metadata.csv",
    ["canonical_composer", "canonical_title", "split", "audio_filename", "duration", "midi_filename", "midi_offset"],
    rows,
  )


def midi_index_rows(root: Path) -> list[dict]:
  """`audio_filename`, `midi_filename` and `midi_offset` of each row of the MAESTRO-style CSVs at the top
  of `root` (empty strings where a column is missing: MAESTRO has no offsets, older corpora no MIDI)."""
  rows = []
  for path in sorted(Path(root).glob("*.csv")):
    with open(path, newline="") as f:
      reader = csv.DictReader(f)
      if "audio_filename" in (reader.fieldnames or ()):
        rows += [
          {key: row.get(key) or "" for key in ("audio_filename", "midi_filename", "midi_offset")} for row in reader
        ]
  return rows


def midi_for_audio(root: str | os.PathLike) -> dict[str, tuple[Path, float]]:
  """{audio_filename: (its MIDI file, MIDI time at the audio's first sample)} for a corpus or MAESTRO folder.

  Files without a MIDI column or whose MIDI file is missing are left out; a missing offset reads as 0.
  """
  root = Path(root)
  found = {}
  for row in midi_index_rows(root):
    midi = root / row["midi_filename"]
    if row["midi_filename"] and midi.exists():
      found[os.path.normpath(row["audio_filename"])] = midi, float(row["midi_offset"] or 0.0)
  return found


def midi_key(path: str | os.PathLike) -> str | None:
  """The key (`metrics.keys.KEYS`) of a MIDI file, from how often each pitch class is struck in it; None without
  notes or when the file cannot be read."""
  from music21 import midi

  from argmax_music.metrics import keys

  try:
    f = midi.MidiFile()
    f.open(str(path))
    f.read()
    f.close()
  except (OSError, midi.MidiException) as e:
    logging.warning("%s: no key (%s)", path, e)
    return None
  on = midi.ChannelVoiceMessages.NOTE_ON
  pitches = [e.pitch for track in f.tracks for e in track.events if e.type == on and e.velocity]
  return keys.key_of(np.bincount(np.asarray(pitches, int) % 12, minlength=12)) if pitches else None


def _read_json(path: Path, default):
  return json.loads(path.read_text()) if path.exists() else default


FLAGS = flags.FLAGS


def main(argv):
  del argv
  summary = render_corpus(FLAGS.out, FLAGS.pieces, FLAGS.workers)
  print(
    f"corpus in {FLAGS.out}: {summary['pieces']} pieces, {summary['hours']:.2f} hours, "
    f"{summary['skipped']} skipped (reasons in {FLAGS.out}/failed.json)"
  )


if __name__ == "__main__":
  flags.DEFINE_string("out", "data/piano", "Folder for the rendered corpus.")
  flags.DEFINE_integer("pieces", 40, "How many corpus entries to render (over 3,000 for all).")
  flags.DEFINE_integer("workers", os.cpu_count(), "Rendering processes.")
  from argmax_music import cli

  cli.run(main)
