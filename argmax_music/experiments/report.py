"""RESULTS.md from the runs' numbers: tables (mean ± std over seeds), plots, audio and the findings
(experiments/findings.py) written from them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from argmax_music import files
from argmax_music.experiments import hierarchy_table
from argmax_music.experiments.findings import (
  AMAE_TABLE,
  COLLAPSE_ENTROPY_BITS,
  COLLAPSE_USAGE,
  DIVERSITY_TABLE,
  HOP_BASELINE,
  HOP_TABLE,
  QUANTIZER_TABLE,
  RECEPTIVE_FIELD_TABLE,
  Variant,
  findings,
  form_label,
  gain,
  gain_per_code_bit,
)


def row(cells) -> str:
  return "| " + " | ".join(str(c) for c in cells) + " |"


# What `make demo` installs: the report names a JAX pin its runs did not train with.
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
CODE_HEADER = [
  "seeds",
  "NLL (bits/timestep)",
  "usage",
  "entropy (bits/code)",
  "effective bit rate (bit/s)",
  "collapsed",
  "bits/code about the score",
  "onset F1",
]


def code_cells(v: Variant) -> list:
  cells = [v.seeds, v.spread("nll")]
  if not v.has_codes:
    return cells + ["-"] * (len(CODE_HEADER) - len(cells))
  collapsed = f"{len(v.collapsed_seeds)} of {v.seeds}" if v.collapsed_seeds else "no"
  measured = lambda key, spec: v.spread(key, spec) if key in v.values else "-"
  return cells + [
    v.spread("usage", ".0f", 100) + "%",
    v.spread("entropy", ".2f"),
    v.spread("bit_rate", ".0f"),
    collapsed,
    measured("information", ".3f"),
    measured("f1", ".2f"),
  ]


def table(header: list, rows: list[list]) -> list[str]:
  return [row(header), row(["---"] * len(header))] + [row(r) for r in rows] + [""]


def gain_cells(codes: Variant, baseline: Variant | None, sample_rate: float) -> list:
  if baseline is None or not codes.has_codes:
    return ["-", "-"]
  g = gain(codes, baseline)
  ci = f" ({g.low:+.3f} to {g.high:+.3f})" if g.known else ""
  share = "- (collapsed)" if codes.collapsed_seeds else format(gain_per_code_bit(codes, baseline, sample_rate), ".1%")
  return [f"{g.estimate:+.3f}{ci}", share]


def tables(v: dict[str, Variant], sample_rate: float) -> list[str]:
  lines = [
    "## (a) Diversity loss: form and weight x K (hop 20)",
    "",
    "'mean' is sum_k (K qbar_k - 1)^2 / K, 'sum' the same without / K (so 'sum' is 'mean' at K times the "
    "weight); the codes term is the same sum over the argmax codes' own frequencies.",
    "",
  ]
  lines += table(
    ["variant", "K", "diversity loss"] + CODE_HEADER,
    [[n, k, form_label(v[n])] + code_cells(v[n]) for k, names in DIVERSITY_TABLE.items() for n in names if n in v],
  )
  lines += [
    "## (b) Decoder receptive field at hop 20: how much the decoder leans on the codes",
    "",
    "Gain: the NLL of the unconditional WaveNet of the same receptive field minus the autoencoder's "
    "(95% CI in brackets). Gain per effective code bit: gain x 16000 / effective bit rate.",
    "",
  ]
  header = ["variant", "receptive field"] + CODE_HEADER + ["gain (bits/timestep)", "gain per effective code bit"]
  rows = []
  for codes, base in RECEPTIVE_FIELD_TABLE:
    for n, reference in ((base, None), (codes, base)):
      if n in v:
        rf = v[n].runs[0]["receptive_field"]
        rows.append(
          [n, f"{rf} ({rf / 16:.0f} ms)"]
          + code_cells(v[n])
          + gain_cells(v[n], v.get(reference) if reference else None, sample_rate)
        )
  lines += table(header, rows)
  field = v[HOP_BASELINE].runs[0]["receptive_field"] if HOP_BASELINE in v else "-"
  lines += [f"## (c) Hop 8 / 20 / 64 (decoder receptive field {field} samples)", ""]
  rows = [
    [n, v[n].runs[0]["hop"] or "-"] + code_cells(v[n]) + gain_cells(v[n], v.get(HOP_BASELINE), sample_rate)
    for n in (HOP_BASELINE, *HOP_TABLE)
    if n in v
  ]
  lines += table(["variant", "hop"] + CODE_HEADER + ["gain (bits/timestep)", "gain per effective code bit"], rows)
  k = next((v[n].runs[0]["num_codes"] for n in QUANTIZER_TABLE if n in v), "-")
  lines += [f"## (d) AMAE vs plain VQ-VAE vs VQ-VAE + EMA + restarts (hop 20, K={k})", ""]
  lines += table(
    ["variant", "quantizer"] + CODE_HEADER,
    [[n, form_label(v[n])] + code_cells(v[n]) for n in QUANTIZER_TABLE if n in v],
  )
  lines += [
    "## (e) What makes the AMAE work",
    "",
    "Each hypothesis of issue 27 as one switch at hop 8 (`configs/small_scale.py`), beside the VQ-VAE + EMA at "
    "the same hop and both at hop 20.",
    "",
  ]
  lines += table(
    ["variant", "quantizer"] + CODE_HEADER, [[n, form_label(v[n])] + code_cells(v[n]) for n in AMAE_TABLE if n in v]
  )
  return lines


def musical_table(figures: dict[str, dict]) -> list[str]:
  """Note F1 and spectral distances of each autoencoder's reconstruction, notes/s and flatness of each
  WaveNet's samples (seed 0, one clip: `argmax_music.metrics.figures`)."""
  recon = {n: f for n, f in figures.items() if "onset_f1" in f}
  lines = []
  if recon:
    against = sorted({f["vs"] for f in recon.values()})
    lines += [
      f"Notes transcribed with basic-pitch and scored (onset within 50 ms; offset too) against the "
      f"{' / '.join(against)}; log-mel distance and chroma cosine to the original clip.",
      "",
    ]
    lines += table(
      ["variant", "notes scored against", "onset F1", "offset F1", "log-mel distance (dB)", "chroma cosine"],
      [
        [
          n,
          f["vs"],
          f"{f['onset_f1']:.2f}",
          f"{f['offset_f1']:.2f}",
          f"{f['log_mel_distance_db']:.2f}",
          f"{f['chroma_cosine']:.3f}",
        ]
        for n, f in recon.items()
      ],
    )
  sampled = {n: f for n, f in figures.items() if "training_flatness_db" in f}
  if sampled:
    lines += table(
      ["samples of", "notes/s", "spectral flatness (dB)", "training audio's flatness (dB)", "white noise's (dB)"],
      [
        [
          n,
          f"{f['notes_per_s']:.2f}",
          f"{f['flatness_db']:.1f}",
          f"{f['training_flatness_db']:.1f}",
          f"{f['noise_flatness_db']:.1f}",
        ]
        for n, f in sampled.items()
      ],
    )
  return lines


