"""Sampling from a tiny trained stack: every mode's files and lengths, seeds, prompts, the page, stack checks."""

import html.parser
import shutil

import numpy as np
import pytest
import soundfile as sf
from conftest import write_tone

from argmax_music import audio, sample, stack, train
from configs import tiny


@pytest.fixture(scope="module")
def loaded(tiny_stack):
  return stack.open_stack(tiny_stack)


def test_find_stack_orders_the_levels_and_no_level_is_an_error(tmp_path):
  for name in ("level2", "prior", "level1", "level4"):
    (tmp_path / name).mkdir()
  levels, prior = stack.find_stack(tmp_path)
  assert [p.name for p in levels] == ["level1", "level2"] and prior == tmp_path / "prior"  # level4 has no level3
  with pytest.raises(stack.StackError, match="no levels"):
    stack.load_stack([], None)


def read(path):
  x, rate = sf.read(path, dtype="float32")
  assert rate == 16000
  return x


class Page(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.sources, self.tags = [], []

  def handle_starttag(self, tag, attrs):
    self.tags.append(tag)
    self.sources += [v for k, v in attrs if k in ("src", "href")]


def check_page(out):
  page = Page()
  page.feed((out / "index.html").read_text())
  assert "audio" in page.tags and "img" in page.tags
  for src in page.sources:
    assert (out / src).exists(), f"index.html links a missing {src}"
  if shutil.which("chromium"):
    import subprocess

    shot = out / "page.png"
    subprocess.run(
      [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        f"--screenshot={shot}",
        (out / "index.html").as_uri(),
      ],
      check=True,
      capture_output=True,
      timeout=60,
    )
    assert shot.stat().st_size > 0


@pytest.mark.slow
def test_generate_writes_promised_files_and_is_reproducible(loaded, tmp_path):
  levels, prior = loaded
  settings = sample.sample("generate", levels, prior, tmp_path / "a", seconds=0.05, num=2, seed=3)
  assert settings["num"] == 2 and settings["seconds"] == 0.05
  for i in range(2):
    assert len(read(tmp_path / "a" / f"sample_{i}.wav")) == 800
    assert (tmp_path / "a" / f"sample_{i}.png").stat().st_size > 0
  with np.load(tmp_path / "a" / "codes.npz") as codes:
    assert codes["level1"].shape == (2, 100)
  check_page(tmp_path / "a")
  # Same seed, another chunking of the loop: identical audio. Another seed: different audio.
  sample.sample("generate", levels, prior, tmp_path / "b", seconds=0.05, num=2, seed=3, chunk=37)
  np.testing.assert_array_equal(read(tmp_path / "a" / "sample_0.wav"), read(tmp_path / "b" / "sample_0.wav"))
  sample.sample("generate", levels, prior, tmp_path / "c", seconds=0.05, num=2, seed=4)
  assert not np.array_equal(read(tmp_path / "a" / "sample_0.wav"), read(tmp_path / "c" / "sample_0.wav"))


@pytest.mark.slow
def test_continue_keeps_the_prompt_exactly(loaded, tmp_path):
  levels, prior = loaded
  write_tone(tmp_path / "prompt.wav", 0.02, 330)
  sample.sample("continue", levels, prior, tmp_path / "out", seconds=0.03, num=2, prompt=str(tmp_path / "prompt.wav"))
  prompt = audio.mu_law_encode(audio.load_audio(tmp_path / "prompt.wav"))
  for i in range(2):
    x = read(tmp_path / "out" / f"sample_{i}.wav")
    assert len(x) == 320 + 480
    np.testing.assert_array_equal(audio.mu_law_encode(x[:320]), prompt)
  with np.load(tmp_path / "out" / "codes.npz") as codes:
    assert codes["level1"].shape == (2, 100)
    np.testing.assert_array_equal(codes["level1"][:, :40], np.repeat(codes["prompt_level1"][None], 2, 0))


@pytest.mark.slow
def test_reconstruct_and_upsample_lengths(loaded, tmp_path):
  levels, _ = loaded
  write_tone(tmp_path / "in.wav", 1.0, 220)
  sample.sample("reconstruct", levels, None, tmp_path / "rec", seconds=0.04, input_file=str(tmp_path / "in.wav"))
  assert len(read(tmp_path / "rec" / "sample_0.wav")) == 640
  with np.load(tmp_path / "rec" / "codes.npz") as codes:
    assert codes["level1"].shape == (1, 80)
  sample.sample("upsample", levels, None, tmp_path / "up", codes_file=str(tmp_path / "rec" / "codes.npz"))
  assert len(read(tmp_path / "up" / "sample_0.wav")) == 640


@pytest.mark.slow
def test_mismatched_or_missing_checkpoints_are_named(tiny_data, tiny_stack, tmp_path):
  other = tiny.get_config("ada")
  other.data.dir = str(tiny_data)
  other.train.steps = 1
  train.train(other, tmp_path / "other_level1")
  with pytest.raises(
    stack.StackError,
    match=r"trained on the codes of .*level1 \(run \w+\), but in this stack "
    r"it sits on the codes of .*other_level1 \(run \w+\)",
  ):
    stack.load_stack([tmp_path / "other_level1"], tiny_stack / "prior")
  # A stack moved elsewhere (copied from a bucket, say) still loads: stages are matched by run id.
  shutil.copytree(tiny_stack, tmp_path / "moved")
  levels, prior = stack.load_stack(*stack.find_stack(tmp_path / "moved"))
  assert prior.trained_on["run_id"] == levels[0].run["run_id"]
  with pytest.raises(stack.StackError, match="no trained stage here"):
    stack.load_stack([tmp_path / "missing"], None)
  with pytest.raises(stack.StackError, match="is a prior, not a level"):
    stack.load_stack([tiny_stack / "prior"], None)


@pytest.mark.slow
def test_one_reconstruction_path(tiny_data, tmp_path, monkeypatch):
  """Training's eval audio, `sample --mode=reconstruct` and `evaluate` reconstruct the same clip of the same
  checkpoint (its EMA parameters) into the same codes and, at temperature 0, the same audio."""
  from conftest import tiny_config

  from argmax_music import evaluate, writer
  from argmax_music.metrics import figures

  heard = {}
  monkeypatch.setattr(writer.MetricWriter, "audio_and_spectrogram", lambda self, step, o, r: heard.update(o=o, r=r))
  config = tiny_config(tiny_data, ema_decay=0.9)
  config.eval.audio_seconds = 0.05
  train.train(config, tmp_path / "level1")
  levels, _ = stack.open_stack(tmp_path, with_prior=False)
  original = audio.mu_law_encode(heard["o"])
  # sample: the clip as a WAV file, as a user would give it.
  audio.save_audio(tmp_path / "clip.wav", heard["o"])
  wav = str(tmp_path / "clip.wav")
  sample.sample("reconstruct", levels, None, tmp_path / "rec", seconds=0.05, input_file=wav, temperatures=[0.0])
  np.testing.assert_array_equal(
    audio.mu_law_encode(read(tmp_path / "rec" / "sample_0.wav")), audio.mu_law_encode(heard["r"])
  )
  with np.load(tmp_path / "rec" / "codes.npz") as codes:
    np.testing.assert_array_equal(codes["level1"][0], levels[0].encode(original))
  # evaluate: the same clip (the one clip picker), what it scores is what training played.
  scored = {}
  monkeypatch.setattr(figures, "reconstruction_figures", lambda clips, decoded, *a: scored.update(d=decoded) or {})
  monkeypatch.setattr(figures, "codes_figures", lambda *a: {})
  monkeypatch.setattr(evaluate.transcription, "speed", lambda: 0.0)
  evaluate.evaluate_stack(levels, None, clips=1, seconds=len(original) / 16000, generate=0)
  np.testing.assert_array_equal(scored["d"][0], audio.mu_law_encode(heard["r"]))


def test_key_conditioned_prior_records_its_keys_and_samples_in_the_key_asked_for(tiny_stack, tmp_path):
  """A prior conditioned on each file's key trains on {"codes", "keys"} crops, records how often each key is in its
  data, draws keys as often when none is asked for, and the key it is given changes what it samples."""
  import json

  from argmax_music.data import dataset

  codes = tmp_path / "codes"
  shutil.copytree(tiny_stack / "codes", codes)
  manifest = json.loads((codes / "manifest.json").read_text())
  config = tiny.get_config("prior")
  config.data.dir, config.prior.condition_on_key = str(codes), True
  with pytest.raises(dataset.DatasetError, match="train files have no key"):
    train.train(config, tmp_path / "refused")
  for split in dataset.SPLITS:
    for i, entry in enumerate(manifest["splits"][split]):
      entry["key"] = "A minor" if i % 3 else "Eb major"
  (codes / "manifest.json").write_text(json.dumps(manifest))
  train.train(config, tmp_path / "prior")
  prior = stack.Stage.load(tmp_path / "prior")
  lengths = [e["length"] for e in manifest["splits"]["train"]]
  shares = prior.run["key_shares"]
  assert list(shares) == ["A minor", "Eb major"]
  assert shares["Eb major"] == pytest.approx(sum(lengths[::3]) / sum(lengths), abs=1e-4)
  levels, _ = stack.open_stack(tiny_stack, with_prior=False)
  sampler = stack.Sampler(levels, prior, seed=0, quiet=True)
  drawn = sampler.prior_codes(64, 12)
  assert set(sampler.keys) == {"A minor", "Eb major"} and sampler.keys.count("A minor") > 32
  assert drawn.shape == (64, 12)
  in_a = stack.Sampler(levels, prior, seed=1, quiet=True).prior_codes(2, 12, keys=["A minor"])
  in_eb = stack.Sampler(levels, prior, seed=1, quiet=True).prior_codes(2, 12, keys=["Eb major"])
  np.testing.assert_array_equal(
    in_a, stack.Sampler(levels, prior, seed=1, quiet=True).prior_codes(2, 12, keys=["A minor"])
  )
  assert not np.array_equal(in_a, in_eb)
  with pytest.raises(ValueError, match="give 1 key or 2"):
    sampler.prior_codes(2, 12, keys=["A minor"] * 3)
  with pytest.raises(stack.StackError, match="not conditioned on a key"):
    stack.Sampler(*stack.open_stack(tiny_stack), quiet=True).prior_codes(1, 4, keys=["A minor"])
  # Autoguidance away from a weaker prior over the same codes: away from the prior itself it is guidance alone.
  config.train.steps = 2
  train.train(config, tmp_path / "weaker")
  weaker = stack.Stage.load(tmp_path / "weaker")

  def guided(**autoguidance):
    return stack.Sampler(levels, prior, seed=1, quiet=True, guidance=3.0, **autoguidance).prior_codes(
      2, 12, keys=["A minor"]
    )

  alone = guided()
  np.testing.assert_array_equal(guided(guide_prior=prior, autoguidance=2.0), alone)
  assert not np.array_equal(guided(guide_prior=weaker, autoguidance=20.0), alone)  # 4 steps against 2: close.
  with pytest.raises(stack.StackError, match="key-conditioned"):
    guided(guide_prior=stack.open_stack(tiny_stack)[1], autoguidance=2.0)
