"""The RESULTS.md writer: Welch intervals, collapse and the sentences it writes from made-up results."""

import json
import math
import shutil

import pytest
from conftest import REPO

from argmax_music.experiments import findings, report, stats


def run(name, seed, nll, usage=1.0, perplexity=50.0, hop=20, rf=1024, kind="argmax"):
  quantizer = {
    "kind": kind,
    "diversity_weight": 1.0 if kind == "argmax" else 0.0,
    "diversity_reduce": "mean",
    "code_diversity_weight": 0.0,
  }
  coded = hop is not None
  return {
    "variant": name,
    "seed": seed,
    "eval": {"nll_bits": nll, **({"usage": usage, "perplexity": perplexity} if coded else {})},
    "hop": hop,
    "num_codes": 64 if coded else None,
    "codes_per_second": 16000 / hop if coded else 0.0,
    "receptive_field": rf,
    "config": {"model": {"quantizer": quantizer}},
    "train_seconds": 60.0,
    "command": f"train {name}",
  }


def variant(name, nlls, **kw):
  return [run(name, seed, nll, **kw) for seed, nll in enumerate(nlls)]


def test_welch_interval_matches_hand_computation():
  # a = 1,2,3 and b = 4,5,6: difference -3, variances 1, se = sqrt(2/3), df = 4, t(0.975, 4) = 2.7764451.
  d = stats.difference([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
  half = 2.7764451 * math.sqrt(2 / 3)
  assert (d.estimate, d.low, d.high) == pytest.approx((-3.0, -3.0 - half, -3.0 + half), rel=1e-6)
  assert d.excludes_zero
  assert not stats.difference([1.0], [2.0, 3.0]).known  # One seed: no interval.
  assert not stats.difference([], [2.0, 3.0]).known  # No piece with a value (e.g. too short for a structure figure).
  assert not stats.difference([1.0, 1.1], [1.05, 1.0]).excludes_zero
  # Pairs: differences 1, 2, 3, mean 2, sd 1, t(2) 4.303 x 1 / sqrt(3) = 2.484.
  d = stats.paired_difference([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
  assert d.estimate == pytest.approx(2.0) and (d.low, d.high) == pytest.approx((2 - 2.4843, 2 + 2.4843), abs=1e-3)


def test_report_claims(tmp_path):
  results = {
    "wavenet": variant("wavenet", [5.11, 5.12, 5.13], hop=None),
    "amae_hop8": variant("amae_hop8", [4.74, 4.75, 4.76], hop=8, perplexity=32.0),
    "amae_hop20": variant("amae_hop20", [4.99, 5.03, 5.01]),
    # Collapsed (usage 5 of 64 codes, perplexity 1.014), with an NLL a little below the WaveNet's.
    "amae_hop64": variant("amae_hop64", [5.08, 5.085, 5.09], hop=64, usage=5 / 64, perplexity=1.014),
    "vqvae_hop20": variant("vqvae_hop20", [5.00, 5.04, 4.98], kind="vq"),
  }
  for seed, r in enumerate(results["amae_hop20"]):  # Still falling over its last 250 steps: by 0.10, 0.09, 0.08.
    r["curves"] = {"eval": {"500": {"nll_bits": 5.0}, "250": {"nll_bits": 5.2}, "750": {"nll_bits": 4.9 + seed / 100}}}
  results["amae_hop8"][0]["curves"] = {"eval": {"250": {"nll_bits": 4.9}, "500": {"nll_bits": 4.8}}}  # By 0.10.
  results["wavenet"][0]["curves"] = {"eval": {"250": {"nll_bits": 5.1}, "500": {"nll_bits": 5.11}}}  # Rose.
  v = {n: findings.Variant(n, r) for n, r in results.items()}
  lines = findings.findings(v, 16000)
  text = "\n".join(lines)
  assert (
    "**Training length.** Over the last 250 steps of training the validation NLL (mean over seeds) fell in 2 of 3 "
    "variants, by 0.090 to 0.100 bits/timestep; it did not fall in wavenet." in text
  )
  hop8_curve = results["amae_hop8"][0]["curves"]["eval"]
  hop8_curve["250"]["usage"], hop8_curve["500"]["usage"] = 0.9, 0.8  # Usage still falling: 10 points.
  assert findings.settling_finding({"amae_hop8": findings.Variant("amae_hop8", results["amae_hop8"])}) == [
    "**Codes still settling.** Code usage fell by more than 5% of the K codes over the second half of training in "
    "1 run: amae_hop8 seed 0 (90% at step 250, 80% at 500). Their final usage and entropy are not settled values."
  ]
  assert findings.settling_finding({"amae_hop20": v["amae_hop20"]}) == []  # No usage in its curves.
  assert findings.training_finding({"amae_hop20": v["amae_hop20"]})[0].endswith(
    "fell in 1 of 1 variants, by 0.090 bits/timestep: no model is converged, so the tables compare variants "
    "after the same short training."
  )

  # The collapsed run is named as such, and its NLL is not credited to its codes.
  collapsed = next(line for line in lines if line.startswith("**amae_hop64 collapsed**"))
  assert "in 3 of 3 seeds (seed 0: 0.02 bits/code at 8% usage; seed 1: 0.02 bits/code at 8% usage; seed 2:" in collapsed
  assert collapsed.endswith("so its NLL (5.085 ± 0.005) is not credited to its codes.")
  hop64 = next(line for line in lines if line.startswith("**Hop 64.**"))
  assert "+0.035 bits/timestep (95% CI" in hop64 and ": a real difference" in hop64
  assert hop64.endswith("amae_hop64 collapsed, so this gain is not credited to its codes.")

  # A difference inside the noise: Welch's interval includes zero, and the sentence says so.
  d = stats.difference([4.99, 5.03, 5.01], [5.00, 5.04, 4.98])
  assert d.low < 0 < d.high
  assert (
    f"NLL difference (amae_hop20 - vqvae_hop20) +0.003 bits/timestep (95% CI {d.low:+.3f} to "
    f"{d.high:+.3f}) includes zero: within the noise."
  ) in text

  # A clear one: the codes at hop 8 save 0.37 bits/timestep, and the share of their bits uses their entropy.
  g = stats.difference([5.11, 5.12, 5.13], [4.74, 4.75, 4.76])
  assert g.low > 0
  assert (
    f"Gain of the codes (wavenet - amae_hop8) +0.370 bits/timestep (95% CI {g.low:+.3f} to {g.high:+.3f}): "
    "a real difference; "
  ) in text
  share = 0.37 * 16000 / (math.log2(32.0) * 2000)  # entropy 5 bits x 2000 codes/s, not log2(K).
  assert f"; {share:.1%} of the bits the codes carry (gain per effective code bit)." in text
  assert (
    "**Where the codes help.** The gain over the unconditional WaveNet is real, with codes that did not "
    "collapse, at 2 of 3 hops (8, 20)." in text
  )

  # Every NLL of a model with codes stands beside its usage, entropy and bit rate.
  assert (
    "amae_hop8: NLL 4.750 ± 0.010 bits/timestep (usage 100 ± 0%, entropy 5.00 ± 0.00 bits/code, "
    "10000 ± 0 bit/s; 3 seeds)" in text
  )
  assert "wavenet: NLL 5.120 ± 0.010 bits/timestep (no codes; 3 seeds)" in text

  # The tables: the collapsed row says so; the gain column uses entropy.
  table = "\n".join(report.tables(v, 16000))
  assert (
    "| amae_hop64 | 64 | 3 | 5.085 ± 0.005 | 8 ± 0% | 0.02 ± 0.00 | 5 ± 0 | 3 of 3 | - | - | +0.035 (+0.014 to "
    "+0.056) | - (collapsed) |" in table
  )
  assert "| vqvae_hop20 | plain VQ-VAE (codebook loss) | 3 |" in table
  assert f"| {share:.1%} |" in table
  meta = {
    "command": "python -m argmax_music.experiments.small_scale",
    "date": "2026-01-01",
    "minutes": 1.0,
    "train_minutes": 1.0,
    "machine": "test",
    "trained_on": ["16 cores, 1 x gpu device (H200)"],
    "steps": 10,
    "batch": 4,
    "crop": 320,
    "seeds": 3,
    "train_hours": 0.1,
    "validation_hours": 0.01,
    "data": "d",
    "runs": "r",
    "clip_seconds": 0.5,
    "scored_clips": 3,
    "scored_seconds": 4.0,
    "sample_rate": 16000,
  }
  report.write_report(tmp_path / "RESULTS.md", tmp_path / "results", results, {}, meta)
  written = (tmp_path / "RESULTS.md").read_text()
  assert "on test. The runs trained on 16 cores, 1 x gpu device (H200) (1.0 minutes of training" in written
  assert "Onset F1: each run's reconstructions of 3 validation clips of 4 s decoded at temperature 0" in written
  assert "## (c) Hop 8 / 20 / 64 (decoder receptive field 1024 samples)" in written
  assert "## (d) AMAE vs plain VQ-VAE vs VQ-VAE + EMA + restarts (hop 20, K=64)" in written and collapsed in written


def test_collapse_flag_from_the_eval_wins_and_one_seed_makes_no_claim():
  healthy_numbers_flagged = [run("amae_hop20", 0, 5.0)]
  healthy_numbers_flagged[0]["eval"]["collapsed"] = True
  assert findings.Variant("amae_hop20", healthy_numbers_flagged).collapsed_seeds == [0]
  v = {
    "amae_hop20": findings.Variant("amae_hop20", [run("amae_hop20", 0, 5.0)]),
    "vqvae_hop20": findings.Variant("vqvae_hop20", [run("vqvae_hop20", 0, 5.2, kind="vq")]),
  }
  text = "\n".join(findings.findings(v, 16000))
  assert (
    "NLL difference (amae_hop20 - vqvae_hop20) -0.200 bits/timestep (fewer than 2 seeds: no interval, "
    "so no claim)." in text
  )
  assert "real difference" not in text


def test_musical_table_names_what_the_notes_are_scored_against():
  figures = {
    "amae_hop8": {
      "vs": "score",
      "onset_f1": 0.584,
      "offset_f1": 0.21,
      "log_mel_distance_db": 4.567,
      "chroma_cosine": 0.9123,
    },
    "vqvae_hop20": {
      "vs": "score",
      "onset_f1": 0.33,
      "offset_f1": 0.1,
      "log_mel_distance_db": 6.0,
      "chroma_cosine": 0.8,
    },
    "wavenet": {"notes_per_s": 0.667, "flatness_db": -12.34, "training_flatness_db": -25.0, "noise_flatness_db": -2.5},
  }
  text = "\n".join(report.musical_table(figures))
  assert "scored (onset within 50 ms; offset too) against the score;" in text
  assert "| amae_hop8 | score | 0.58 | 0.21 | 4.57 | 0.912 |" in text
  assert "| vqvae_hop20 | score | 0.33 | 0.10 | 6.00 | 0.800 |" in text
  assert "| wavenet | 0.67 | -12.3 | -25.0 | -2.5 |" in text
  assert report.musical_table({}) == []


def test_the_codes_term_is_compared_with_the_published_loss_and_collapses_are_counted_by_loss():
  results = {
    "amae_hop20_nodiv": variant("amae_hop20_nodiv", [5.10, 5.12, 5.14], usage=0.05, perplexity=4.0),
    "amae_hop20": variant("amae_hop20", [5.10, 5.11, 5.25]),
    "amae_hop20_codes": variant("amae_hop20_codes", [5.10, 5.11, 5.20]),
    "amae_k512": variant("amae_k512", [5.18, 5.18, 5.24], usage=0.03, perplexity=1.03),
  }
  for r in results["amae_hop20_nodiv"]:
    r["config"]["model"]["quantizer"]["diversity_weight"] = 0.0
  for r in results["amae_hop20_codes"]:
    r["config"]["model"]["quantizer"]["code_diversity_weight"] = 1.0
  results["amae_hop20"][2]["eval"]["collapsed"] = True  # One seed's eval flagged it.
  v = {n: findings.Variant(n, r) for n, r in results.items()}
  text = "\n".join(findings.diversity_findings(v))
  assert "**K=64, mean, weight 1 + codes term, weight 1 vs mean, weight 1.** amae_hop20_codes: NLL 5.137" in text
  assert "NLL difference (amae_hop20_codes - amae_hop20) -0.017 bits/timestep (95% CI" in text
  assert text.endswith(
    "**Collapse by diversity loss** (AMAE runs collapsed, every K, hop and receptive field): no diversity loss: "
    "3 of 3; mean, weight 1: 4 of 6; mean, weight 1 + codes term, weight 1: 0 of 3."
  )


def test_results_name_the_jax_their_runs_used_against_the_pin(tmp_path):
  meta = json.loads((REPO / "results" / "small_scale.json").read_text())["meta"]
  pin = report.pinned("jax")
  assert meta["trained_with_jax"] and pin, "results/small_scale.json and requirements.txt each name a JAX version"
  header = (REPO / "RESULTS.md").read_text().split("\n\n")[1]
  if meta["trained_with_jax"] == [pin]:
    assert "pins jax==" not in header
  else:  # RESULTS.md says the numbers came from another JAX than `make demo` installs.
    assert f"pins jax=={pin} (what `make demo` installs), not the JAX {meta['trained_with_jax'][0]}" in header
  requirements = tmp_path / "requirements.txt"
  requirements.write_text("# jax==0.1\njaxlib==0.9.0\njax == 0.9.0  # runtime\n")
  assert report.pinned("jax", requirements) == "0.9.0" and report.pinned("flax", requirements) is None


def test_table_e_sets_each_switch_beside_the_amae_and_the_vq_vae_with_the_bits_about_the_score():
  results = {
    "amae_hop8": variant("amae_hop8", [5.40, 5.42, 5.44], hop=8, perplexity=60.0),
    "amae_hop8_norm": variant("amae_hop8_norm", [5.30, 5.31, 5.32], hop=8, perplexity=60.0),
    "amae_hop8_blind": variant("amae_hop8_blind", [5.35, 5.36, 5.37], hop=8, perplexity=60.0),
    "amae_hop8_recipe": variant("amae_hop8_recipe", [5.33, 5.34, 5.35], hop=8, perplexity=60.0),
    "vqvae_ema_hop8": variant("vqvae_ema_hop8", [5.10, 5.12, 5.14], hop=8, kind="vq"),
    "vqvae_ema_hop8_noise": variant("vqvae_ema_hop8_noise", [5.20, 5.22, 5.24], hop=8, kind="vq"),
  }
  for runs, bits in ((results["amae_hop8"], 0.02), (results["amae_hop8_norm"], 0.03), (results["vqvae_ema_hop8"], 0.5)):
    for r in runs:
      r["eval"]["code_information_bits"] = bits
  for r in results["amae_hop8_norm"]:
    r["config"]["model"]["upsampler"] = {"normalize": True}
  for r in results["amae_hop8_blind"]:
    r["config"]["model"]["quantizer"]["normalizer"] = "softmax"
    r["config"]["model"]["decoder_blind_fraction"] = 0.25
  for r in results["amae_hop8_recipe"]:
    r["config"]["model"].update(decoder_input_noise=0.3, decoder_blind_fraction=0.25)
  for r in results["vqvae_ema_hop8"] + results["vqvae_ema_hop8_noise"]:
    r["config"]["model"]["quantizer"]["ema_decay"] = 0.99
  for r in results["vqvae_ema_hop8_noise"]:
    r["config"]["model"]["decoder_input_noise"] = 0.3
  for name, f1s in (("amae_hop8_recipe", (0.55, 0.50, 0.53)), ("vqvae_ema_hop8_noise", (0.65, 0.63, 0.61))):
    for r, f1 in zip(results[name], f1s):
      r["reconstruction"] = {"onset_f1": f1, "vs": "score"}
  v = {name: findings.Variant(name, runs) for name, runs in results.items()}
  text = "\n".join(report.tables(v, 16000.0))
  table_e = text[text.index("## (e)") :]
  assert "| amae_hop8_norm | mean, weight 1, normalised conditioning |" in table_e
  assert "| amae_hop8_blind | mean, weight 1, softmax normaliser, blind fraction 0.25 |" in table_e
  assert "| amae_hop8_recipe | mean, weight 1, input noise 0.3, blind fraction 0.25 |" in table_e
  assert "| vqvae_ema_hop8_noise | VQ-VAE, EMA codebook + restarts, input noise 0.3 |" in table_e
  [vq_row] = [line for line in table_e.splitlines() if line.startswith("| vqvae_ema_hop8 |")]
  assert vq_row.endswith("| 0.500 ± 0.000 | - |")  # The VQ-VAE's bits about the score; its runs not scored.
  assert "| 0.53 ± 0.03 |" in table_e and "| 0.63 ± 0.02 |" in table_e  # Onset F1 over each variant's runs.
  said = findings.amae_findings(v)
  assert [s.split(".**")[0] for s in said] == [
    "**amae_hop8_norm vs amae_hop8",
    "**amae_hop8_blind vs amae_hop8",
    "**amae_hop8_recipe vs amae_hop8",
    "**amae_hop8 vs vqvae_ema_hop8",
    "**amae_hop8_recipe vs vqvae_ema_hop8",
    "**amae_hop8_recipe vs vqvae_ema_hop8_noise",
  ]
  f1 = stats.difference([0.55, 0.50, 0.53], [0.65, 0.63, 0.61])
  assert f1.excludes_zero and said[-1].endswith(
    f"Reconstruction onset F1 0.53 ± 0.03 and 0.63 ± 0.02, difference -0.103 F1 (95% CI {f1.low:+.3f} to "
    f"{f1.high:+.3f}): a real difference."
  )
  assert "Reconstruction onset F1" not in said[3]  # amae_hop8 vs vqvae_ema_hop8: neither scored.


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
  with pytest.raises(stack.StackError, match="needs .*'s levels there"):
    hierarchy.check_other_prior(other, tiny_stack)
