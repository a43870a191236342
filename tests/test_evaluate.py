"""Musical evaluation: the transcriber and note scores behave sensibly on rendered corpus audio.

Sanity checks on short clips: the corpus against its own MIDI scores well, while noise, silence,
a shifted copy and a transposed copy do not; spectral, chroma and flatness figures order
signals the way they should. The transcription tests need the evaluation dependencies
(`make test` installs them) and fluidsynth.
"""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_eval

from argmax_music import audio, evaluate, metrics
from argmax_music.data import corpus, dataset, prepare
from argmax_music.metrics import chroma, flatness, note_f1, pitch_stats, scores, spectral, transcription
from argmax_music.metrics import figures as musical

RATE = 16000
SECONDS = 6.0
ONSET_F1_FLOOR = 0.6  # measured 0.68 and 0.67 on the two clips below (basic-pitch vs the score)

needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth is not installed")


def noise(seconds=SECONDS, seed=0):
  return np.random.default_rng(seed).uniform(-0.5, 0.5, int(seconds * RATE)).astype(np.float32)


def tone(freq, seconds=1.0):
  t = np.arange(int(seconds * RATE)) / RATE
  return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def piano(tmp_path_factory):
  """4 rendered corpus pieces, the first two marked validation, prepared."""
  if shutil.which("fluidsynth") is None:
    pytest.skip("fluidsynth is not installed")
  root = tmp_path_factory.mktemp("piano")
  corpus.render_corpus(root / "corpus", pieces=4)
  with open(root / "corpus" / "metadata.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  for i, row in enumerate(rows):
    row["split"] = "validation" if i < 2 else "train"
  with open(root / "corpus" / "metadata.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  prepare.prepare(root / "corpus", root / "prepared", workers=1)
  return root


class ScoredClip:
  """A validation clip (source, start_s, waveform) and its score's notes."""

  def __init__(self, clip, midi_notes):
    self.__dict__.update(vars(clip), midi_notes=midi_notes)


@pytest.fixture(scope="module")
def clips(piano):
  picked = evaluate.validation_clips(piano / "prepared", 2, SECONDS)
  if metrics.missing_dependencies():
    return [ScoredClip(c, None) for c in picked]
  midi = scores.midi_index(dataset.PreparedDataset(piano / "prepared"))
  return [ScoredClip(c, scores.clip_score(midi, c, SECONDS)) for c in picked]


# ---------------------------------------------------------------------------------------------------------
# Numpy-only metrics (no optional dependencies).
# ---------------------------------------------------------------------------------------------------------


def test_evaluate_spectral_distances_are_zero_for_a_copy_and_grow_with_noise():
  x = tone(440.0) + 0.3 * tone(660.0)
  assert spectral.stft_distance(x, x) == pytest.approx(0.0, abs=1e-6)
  assert spectral.log_mel_distance(x, x, RATE) == pytest.approx(0.0, abs=1e-6)
  near, far = x + 0.01 * noise(1.0), x + 0.2 * noise(1.0)
  assert 0 < spectral.stft_distance(x, near) < spectral.stft_distance(x, far)
  assert 0 < spectral.log_mel_distance(x, near, RATE) < spectral.log_mel_distance(x, far, RATE)


def test_evaluate_onset_envelopes_follow_attacks_not_their_pitch():
  decay = lambda freq: tone(freq, 0.5) * np.exp(-8 * np.arange(RATE // 2) / RATE).astype(np.float32)
  notes = lambda freqs: np.concatenate([decay(f) for f in freqs])  # An attack every 0.5 s.
  x = notes([440, 330, 550, 440])
  assert spectral.onset_envelope_correlation(x, x, RATE) == pytest.approx(1.0)
  assert spectral.onset_envelope_correlation(x, notes([220, 660, 440, 330]), RATE) > 0.8  # Same attacks, other notes.
  late = np.concatenate([np.zeros(RATE // 4, np.float32), x[: -RATE // 4]])  # Attacks between the original's.
  assert spectral.onset_envelope_correlation(x, late, RATE) < 0.3
  assert abs(spectral.onset_envelope_correlation(x, 0.3 * noise(2.0), RATE)) < 0.3
  assert np.isnan(spectral.onset_envelope_correlation(x, np.zeros_like(x), RATE))


def test_evaluate_chroma_names_the_pitch_class_and_cosine_tells_keys_apart():
  assert np.argmax(chroma.chroma(tone(440.0), RATE).sum(axis=0)) == 9  # A
  assert np.argmax(chroma.chroma(tone(261.63), RATE).sum(axis=0)) == 0  # C
  c_major = tone(261.63) + tone(329.63) + tone(392.0)
  assert chroma.chroma_cosine(c_major, c_major, RATE) == pytest.approx(1.0)
  assert chroma.chroma_cosine(c_major, tone(277.18) + tone(349.23) + tone(415.3), RATE) < 0.2  # C# major
  assert np.isnan(chroma.chroma_cosine(np.zeros(RATE, np.float32), c_major, RATE))


def test_evaluate_flatness_puts_white_noise_near_minus_2_5_db_and_tones_far_below():
  assert flatness.spectral_flatness_db(noise(2.0)) == pytest.approx(-2.5, abs=0.3)
  assert flatness.spectral_flatness_db(tone(440.0)) < -30
  assert np.isnan(flatness.spectral_flatness_db(np.zeros(RATE, np.float32)))


def test_evaluate_pitch_statistics_of_known_notes():
  chord = np.array([[0.0, 1.0, 60], [0.0, 1.0, 64], [0.0, 1.0, 67], [2.0, 2.5, 72]])
  assert pitch_stats.notes_per_second(chord, 4.0) == 1.0
  assert pitch_stats.polyphony(chord, 4.0) == pytest.approx((100 * 3 + 50 * 1) / 150)
  np.testing.assert_allclose(pitch_stats.pitch_class_histogram(chord)[[0, 4, 7]], [0.5, 0.25, 0.25])
  np.testing.assert_allclose(pitch_stats.duration_histogram(chord), [0, 0, 0.25, 0.75, 0, 0])
  transposed = chord + [0, 0, 1]
  assert (
    pitch_stats.histogram_distance(
      pitch_stats.pitch_class_histogram(chord), pitch_stats.pitch_class_histogram(transposed)
    )
    == 1.0
  )
  assert (
    pitch_stats.histogram_distance(
      pitch_stats.pitch_class_histogram(chord), pitch_stats.pitch_class_histogram(np.zeros((0, 3)))
    )
    == 1.0
  )
  frames = np.zeros((10, 88))
  frames[:3, 40] = 0.9
  assert pitch_stats.pitched_fraction(frames, 0.3) == pytest.approx(0.3)


def test_evaluate_missing_dependencies_give_one_line_naming_the_install(monkeypatch):
  monkeypatch.setattr(metrics, "EVAL_MODULES", ("numpy", "no_such_module_for_eval"))
  with pytest.raises(metrics.MissingDependencies) as error:
    metrics.require()
  message = str(error.value)
  assert "\n" not in message and "no_such_module_for_eval" in message
  assert "requirements-eval.txt" in message and "--no-deps basic-pitch==0.4.0" in message


# ---------------------------------------------------------------------------------------------------------
# The corpus keeps what ties its audio to its score.
# ---------------------------------------------------------------------------------------------------------


@needs_fluidsynth
def test_evaluate_corpus_records_each_files_midi_and_trimmed_offset(piano):
  found = corpus.midi_for_audio(piano / "corpus")
  assert len(found) == 4
  source, (midi, offset) = sorted(found.items())[0]
  rendered = corpus.render_midi(midi)
  _, start = corpus.normalise_and_trim(rendered)
  assert offset == pytest.approx(start / RATE, abs=1e-6) and offset > 0
  flac = audio.load_audio(piano / "corpus" / source)
  peak = np.max(np.abs(rendered))
  np.testing.assert_allclose(flac[:1000], rendered[start : start + 1000] * corpus.PEAK / peak, atol=1e-4)


@needs_fluidsynth
def test_evaluate_corpus_rendered_before_offsets_were_kept_gets_them_without_rewriting_audio(piano, tmp_path):
  shutil.copytree(piano / "corpus", tmp_path / "old")
  with open(tmp_path / "old" / "metadata.csv", newline="") as f:
    rows = [{k: v for k, v in row.items() if k != "midi_offset"} for row in csv.DictReader(f)]
  with open(tmp_path / "old" / "metadata.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  flacs = sorted((tmp_path / "old" / "audio").glob("*.flac"))
  mtimes = [f.stat().st_mtime_ns for f in flacs]
  corpus.render_corpus(tmp_path / "old", pieces=4)
  assert corpus.midi_for_audio(tmp_path / "old") == {
    source: (tmp_path / "old" / midi.relative_to(piano / "corpus"), offset)
    for source, (midi, offset) in corpus.midi_for_audio(piano / "corpus").items()
  }
  assert [f.stat().st_mtime_ns for f in flacs] == mtimes


@needs_fluidsynth
def test_evaluate_validation_clips_carry_the_score_notes_inside_them(piano, clips):
  assert [Path(c.source).parent.name for c in clips] == ["audio", "audio"]
  for clip in clips:
    assert len(clip.waveform) == SECONDS * RATE and clip.start_s > 0  # a clip from the middle of the piece
    assert len(clip.midi_notes) > 10
    assert clip.midi_notes[:, 0].min() >= 0 and clip.midi_notes[:, 1].max() <= SECONDS


# ---------------------------------------------------------------------------------------------------------
# Transcription sanity.
# ---------------------------------------------------------------------------------------------------------


@needs_eval
@needs_fluidsynth
def test_evaluate_corpus_audio_scores_a_high_onset_f1_against_its_own_midi(clips):
  for clip in clips:
    figures = musical.clip_figures(audio.mu_law_decode(clip.waveform), RATE, midi_notes=clip.midi_notes)
    assert figures["vs"] == "score"
    assert figures["onset_f1"] >= ONSET_F1_FLOOR, figures
    assert figures["offset_f1"] <= figures["onset_f1"]
    assert 0.9 <= figures["pitched_fraction"] and figures["polyphony"] > 2  # four-part chorales
  assert transcription.speed() < 1.0  # seconds of compute per second of audio (about 0.05 on 2 cores)


@needs_eval
@needs_fluidsynth
def test_evaluate_noise_and_silence_give_few_notes_and_no_f1(clips):
  score = clips[0].midi_notes
  for signal in (noise(), np.zeros(int(SECONDS * RATE), np.float32)):
    figures = musical.clip_figures(signal, RATE, midi_notes=score)
    assert figures["estimated_notes"] <= 3 and figures["onset_f1"] <= 0.1, figures


@needs_eval
@needs_fluidsynth
def test_evaluate_a_copy_shifted_by_200_ms_scores_at_most_half(clips):
  clip = clips[0]
  x = audio.mu_law_decode(clip.waveform)
  aligned = musical.clip_figures(x, RATE, midi_notes=clip.midi_notes)["onset_f1"]
  shifted = np.concatenate([np.zeros(int(0.2 * RATE), np.float32), x])[: len(x)]
  assert musical.clip_figures(shifted, RATE, midi_notes=clip.midi_notes)["onset_f1"] <= aligned / 2


@needs_eval
@needs_fluidsynth
def test_evaluate_a_copy_transposed_by_a_semitone_scores_no_f1(piano, tmp_path):
  import pretty_midi

  source, (midi, offset) = sorted(corpus.midi_for_audio(piano / "corpus").items())[0]
  score = note_f1.midi_notes(midi, offset, SECONDS)
  up = pretty_midi.PrettyMIDI(str(midi))
  for instrument in up.instruments:
    for n in instrument.notes:
      n.pitch += 1
  up.write(str(tmp_path / "up.mid"))
  x, _ = corpus.normalise_and_trim(corpus.render_midi(tmp_path / "up.mid"))
  figures = musical.clip_figures(x[: int(SECONDS * RATE)], RATE, midi_notes=score)
  assert figures["estimated_notes"] > 10 and figures["onset_f1"] <= 0.1, figures


@needs_eval
@needs_fluidsynth
def test_evaluate_pitch_classes_of_training_halves_are_closer_than_to_noise(piano):
  notes = [note_f1.midi_notes(m) for m, _ in sorted(corpus.midi_for_audio(piano / "corpus").values())]
  first = pitch_stats.pitch_class_histogram(np.concatenate(notes[0::2]))
  second = pitch_stats.pitch_class_histogram(np.concatenate(notes[1::2]))
  heard_in_noise = pitch_stats.pitch_class_histogram(transcription.transcribe(noise(10.0), RATE).notes)
  assert pitch_stats.histogram_distance(first, second) <= pitch_stats.histogram_distance(first, heard_in_noise) / 2


@needs_eval
@needs_fluidsynth
def test_evaluate_reconstruction_figures_compare_with_the_original(clips):
  x = audio.mu_law_decode(clips[1].waveform)
  same = musical.clip_figures(x, RATE, reference=x)
  assert same["vs"] == "transcription of the original" and same["onset_f1"] == 1.0
  assert same["stft_distance"] == pytest.approx(0, abs=1e-6) and same["chroma_cosine"] == pytest.approx(1.0)
  noisy = musical.clip_figures(x + 0.3 * noise(), RATE, reference=x, midi_notes=clips[1].midi_notes)
  assert noisy["vs"] == "score" and noisy["stft_distance"] > 0.5 and noisy["chroma_cosine"] < same["chroma_cosine"]


@needs_eval
@needs_fluidsynth
def test_evaluate_generated_figures_place_music_and_noise_apart(piano, clips):
  reference = musical.training_reference(piano / "prepared", seconds=SECONDS)
  assert reference.notes_from == "MIDI of 2 training files"
  assert reference.flatness_db < -15 and reference.noise_flatness_db == pytest.approx(-2.5, abs=0.3)
  music = musical.generated_figures([audio.mu_law_decode(c.waveform) for c in clips], RATE, reference)
  hiss = musical.generated_figures([noise()], RATE, reference)
  assert len(music["clips"]) == 2 and music["summary"]["notes_per_s"] > 3 > hiss["summary"]["notes_per_s"]
  assert music["summary"]["pitch_class_distance"] < 0.3 < hiss["summary"]["pitch_class_distance"]
  assert music["summary"]["flatness_db"] < -15 < hiss["summary"]["flatness_db"]


@pytest.mark.slow
@needs_eval
@needs_fluidsynth
def test_training_eval_measures_what_the_codes_carry_about_the_score(piano, tiny_data, tmp_path):
  from conftest import tiny_config

  from argmax_music import train

  scored = train.train(tiny_config(piano / "prepared", steps=2, eval_every=2), tmp_path / "piano")
  assert 0.0 <= scored["eval"]["code_information_bits"] < 8.0
  unscored = train.train(tiny_config(tiny_data, steps=2, eval_every=2), tmp_path / "tones")  # No MIDI.
  assert "code_information_bits" not in unscored["eval"]


@needs_eval
@needs_fluidsynth
def test_training_reference_structure_of_20_second_clips(piano):
  reference = musical.training_reference(piano / "prepared", seconds=20.0)
  assert -1.0 <= reference.structure_different_pieces <= 1.0
  assert reference.structure_same_piece > 0.5  # A chorale begins and ends in its key.
  # The training chorales are in D minor and C minor: their notes counted from the tonic, the fifth and the minor
  # third heard far more than the major third.
  assert list(reference.scale_degrees) == ["minor"] and reference.scale_degrees["minor"].sum() == pytest.approx(1.0)
  assert min(reference.scale_degrees["minor"][[0, 3, 7]]) > 5 * reference.scale_degrees["minor"][4]
  assert np.isnan(musical.training_reference(piano / "prepared", seconds=SECONDS).structure_same_piece)


@needs_eval
@needs_fluidsynth
def test_a_prompt_is_continued_in_its_scores_key_else_in_its_notes_key(piano, tmp_path):
  from argmax_music import sample

  chorale = piano / "corpus" / "audio" / "bach__bwv1.6.flac"  # In F major.
  prompt = audio.load_audio(chorale, 16000)[: 10 * 16000]
  assert sample.prompt_key(str(chorale), prompt, 16000) == ["F major"]  # Its score's.
  shutil.copy(chorale, tmp_path / "prompt.flac")  # No score beside it: the key of its transcription.
  assert sample.prompt_key(str(tmp_path / "prompt.flac"), prompt, 16000) == ["F major"]
  assert sample.prompt_key(str(tmp_path / "prompt.flac"), np.zeros(16000, np.float32), 16000) is None  # No notes.
