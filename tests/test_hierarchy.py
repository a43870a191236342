"""Table (f): its floors, findings and reused rows from made-up results, and `experiments.hierarchy` end to end
(its JSON and the model card from two tiny trained stacks)."""

import json
import math
import shutil
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
  assert len(h["real_clips"]["generated"]["clips"]) == 2
  table = results.read_text()
  assert table.index(hierarchy_table.SECTION) < table.index("![a plot]")
  assert f"| {hierarchy_table.REAL_CLIPS} |" in table
  assert (two / "README.md").exists() and (two / "examples.png").exists()


def stack_result(notes: list[float], structure: list[float], flatness: float, pitch_classes: float) -> dict:
  clips = [{"notes_per_s": n, "flatness_db": flatness, "structure": s} for n, s in zip(notes, structure)]
  summary = {
    "notes_per_s": sum(notes) / len(notes),
    "flatness_db": flatness,
    "pitch_class_distance": pitch_classes,
    "training_notes_per_s": 8.0,
    "training_flatness_db": -24.0,
    "training_pitch_class_halves_distance": 0.1,
    "training_structure_same_piece": 0.8,
    "training_structure_different_pieces": 0.3,
    "training_notes_from": "MIDI of 20 training files",
  }
  return {
    "generated": {"clips": clips, "summary": summary},
    "structure_median": sorted(structure)[len(structure) // 2],
    "prior_receptive_field_s": 16.4,
    "training_minutes": 30.0,
    "training_steps": 4000,
    "prior_steps": 2500,
    "temperatures": [1.0, 0.0],
    "reconstruction_1_levels": {"onset_f1": 0.72},
  }


def test_table_f_floors_and_findings(tmp_path):
  """Table (f): each floor against the training clips' figures, the Welch sentence, and a splice that replaces
  the older table (f) in RESULTS.md rather than adding a second."""
  from argmax_music.experiments import hierarchy_table

  # Notes 5.0 >= half of 8; 3 dB from the training audio; pitch classes 0.15 <= 1.5 x 0.1; structure 0.7 >= 0.64.
  two = stack_result([4.0, 5.0, 6.0], [0.7, 0.66, 0.9], -21.0, 0.15) | {"prior_input_noise": 0.2}
  # Real level-2 codes decoded: notes 6.0 >= 4 and structure 0.8, but 6 dB off and pitch classes 0.2 > 0.15.
  real = stack_result([6.0, 6.0], [0.8, 0.8], -18.0, 0.2)
  two["real_codes"] = {k: real[k] for k in ("generated", "structure_median")}
  # Notes 1.0 < 4; 10 dB off; pitch classes 0.2 > 0.15; structure 0.2, below the different pieces' 0.3.
  one = stack_result([1.0, 1.5, 0.5], [0.2, 0.1, 0.3], -14.0, 0.2)
  assert all(hierarchy_table.floors(two).values())
  assert list(hierarchy_table.floors(one).values()) == [False, False, False, False]
  # Soft codes: the same pieces, each 0.5 notes/s more (paired: an exact difference) and 1 dB flatter.
  soft = stack_result([4.5, 5.5, 6.5], [0.7, 0.66, 0.9], -22.0, 0.15) | {"prior_input_noise": 0.2}
  soft["generated"]["clips"][0]["flatness_db"] = -22.5
  soft["real_codes"] = two["real_codes"]
  h = {"two_level": two, "one_level": one, "command": "c", "date": "d", "machine": "m", "seconds": 20.0}
  h |= {"seeds": [0], "pieces_per_stack": 3, "two_level_soft": soft}
  # The real clips' own audio: every floor but the flatness (5 dB off).
  clips = stack_result([7.0, 8.0], [0.8, 0.8], -19.0, 0.1)
  h["real_clips"] = {k: clips[k] for k in ("generated", "structure_median")}
  lines = hierarchy_table.table_f(h)
  text = "\n".join(lines)
  assert (
    "| two levels (hop 8 x 8) | 16.4 s | 0.2 | 2500 | 30 | 5.00 ± 1.00 | -21.0 ± 0.0 | 0.15 | 0.70 | - | 0.72 |" in text
  )
  assert "| two levels (hop 8 x 8), soft codes | 16.4 s | 0.2 | 2500 | 30 | 5.50 ± 1.00 | -22.2 ± 0.3 |" in text
  assert (
    "notes/s: two levels, soft codes minus two levels +0.50 (95% CI, the same pieces paired +0.50 to +0.50)" in text
  )
  assert "flatness (dB): two levels, soft codes minus two levels -1.17 (95% CI, the same pieces paired -1.88" in text
  soft["generated"]["clips"][1]["notes_per_s"] = math.nan  # A piece without the figure drops out of its pair.
  text = "\n".join(hierarchy_table.table_f(h))
  assert "notes/s: two levels, soft codes minus two levels +0.50 (95% CI, the same pieces paired +0.50 to" in text
  assert "| one level (hop 8) | 16.4 s | 0 | 2500 | 30 |" in text  # A run older than prior.input_noise had none.
  assert "Not the same budget" not in text
  assert "structure: two levels minus one level +0.55" in text and "a real difference" in text
  assert "flatness (dB): two levels, soft codes minus one level -8.17" in text  # Every figure against one level.
  assert "one level: 0 of 4 floors met" in text and "two levels: 4 of 4 floors met." in text
  real_row = (
    "| two levels from real level-2 codes (a perfect prior) | - | - | - | - | 6.00 ± 0.00 | -18.0 ± 0.0 | 0.20 | 0.80 |"
  )
  assert real_row in text
  assert "| the same real clips, their own audio | - | - | - | - | 7.50 ± 0.71 | -19.0 ± 0.0 | 0.10 | 0.80 |" in text
  assert "the same real clips, their own audio: 3 of 4 floors met; not met: flatness" in text
  assert "two levels from real level-2 codes (a perfect prior): 2 of 4 floors met; not met: flatness" in text
  two["training_steps"] = 9500  # A prior trained longer than the one-level stack's.
  assert (
    "Not the same budget: the two-level stack trained 9500 steps (in the stages it does not share), the one-level "
    "stack 4000 (its prior); the stack with more steps is favoured." in hierarchy_table.findings(h)
  )
  results = tmp_path / "RESULTS.md"
  results.write_text("# R\n\n## (a)\n\n| t |\n\n![plot](p.png)\n")
  hierarchy_table.splice(results, lines)
  hierarchy_table.splice(results, lines)
  spliced = results.read_text()
  assert spliced.count(hierarchy_table.SECTION) == 1 and spliced.index(hierarchy_table.SECTION) < spliced.index(
    "![plot]"
  )


def test_table_f_reuses_an_earlier_one_level_row_only_from_the_same_setup(tmp_path):
  """--one_level_from: the earlier run must match in seeds, pieces and seconds, and its level 1 must reconstruct
  as this one's does; the table says where the reused row comes from."""
  from argmax_music import stack
  from argmax_music.experiments import hierarchy, hierarchy_table

  two, one = stack_result([4.0], [0.7], -21.0, 0.15), stack_result([1.0], [0.2], -14.0, 0.2)
  setup = {"seconds": 20.0, "seeds": [0, 1], "pieces_per_stack": 8}
  path = tmp_path / "hierarchy.json"
  path.write_text(json.dumps(setup | {"two_level": two, "one_level": one, "command": "c", "date": "d"}))
  earlier = hierarchy.earlier_run(path, setup, "--one_level_from")
  assert hierarchy.same_levels(earlier, two, (1,))
  assert not hierarchy.same_levels(earlier, two | {"reconstruction_1_levels": {"onset_f1": 0.70}}, (1,))
  both = {"reconstruction_2_levels": {"onset_f1": 0.49}}
  assert not hierarchy.same_levels(
    {"two_level": two | both}, two | {"reconstruction_2_levels": {"onset_f1": 0.44}}, (1, 2)
  )
  assert hierarchy.same_levels(
    {"two_level": two | both}, two | {"reconstruction_2_levels": {"onset_f1": 0.491}}, (1, 2)
  )
  with pytest.raises(stack.StackError, match="--one_level_from=.*another seeds, pieces_per_stack than this run's"):
    hierarchy.earlier_run(path, setup | {"seeds": [0], "pieces_per_stack": 4}, "--one_level_from")
  h = setup | {"two_level": two, "one_level": one | {"from": "from X (c, d), not rerun"}}
  text = "\n".join(hierarchy_table.table_f(h | {"command": "c2", "date": "d2", "machine": "m"}))
  assert "The one-level row is from X (c, d), not rerun." in text


def test_table_f_other_priors():
  """--other_priors: a row per prior, the spread of their means for each input noise, and the noises' difference
  over priors' means (1.5, 0.5, 1.0 against 0.5, 0.3: +0.60, Welch's interval at 2.4 degrees of freedom)."""
  from argmax_music.experiments import hierarchy_table

  def prior(notes: float, seed: int, noise: float) -> dict:
    return stack_result([notes, notes], [0.2, 0.2], -19.0, 0.3) | {"prior_seed": seed, "prior_input_noise": noise}

  two = stack_result([1.0, 2.0], [0.1, 0.3], -19.0, 0.3) | {"prior_seed": 0, "prior_input_noise": 0.2}
  others = [prior(0.5, 1, 0.2), prior(1.0, 2, 0.2), prior(0.5, 0, 0.0), prior(0.3, 1, 0.0)]
  for r in others:
    del r["training_minutes"], r["reconstruction_1_levels"]
  one = stack_result([1.0], [0.2], -14.0, 0.2)
  two |= {"other_priors": others, "other_priors_from": "from X (c, d), not rerun"}
  h = {"two_level": two, "one_level": one, "command": "c", "date": "d", "machine": "m"}
  text = "\n".join(hierarchy_table.table_f(h | {"seconds": 20.0, "seeds": [0], "pieces_per_stack": 2}))
  assert "The other priors' rows are from X (c, d), not rerun." in text
  assert "| two levels (hop 8 x 8), prior seed 0 | 16.4 s | 0.2 | 2500 | 30 | 1.50 ± 0.71 |" in text
  assert (
    "| two levels, prior seed 2 | 16.4 s | 0.2 | 2500 | - | 1.00 ± 0.00 | -19.0 ± 0.0 | 0.30 | 0.20 | - | (as above) |"
    in text
  )
  assert "| two levels, prior seed 0 | 16.4 s | 0 | 2500 | - | 0.50 ± 0.00 |" in text
  assert "prior input noise 0.2, over 3 priors of 2500 steps (seeds 0, 1, 2): notes/s 1.00 ± 0.50 (mean ± std" in text
  assert "prior input noise 0, over 2 priors of 2500 steps (seeds 0, 1): notes/s 0.40 ± 0.14" in text
  assert "notes/s: prior input noise 0.2 minus prior input noise 0, over priors' means, +0.60 (95% CI -0.5" in text
  assert "no difference these priors can show" in text
  # A shipped prior trained longer than the others stays out of their spread.
  two["prior_steps"] = 8000
  said = hierarchy_table.findings(h | {"seconds": 20.0, "seeds": [0], "pieces_per_stack": 2})
  assert any("prior input noise 0.2, over 2 priors of 2500 steps (seeds 1, 2): notes/s 0.75 ± 0.35" in f for f in said)
  # Decoded with soft codes, the others sit beside the shipped prior's soft-code pieces (3.0), not its sampled ones.
  two["prior_steps"] = 2500
  for r in others:
    r["soft_codes"] = True
  soft = stack_result([3.0, 3.0], [0.1, 0.3], -19.0, 0.3) | {"prior_seed": 0, "prior_input_noise": 0.2}
  text = "\n".join(
    hierarchy_table.table_f(h | {"two_level_soft": soft, "seconds": 20.0, "seeds": [0]} | {"pieces_per_stack": 2})
  )
  assert "| two levels, prior seed 2, soft codes | 16.4 s | 0.2 | 2500 | - | 1.00 ± 0.00 |" in text
  assert "prior input noise 0.2, over 3 priors of 2500 steps (seeds 0, 1, 2): notes/s 1.50 ± 1.32 (mean ± std" in text
  # A key-conditioned prior is a recipe of its own, its key column its guidance and its pieces in their keys.
  soft |= {"guidance": 3.0}
  soft["generated"]["summary"] |= {"key_agreement": 0.5, "signature_agreement": 0.75}
  soft["generated"]["summary"] |= {"key_mix_distance": 0.05, "scale_degree_distance": 0.27}
  text = "\n".join(
    hierarchy_table.table_f(h | {"two_level_soft": soft, "seconds": 20.0, "seeds": [0]} | {"pieces_per_stack": 2})
  )
  assert "| two levels (hop 8 x 8), prior seed 0, soft codes | 16.4 s | 0.2 | 2500 | 30 | 3.00 ± 0.00 |" in text
  assert "| 0.30 | 0.30 | 3 / 0.50 (0.75) | 0.72 |" in text
  assert "Not the same prior" not in text
  assert (
    "two levels, soft codes: pitch-class distance 0.30; the keys asked for alone would give 0.05 (each piece's "
    "notes spread over its key as the training files spread theirs); counted from each piece's tonic, its notes "
    "are 0.27 from" in text
  )
  two["guidance"] = 3.0
  assert any(
    f.startswith("Not the same prior: the two-level prior is conditioned") for f in hierarchy_table.findings(h)
  )
  assert (
    "prior input noise 0.2, key-conditioned, guidance 3, over 1 priors of 2500 steps (seeds 0): notes/s 3.00" in text
  )
  assert "prior input noise 0.2, over 2 priors of 2500 steps (seeds 1, 2): notes/s 0.75 ± 0.35" in text
  # Autoguided away from a weaker prior: its key column and its recipe say so.
  soft |= {"autoguidance": 2.0, "guide_steps": 500}
  text = "\n".join(
    hierarchy_table.table_f(h | {"two_level_soft": soft, "seconds": 20.0, "seeds": [0]} | {"pieces_per_stack": 2})
  )
  assert "| 0.30 | 0.30 | 3 + autoguidance 2 / 0.50 (0.75) | 0.72 |" in text
  assert "key-conditioned, guidance 3, autoguidance 2 from a 500-step prior, over 1 priors of 2500 steps" in text
  assert "Autoguidance:" not in text  # The shipped row's recipe says whether the stacks were autoguided.
  two |= {"autoguidance": 2.0, "guide_steps": 500}
  text = "\n".join(
    hierarchy_table.table_f(h | {"two_level_soft": soft, "seconds": 20.0, "seeds": [0]} | {"pieces_per_stack": 2})
  )
  assert "Autoguidance: each stack's prior moves away from its guide, its own recipe stopped at 500 steps" in text


def test_table_f_one_level_other_priors():
  """--one_level_other_priors: a row per one-level prior, their spread, and each figure's difference between the
  stacks over priors (notes/s: two levels' means 2.0 and 4.0 against 1.0 and 2.0, +1.50;
  structure: medians 0.3 and 0.4 against 0.5 and 0.4, -0.10)."""
  from argmax_music.experiments import hierarchy_table

  def prior(notes: float, flatness: float, seed: int, noise: float) -> dict:
    r = stack_result([notes, notes], [0.2, 0.4], flatness, 0.3) | {"prior_seed": seed, "prior_input_noise": noise}
    del r["training_minutes"], r["reconstruction_1_levels"]
    return r

  two = stack_result([1.0, 3.0], [0.1, 0.3], -19.0, 0.3) | {"prior_seed": 0, "prior_input_noise": 0.2}
  two["other_priors"] = [prior(4.0, -21.0, 1, 0.2)]
  one = stack_result([1.0, 1.0], [0.5, 0.5], -14.0, 0.2) | {"prior_seed": 0, "prior_input_noise": 0.0}
  one["other_priors"] = [prior(2.0, -15.0, 1, 0.0)]
  h = {"two_level": two, "one_level": one, "command": "c", "date": "d", "machine": "m"}
  text = "\n".join(hierarchy_table.table_f(h | {"seconds": 20.0, "seeds": [0], "pieces_per_stack": 2}))
  assert "| one level (hop 8), prior seed 0 | 16.4 s | 0 | 2500 | 30 | 1.00 ± 0.00 |" in text
  assert "| one level, prior seed 1 | 16.4 s | 0 | 2500 | - | 2.00 ± 0.00 | -15.0 ± 0.0 | 0.30 | 0.40 |" in text
  assert "one level, prior input noise 0, over 2 priors of 2500 steps (seeds 0, 1): notes/s 1.50 ± 0.71" in text
  assert "structure medians 0.50, 0.40, pitch-class distances 0.20, 0.30, floors met" in text
  assert "notes/s: two levels minus one level over their 2 and 2 priors (a value each), +1.50 (95% CI" in text
  assert "flatness (dB): two levels minus one level over their 2 and 2 priors (a value each), -5.50 (95% CI" in text
  assert "structure: two levels minus one level over their 2 and 2 priors (a value each), -0.10 (95% CI" in text
  # One prior per stack: no spread, no comparison over priors.
  del one["other_priors"]
  assert "over their 2 and 2 priors" not in "\n".join(hierarchy_table.findings(h))


@pytest.mark.slow
def test_other_priors_must_share_the_levels_config_and_steps(tiny_stack, tmp_path):
  """An --other_priors stack must link the shipped levels and hold a prior trained as the shipped one, as far, but
  for its seed and input noise; otherwise it is refused, naming what differs."""
  from argmax_music import stack
  from argmax_music.experiments import hierarchy

  other = tmp_path / "seed1"
  other.mkdir()
  (other / "level1").symlink_to(tiny_stack / "level1")
  shutil.copytree(tiny_stack / "prior", other / "prior")
  run_file = other / "prior" / "run.json"
  run = json.loads(run_file.read_text())
  config = run["config"] | {"seed": 1, "prior": run["config"]["prior"] | {"input_noise": 0.5}}
  run_file.write_text(json.dumps(run | {"config": config}))
  hierarchy.check_other_prior(other, tiny_stack)
  shutil.rmtree(other / "prior" / "checkpoints" / "4")
  with pytest.raises(stack.StackError, match="its prior is at step 2, .* at 4"):
    hierarchy.check_other_prior(other, tiny_stack)
  run_file.write_text(json.dumps(run | {"config": config | {"train": config["train"] | {"learning_rate": 1.0}}}))
  with pytest.raises(stack.StackError, match=r"differs from .*'s in train.learning_rate$"):
    hierarchy.check_other_prior(other, tiny_stack)
  (other / "level1").unlink()
  (other / "level1").symlink_to(tiny_stack / "prior")
  with pytest.raises(stack.StackError, match=r"--one_level_other_priors=.*: needs .*'s levels there \(level1/ as"):
    hierarchy.check_other_prior(other, tiny_stack, "--one_level_other_priors")


def test_training_budget_counts_each_stacks_guide(tmp_path):
  """Each stack's budget is the steps and minutes of the stages it does not share: with autoguidance, its guide's
  too (two levels: level 2, its upsampler, the prior and its guide; one level: prior1 and its guide)."""
  import json

  from argmax_music.experiments import hierarchy

  stage = lambda steps, seconds: {"steps": steps, "seconds": seconds}
  stages = {"level2": stage(1500, 600), "encode2": {"seconds": 60}, "upsampler2": stage(2000, 900)}
  stages |= {"prior": stage(10000, 3000), "prior1": stage(13500, 4800)}
  (tmp_path / "training.json").write_text(json.dumps({"stages": stages}))
  unguided = hierarchy.training_budget(tmp_path)
  assert unguided["two_level"] == {"training_minutes": 76.0, "training_steps": 13500}
  assert unguided["one_level"] == {"training_minutes": 80.0, "training_steps": 13500}
  stages |= {"guide": stage(2500, 1020), "guide1": stage(2500, 1200)}
  (tmp_path / "training.json").write_text(json.dumps({"stages": stages}))
  guided = hierarchy.training_budget(tmp_path)
  assert guided["two_level"] == {"training_minutes": 93.0, "training_steps": 16000}
  assert guided["one_level"] == {"training_minutes": 100.0, "training_steps": 16000}