def pinned(package: str, requirements: Path = REQUIREMENTS) -> str | None:
  """The version `requirements` pins `package` to (None where it pins none, or the file is absent)."""
  if not requirements.exists():
    return None
  for line in requirements.read_text().splitlines():
    name, _, version = line.partition("#")[0].partition("==")
    if name.strip().lower() == package and version.strip():
      return version.strip()
  return None


def jax_note(meta: dict) -> str:
  """A sentence for the header where the runs trained with another JAX than requirements.txt pins (else "")."""
  used, pin = meta.get("trained_with_jax", []), pinned("jax")
  if not used or pin is None or used == [pin]:
    return ""
  return (
    f" `requirements.txt` pins jax=={pin} (what `make demo` installs), not the JAX {' and '.join(used)} the runs "
    "trained with: a rerun under the pin may not reproduce these numbers exactly."
  )


def write_report(
  path: Path, out: Path, results: dict[str, list[dict]], audio_files: dict, meta: dict, figures: dict | None = None
) -> None:
  """RESULTS.md: how it was made, the tables, plots, audio (`audio_files`: {label: file relative to `out`}) with
  its musical `figures` (by variant, from `listening.musical_figures`), findings and each run's command."""
  rel = os.path.relpath(out, path.parent)
  v = {name: Variant(name, runs) for name, runs in results.items()}
  rate = meta["sample_rate"]
  lines = [
    "# Results: the paper's comparisons at small scale",
    "",
    f"Made by `{meta['command']}` on {meta['date']}, in {meta['minutes']:.1f} minutes on {meta['machine']}. "
    f"The runs trained on {' and on '.join(meta['trained_on'])} ({meta['train_minutes']:.1f} minutes of "
    "training summed over the runs, earlier invocations included; finished runs are kept, not retrained)."
    f"{jax_note(meta)} "
    f"Every variant trains {meta['steps']} steps (batch {meta['batch']} x {meta['crop']} timesteps) with "
    f"{meta['seeds']} seeds on the embedded piano corpus ({meta['train_hours']:.2f} h of training audio, "
    f"{meta['validation_hours']:.2f} h for validation: `{meta['data']}`). Config: `configs/small_scale.py`; "
    f"each run's numbers and curves are in `{rel}/runs/VARIANT/seedN/result.json`, the musical figures in "
    f"[{rel}/small_scale.json]({rel}/small_scale.json). Run the same command again to resume: the runs "
    f"recorded in `{rel}/runs` are kept, an interrupted one resumes from its checkpoint in `{meta['runs']}`.",
    "",
    "NLL: validation negative log-likelihood of the 8-bit mu-law audio, bits per timestep (8 is a uniform "
    "guess), mean ± standard deviation over seeds. Usage: the fraction of the K codes in the validation codes. "
    "Entropy: of their histogram, bits per code. Effective bit rate: entropy x codes per second (16000 / hop), "
    f"what the codes actually carry. Collapsed: entropy below {COLLAPSE_ENTROPY_BITS:g} bit/code or usage below "
    f"{COLLAPSE_USAGE:.0%}. Bits/code about the score: the information the codes of 4 validation clips share with "
    "the pitches sounding in their score, per code, less the same estimate against shuffled frames "
    "(`metrics/code_information.py`). Onset F1: each run's reconstructions of "
    f"{meta['scored_clips']} validation clips of {meta['scored_seconds']:g} s decoded at temperature 0 and "
    "transcribed, against the score (as `python -m argmax_music.evaluate --temperature=0` scores them). A difference "
    "is called real only when the Welch 95% confidence interval of the difference of the means excludes zero.",
    "",
  ]
  lines += tables(v, rate)
  if (out / "hierarchy.json").exists():  # Table (f), from `make pretrained` (experiments/hierarchy.py).
    lines += hierarchy_table.table_f(json.loads((out / "hierarchy.json").read_text()))
  lines += [
    f"![code usage and perplexity over training]({rel}/code_usage.png)",
    "",
    f"![validation and training NLL]({rel}/nll.png)",
    "",
    "## Listen",
    "",
    f"A {meta['clip_seconds']:.1f}-second validation clip, encoded and decoded (temperature 0) by seed 0 "
    "of each autoencoder, and two samples of the unconditional WaveNet:",
    "",
  ]
  lines += [f"- [{k}]({rel}/{f})" for k, f in audio_files.items()]
  lines += ["", f"![spectrograms of the clip and its reconstructions]({rel}/audio/reconstructions.png)", ""]
  if any(" sample " in k for k in audio_files):
    lines += [f"![spectrograms of the WaveNet's samples]({rel}/audio/samples.png)", ""]
  if figures:
    lines += ["### Musical figures of the clip and the samples", "", *musical_table(figures)]
  lines += ["## Findings", "", "Written by `argmax_music/experiments/findings.py` from the numbers above.", ""]
  lines += [f"- {f}" for f in findings(v, rate)]
  lines += [
    "",
    f"At this scale (under an hour of rendered piano, {meta['steps']} steps of {meta['batch']} crops per run, "
    "small models) the paper's numbers are not expected; the trends are what can be compared.",
    "",
    "## Commands of each run",
    "",
  ]
  lines += [
    f"- {n}, seed {r['seed']} ({r['train_seconds'] / 60:.1f} min): `{r['command']}`"
    for n, runs in results.items()
    for r in runs
  ]
  files.atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
