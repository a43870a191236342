"""The shipped piano model (pretrained/piano): it loads through the checkpoint path, reconstructs a validation piece
of the corpus against its score, and generates."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from argmax_music import audio, evaluate, metrics, pretrained, stack
from argmax_music.data import clips, corpus
from argmax_music.metrics import note_f1, scores, transcription

# A validation piece of the shipped model's corpus (and of the demo's); the clip is its middle 4 s, the one
# `data.clips.pick_clips` gives `evaluate` from this piece.
PIECE, SECONDS = "bach__bwv104.6", 4.0


@pytest.fixture(scope="module")
def shipped():
  root = pretrained.locate("piano")
  return root, *stack.open_stack(root)


@pytest.mark.slow
def test_pretrained_piano_loads(shipped, tmp_path):
  if metrics.missing_dependencies():
    pytest.skip(f"evaluation dependencies missing: {metrics.missing_dependencies()}")
  root, levels, prior = shipped
  assert [s.workdir.name for s in levels] == ["level1", "level2"] and prior.task.is_level is False
  (tmp_path / "audio").mkdir()
  (tmp_path / "midi").mkdir()
  piece = next(p for p in corpus.corpus_pieces() if corpus.piece_name(p) == PIECE)
  _, seconds, offset, reason = corpus.render_piece((piece, tmp_path, None))
  assert reason is None
  corpus.write_metadata(tmp_path, {piece: (seconds, offset)})
  flac = tmp_path / "audio" / f"{PIECE}.flac"
  x = audio.mu_law_encode(audio.load_audio(flac, 16000)).astype(np.int32)
  length = int(SECONDS * 16000)
  start = (len(x) - length) // 2
  clip = x[start : start + length]
  source = f"audio/{PIECE}.flac"
  score = scores.clip_score(corpus.midi_for_audio(tmp_path), clips.Clip(source, start / 16000, clip), SECONDS)
  _, decoded = stack.Sampler(levels, temperatures=[0.0], quiet=True).reconstruct(clip[None], levels=1)
  notes = transcription.transcribe(audio.mu_law_decode(decoded[0]), 16000).notes
  f1 = note_f1.note_scores(score, notes)["onset_f1"]
  assert f1 >= 0.6, f1  # Through level 1; through both levels level 2 loses onsets (the card has the figure).
  sampler = pretrained.card_sampler(root, levels, prior, quiet=True)
  (piece,) = evaluate.generated(sampler, 1, 2.0)
  assert piece.shape == (32000,) and np.isfinite(piece).all() and np.sqrt(np.mean(piece**2)) > 1e-3


@pytest.mark.slow
def test_sample_pretrained_from_the_command_line(tmp_path):
  """`sample --pretrained=piano` finds the shipped model by name and samples it as its card did (temperatures,
  soft codes, guidance towards a key)."""
  out = tmp_path / "pieces"
  command = [sys.executable, "-m", "argmax_music.sample", "--pretrained=piano", "--mode=generate", "--seconds=0.5"]
  subprocess.run(command + ["--figures=false", f"--out={out}"], cwd=REPO, check=True, capture_output=True)
  settings = json.loads((out / "page.json").read_text())["settings"]
  assert (out / "sample_0.wav").exists() and "pretrained/piano/level2" in settings["levels"]
  root = pretrained.locate("piano")
  assert settings["temperatures (prior, levels top-down)"] == pretrained.temperatures(root, "generate")
  assert settings["soft_codes"] == pretrained.soft_codes(root)
  assert settings["guidance"] == (pretrained.guidance(root) if settings["keys"] != "-" else "-")
  guide, autoguidance = pretrained.autoguidance(root)
  assert (
    settings["autoguidance"].startswith(f"{autoguidance:g} from {guide}") if guide else settings["autoguidance"] == "-"
  )
  unguided = command + ["--autoguidance=0", f"--guide_prior={root / 'prior'}"]
  refused = subprocess.run(unguided, cwd=REPO, capture_output=True, text=True)
  assert refused.returncode != 0 and "--guide_prior=DIR and --autoguidance > 0 go together" in refused.stderr


@pytest.mark.parametrize("stage", ["level1", "level2", "prior", "guide"])
def test_shipped_weights_match_configs_piano(stage):
  """What `make pretrained` would train (configs/piano.py) is what ships: model, data crop and schedule, with every
  key newer than the shipped run read as `config.run_config` reads it when the run loads. (The level whose codes
  the upsampler kept, `model.codes_from`, is a path `make pretrained` gives.)"""
  from argmax_music import checkpoints, config

  shipped = config.flatten(
    config.run_config(checkpoints.read_run(pretrained.locate("piano") / stage)["config"]).to_dict()
  )
  wanted = config.flatten(config.load(f"configs/piano.py:{pretrained.TRAINED_BY[stage][-1]}").to_dict())
  keys = [k for k in wanted if k.startswith(("model.", "prior.", "stage", "data.crop", "train.steps", "train.batch"))]
  keys += ["data.across_files", "train.learning_rate", "train.warmup_steps", "train.schedule"]
  keys.remove("model.codes_from")
  assert {k: shipped[k] for k in keys} == {k: wanted[k] for k in keys}


def test_piano_evals_follow_a_steps_override():
  """A prior evaluates four times over its steps and a level at its end, also when `train.steps` is overridden;
  `train.eval_every` itself can still be set."""
  from argmax_music import config

  load = lambda stage, *overrides: config.load(f"configs/piano.py:{stage}", overrides).train
  assert load("prior").eval_every == 2500 and load("prior", "train.steps=6000").eval_every == 1500
  assert load("level1", "train.steps=300").eval_every == 300
  assert load("prior", "train.eval_every=7").to_dict() | {"eval_every": 2500} == load("prior").to_dict()


def test_training_record_keeps_each_stages_machine_and_time():
  """A stage's wall time adds up over the machines it ran on (stages.json); training.json names the one that spent
  most of it, so a stage retrained elsewhere is not credited to the first machine."""
  commands = {"corpus": ("argmax_music.data.corpus", "--out=x"), "encode1": ("argmax_music.encode", "--workdir=y")}
  seconds = {"corpus": {"AMD": 100.0, "Intel": 5.0}, "encode1": {"Intel": 60.25}}
  stages = pretrained.training_record(seconds, commands)["stages"]
  assert stages["corpus"] == {
    "command": "python -m argmax_music.data.corpus --out=x",
    "seconds": 105.0,
    "machine": "AMD",
  }
  assert stages["encode1"]["machine"] == "Intel" and stages["encode1"]["seconds"] == 60.2


def test_stage_seconds_reads_the_older_form(tmp_path):
  path = tmp_path / "stages.json"
  assert pretrained.stage_seconds(path) == {}
  path.write_text('{"corpus": 12.5, "level1": {"AMD": 3.0}}')
  assert pretrained.stage_seconds(path) == {"corpus": {"machine not recorded": 12.5}, "level1": {"AMD": 3.0}}


def test_soft_codes_condition_level1_on_the_expected_code_vector(shipped, monkeypatch):
  """Soft codes change only level 1's conditioning: a one-hot distribution conditions exactly as its code does
  (so a certain level 2 decodes as with sampled codes), and level 2's own distribution changes the audio, not the
  level-1 codes level 2 samples; level 2's distribution computed in windows is the whole pass's."""
  import jax

  _, (level1, _), _ = shipped
  k = level1.task.num_codes
  codes = np.random.default_rng(0).integers(0, k, (2, 12))
  hard = level1.task.condition(level1.params, level1.model_state, codes)
  expected = level1.task.expected_condition(level1.params, level1.model_state, jax.nn.one_hot(codes, k))
  np.testing.assert_allclose(np.asarray(expected), np.asarray(hard), atol=1e-5)

  levels = shipped[1]
  top = np.random.default_rng(1).integers(0, levels[1].task.num_codes, (1, 6))
  decode = lambda soft: stack.Sampler(levels, temperatures=[1.0, 0.0], quiet=True, soft_codes=soft).decode(top, 2)
  sampled_codes = decode(False)
  soft = decode(True)
  np.testing.assert_array_equal(soft[0], sampled_codes[0])
  # Level 2's probabilities in windows (each with its decoder's receptive field before it) are the whole pass's.
  decoder, params = levels[1].task.generator(levels[1].params)
  cond = levels[1].task.condition(levels[1].params, levels[1].model_state, top)
  whole = stack.predicted_probabilities(decoder, params, soft[0], cond)
  np.testing.assert_allclose(stack.predicted_probabilities(decoder, params, soft[0], cond, window=7), whole, atol=1e-6)
  assert not np.array_equal(soft[1], sampled_codes[1])
  monkeypatch.setattr(stack, "predicted_probabilities", lambda model, params, signal, cond: jax.nn.one_hot(signal, k))
  np.testing.assert_array_equal(decode(True)[1], sampled_codes[1])
