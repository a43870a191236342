import json

import numpy as np
import pytest
from conftest import write_tone

from argmax_music import files
from argmax_music.data import dataset, prepare


def make_messy_folder(root):
  write_tone(root / "good" / "a.wav", 2.0, 220)
  write_tone(root / "good" / "b.flac", 2.0, 330)
  write_tone(root / "stereo44k.wav", 2.0, 440, rate=44100, channels=2)
  write_tone(root / "short.wav", 0.2, 440)
  (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
  (root / "notes.txt").write_text("not audio, not an audio extension: ignored")
  (root / "maestro-v3.0.0.csv").write_text(
    "canonical_composer,split,audio_filename,duration\n"
    "x,validation,good/a.wav,2.0\nx,test,good/b.flac,2.0\nx,train,stereo44k.wav,2.0\n"
  )


def test_prepare_messy_folder_with_maestro_csv(tmp_path):
  make_messy_folder(tmp_path / "in")
  manifest = prepare.prepare(tmp_path / "in", tmp_path / "out", min_seconds=1.0)
  by_split = {s: [e["source"] for e in v] for s, v in manifest["splits"].items()}
  assert by_split == {"train": ["stereo44k.wav"], "validation": ["good/a.wav"], "test": ["good/b.flac"]}
  assert [s["source"] for s in manifest["skipped"]] == ["corrupt.wav"]
  assert "corrupt.wav" in manifest["skipped"][0]["reason"]
  assert [s["source"] for s in manifest["too_short"]] == ["short.wav"]
  data = dataset.PreparedDataset(tmp_path / "out")
  (stereo,) = data.arrays("train")
  assert stereo.dtype == np.uint8 and abs(len(stereo) - 32000) <= 2  # downmixed, resampled to 16 kHz
  assert isinstance(stereo, np.memmap)
  entry = manifest["splits"]["train"][0]
  assert entry["length"] == len(stereo) and len(entry["sha256"]) == 64
  assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == manifest


def test_hash_splits_without_csv_are_deterministic(tone_folder, tmp_path):
  a = prepare.prepare(tone_folder, tmp_path / "a", validation_fraction=0.3, test_fraction=0.2)
  b = prepare.prepare(tone_folder, tmp_path / "b", validation_fraction=0.3, test_fraction=0.2)
  assert a["splits"] == b["splits"]
  assert sum(len(v) for v in a["splits"].values()) == 12
  assert all(a["splits"][s] for s in dataset.SPLITS)


def test_empty_folder_is_an_error(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no audio files"):
    prepare.prepare(tmp_path / "empty", tmp_path / "out")


def test_interrupted_prepare_keeps_finished_files_and_resumes(tone_folder, tmp_path, monkeypatch):
  calls = []
  real_save = files.atomic_save_npy

  def failing_save(path, array):
    calls.append(path)
    if len(calls) == 4:
      raise KeyboardInterrupt  # The run dies while writing the fourth file.
    real_save(path, array)

  monkeypatch.setattr(files, "atomic_save_npy", failing_save)
  with pytest.raises(KeyboardInterrupt):
    prepare.prepare(tone_folder, tmp_path / "out")
  partial = dataset.PreparedDataset(tmp_path / "out").manifest
  kept = [e for v in partial["splits"].values() for e in v]
  assert len(kept) == 3
  mtimes = {e["array"]: (tmp_path / "out" / e["array"]).stat().st_mtime_ns for e in kept}
  assert not list((tmp_path / "out").rglob(".*.tmp"))  # no half-written array under a real name

  monkeypatch.setattr(files, "atomic_save_npy", real_save)
  full = prepare.prepare(tone_folder, tmp_path / "out")
  assert sum(len(v) for v in full["splits"].values()) == 12
  for name, mtime in mtimes.items():
    assert (tmp_path / "out" / name).stat().st_mtime_ns == mtime  # finished files were not redone
