"""`experiments.hierarchy` end to end: table (f), its JSON and the model card from two tiny trained stacks."""

import json
import subprocess
import sys

import pytest
from conftest import REPO, tiny_config, write_tone

from argmax_music import encode, train
from argmax_music.data import prepare
from argmax_music.experiments import hierarchy_table


@pytest.mark.slow
def test_table_f_from_two_stacks_end_to_end(tmp_path):
  """A two-level stack (level 1, a level 2 over its codes, a prior over level 2's) against a one-level one (the
  same level 1, a prior over its codes): every row judged, the table spliced into --results, the card written."""
  tones, prepared = tmp_path / "tones", tmp_path / "prepared"
  for i in range(4):  # Validation tails (30%) as long as the 4-s clips each stack reconstructs.
    write_tone(tones / f"tone{i}.wav", 14.0, 110.0 * 2 ** (i / 12))
  prepare.prepare(tones, prepared, validation_fraction=0.3, test_fraction=0.0)
  two, one = tmp_path / "two", tmp_path / "one"
  train.train(tiny_config(prepared), two / "level1")
  encode.encode_dataset(two / "level1", tmp_path / "codes1")
  train.train(tiny_config(tmp_path / "codes1", "prior"), one / "prior")
  (one / "level1").symlink_to(two / "level1")
  level2 = tiny_config(tmp_path / "codes1")
  level2.data.crop = 32
  level2.model.encoder.strides = (2, 2)
  train.train(level2, two / "level2")
  encode.encode_dataset(two / "level2", tmp_path / "codes2")
  train.train(tiny_config(tmp_path / "codes2", "prior"), two / "prior")
  stage = lambda seconds, steps=None: (
    {"command": "-", "seconds": seconds, "machine": "test"} | ({"steps": steps} if steps else {})
  )
  stages = {"level1": stage(6.0, 4), "level2": stage(6.0, 4), "encode2": stage(1.0), "prior": stage(6.0, 4)}
  stages["prior1"] = stage(9.0, 8)
  (two / "training.json").write_text(json.dumps({"date": "-", "command": "-", "stages": stages}))
  results = tmp_path / "RESULTS.md"
  results.write_text("# Results\n\n![a plot](plot.png)\n")
  command = [sys.executable, "-m", "argmax_music.experiments.hierarchy", f"--two_level={two}", f"--one_level={one}"]
  command += ["--pieces=2", "--seeds=0", "--seconds=1.0", "--soft_codes", f"--out={tmp_path / 'h.json'}"]
  command += [f"--results={results}", f"--card={two / 'README.md'}"]
  done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]

  h = json.loads((tmp_path / "h.json").read_text())
  for row in ("two_level", "two_level_soft", "one_level"):
    assert len(h[row]["generated"]["clips"]) == 2, row
    assert 0 <= h[row]["reconstruction_1_levels"]["onset_f1"] <= 1, row
  assert h["two_level"]["training_steps"] == 8 and h["one_level"]["training_steps"] == 8
  assert len(h["two_level"]["real_codes"]["generated"]["clips"]) == 2
  table = results.read_text()
  assert table.index(hierarchy_table.SECTION) < table.index("![a plot]")
  assert (two / "README.md").exists() and (two / "examples.png").exists()
