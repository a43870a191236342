"""The RESULTS.md writer: Welch intervals, collapse and the sentences it writes from made-up results."""

import json
import math

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
