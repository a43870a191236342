"""Musical evaluation through the tools: the evaluate CLI, the figures on listening pages, training's logged
figures; and one line naming the install where the evaluation dependencies are missing."""

from pathlib import Path

import numpy as np
import pytest
from conftest import needs_eval

from argmax_music import metrics


@pytest.mark.slow
@needs_eval
def test_evaluate_cli_scores_a_tiny_stack_and_writes_json(tiny_stack, tmp_path):
  import json
  import subprocess
  import sys

  out = tmp_path / "metrics.json"
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "argmax_music.evaluate",
      f"--workdir={tiny_stack}",
      "--clips=2",
      "--seconds=0.25",
      "--generate=1",
      f"--out={out}",
    ],
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  figures = json.loads(out.read_text())
  reconstruction = figures["reconstruction"]
  assert len(reconstruction["clips"]) == 2
  assert reconstruction["summary"]["vs"] == "transcription of the original"  # the tones have no MIDI
  for key in ("onset_f1", "offset_f1", "stft_distance", "log_mel_distance_db", "chroma_cosine"):
    assert np.isfinite(reconstruction["summary"][key]), key
  generated = figures["generated"]["summary"]
  assert generated["training_notes_from"].startswith("transcriptions of")
  assert generated["noise_flatness_db"] > generated["training_flatness_db"]
  assert 0 < figures["transcriber_s_per_audio_s"] < 5
  assert "reconstruction (notes scored against: transcription of the original)" in result.stdout


def test_evaluate_cli_without_the_dependencies_stops_with_one_line(tmp_path):
  import subprocess
  import sys

  hide = (
    "import runpy, sys; sys.modules['mir_eval'] = None; "  # as if mir_eval were not installed
    f"sys.argv = ['evaluate', '--workdir={tmp_path}']; "
    "runpy.run_module('argmax_music.evaluate', run_name='__main__')"
  )
  result = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=300)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
    f"error: musical evaluation needs mir_eval: run `{metrics.INSTALL}` (or `make venv`)"
  ]


def write_scored_input(folder: Path) -> Path:
  """A one-second C4 tone in a corpus-style folder whose CSV names its MIDI (one C4 note from 0 to 1 s)."""
  import pretty_midi
  from conftest import write_tone

  write_tone(folder / "audio" / "c4.wav", 1.0, 261.6)
  midi = pretty_midi.PrettyMIDI()
  piano = pretty_midi.Instrument(program=0)
  piano.notes.append(pretty_midi.Note(velocity=90, pitch=60, start=0.0, end=1.0))
  midi.instruments.append(piano)
  (folder / "midi").mkdir()
  midi.write(str(folder / "midi" / "c4.mid"))
  (folder / "metadata.csv").write_text(
    "split,audio_filename,midi_filename,midi_offset\nvalidation,audio/c4.wav,midi/c4.mid,0\n"
  )
  return folder / "audio" / "c4.wav"


@pytest.mark.slow
@needs_eval
def test_evaluate_reconstruct_page_shows_note_and_spectral_figures_against_the_score(tiny_stack, tmp_path):
  import json

  from argmax_music import listening_page, sample, stack

  source = write_scored_input(tmp_path / "corpus")
  levels, _ = stack.open_stack(tiny_stack, with_prior=False)
  out = tmp_path / "reconstruct"
  sample.sample("reconstruct", levels, None, out, seconds=0.5, input_file=str(source), figures=True)
  [clip] = json.loads((out / listening_page.PAGE_DATA).read_text())["clips"]
  assert clip["figures"]["vs"] == "score" and clip["figures"]["reference_notes"] == 1  # the MIDI's one C4
  for key in ("onset_f1", "log_mel_distance_db", "chroma_cosine", "flatness_db"):
    assert np.isfinite(clip["figures"][key]), key
  text = (out / "index.html").read_text()
  assert "onset F1" in text and "log mel distance" in text and "chroma cosine" in text


@pytest.mark.slow
def test_evaluate_sample_page_without_the_dependencies_warns_once_and_adds_nothing(tiny_stack, tmp_path, monkeypatch):
  import json

  from absl import logging

  from argmax_music import listening_page, sample, stack

  levels, prior = stack.open_stack(tiny_stack)
  sample.sample("generate", levels, prior, tmp_path / "page", seconds=0.02)
  monkeypatch.setattr(metrics, "missing_dependencies", lambda: ["basic_pitch"])
  warnings = []
  monkeypatch.setattr(logging, "warning", lambda message, *args: warnings.append(message % args))
  waveform = np.zeros((1, 320), np.int32) + 128
  sample.add_page_figures(tmp_path / "page", waveform, 16000, training_dir=str(tiny_stack))
  assert len(warnings) == 1 and metrics.INSTALL in warnings[0]
  assert json.loads((tmp_path / "page" / listening_page.PAGE_DATA).read_text())["clips"][0]["figures"] == {}


@pytest.mark.slow
@needs_eval
def test_evaluate_training_logs_musical_figures_only_when_asked(tiny_data, tmp_path):
  from conftest import tiny_config

  from argmax_music import train, writer

  config = tiny_config(tiny_data)
  assert config.eval.music_every == 0  # Off unless asked.
  config.data.crop = 8000  # The clip is at most one eval crop.
  config.eval.audio_seconds = 0.5
  config.eval.music_every = 4
  train.train(config, tmp_path / "run")
  [music] = writer.read_metrics(tmp_path / "run", "music").values()
  for key in ("onset_f1", "log_mel_distance_db", "chroma_cosine", "flatness_db"):
    assert np.isfinite(music[key]), key
