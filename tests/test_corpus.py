import shutil

import numpy as np
import pytest
import soundfile as sf

from argmax_music.data import corpus, dataset, prepare

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth is not installed")


def test_render_two_pieces_is_piano_16k_mono_deterministic_and_cached(tmp_path):
  summary = corpus.render_corpus(tmp_path / "a", pieces=2)
  assert summary["pieces"] == 2 and summary["hours"] > 0
  files = sorted((tmp_path / "a" / "audio").glob("*.flac"))
  assert len(files) == 2
  for f in files:
    info = sf.info(f)
    assert info.samplerate == 16000 and info.channels == 1
    x, _ = sf.read(f)
    assert np.max(np.abs(x)) > 0.5  # gain-normalised, not silent
    assert np.abs(x[:160]).max() > 1e-3  # leading silence trimmed
  csv_text = (tmp_path / "a" / "metadata.csv").read_text()
  assert "split,audio_filename,duration" in csv_text
  mtimes = [f.stat().st_mtime_ns for f in files]
  corpus.render_corpus(tmp_path / "a", pieces=2)  # cached: nothing re-rendered
  assert [f.stat().st_mtime_ns for f in files] == mtimes
  corpus.render_corpus(tmp_path / "b", pieces=2)  # deterministic: a fresh render is identical
  for f in files:
    assert np.array_equal(sf.read(f)[0], sf.read(tmp_path / "b" / "audio" / f.name)[0])


def test_prepared_corpus_files_carry_their_scores_key(tmp_path):
  """BWV 1's closing chorale is in F major; prepare records each file's key from its MIDI, encode keeps it."""
  corpus.render_corpus(tmp_path / "c", pieces=2)
  manifest = prepare.prepare(tmp_path / "c", tmp_path / "p")
  entries = {e["source"]: e for split in dataset.SPLITS for e in manifest["splits"][split]}
  assert len(entries) == 2 and all(e["key"] for e in entries.values())
  assert entries["audio/bach__bwv1.6.flac"]["key"] == "F major"
