"""What the small-scale runs show: each variant's numbers over seeds and the sentences written from them.

A run's codes are judged by its eval histogram: usage (fraction of the K codes used),
entropy in bits per code, and the effective bit rate (entropy x codes per second). A run
is *collapsed* when its entropy is below COLLAPSE_ENTROPY_BITS or its usage below
COLLAPSE_USAGE (or when its eval says `collapsed`). A difference between two variants is
called real only when the Welch 95% confidence interval of the difference over seeds
excludes zero; every NLL is written beside its codes' usage, entropy and bit rate.
"""

from __future__ import annotations

import itertools
import math

from argmax_music.experiments import stats
from configs import base

_EVAL = base.get_config().eval  # The thresholds every run's eval judges collapse by.
COLLAPSE_ENTROPY_BITS, COLLAPSE_USAGE = _EVAL.collapse_entropy_bits, _EVAL.collapse_usage
# (a) diversity loss form x K: rows grouped by K; the variant without the loss is each group's reference.
DIVERSITY_TABLE = {
  64: ("amae_hop20_nodiv", "amae_hop20", "amae_hop20_sum", "amae_hop20_codes"),
  512: ("amae_k512_nodiv", "amae_k512", "amae_k512_sum", "amae_k512_codes"),
}
# (b) decoder receptive field: (autoencoder, unconditional WaveNet of the same receptive field).
RECEPTIVE_FIELD_TABLE = (("amae_rf256", "wavenet_rf256"), ("amae_hop20", "wavenet"), ("amae_rf4096", "wavenet_rf4096"))
# (c) hop, against the WaveNet of the decoder's receptive field; (d) quantizers at hop 20.
HOP_TABLE, HOP_BASELINE = ("amae_hop8", "amae_hop20", "amae_hop64"), "wavenet"
QUANTIZER_TABLE = ("amae_hop20", "vqvae_hop20", "vqvae_ema_hop20")
# (e) What makes the AMAE work: the reference, each hypothesis's switch, and the VQ-VAE + EMA, at hop 8 and hop 20.
AMAE_TABLE = (
  "amae_hop8",
  "amae_hop8_running",
  "amae_hop8_norm",
  "amae_hop8_floor",
  "amae_hop8_weak",
  "amae_hop8_softmax",
  "amae_hop8_blind",
  "amae_hop8_recipe",
  "vqvae_ema_hop8",
  "vqvae_ema_hop8_noise",
  "amae_hop20",
  "vqvae_ema_hop20",
)


class Variant:
  """The runs (one per seed) of one variant and their per-run numbers."""

  def __init__(self, name: str, runs: list[dict]):
    self.name, self.runs = name, runs
    self.has_codes = bool(runs[0].get("hop"))
    self.values: dict[str, list[float]] = {"nll": [r["eval"]["nll_bits"] for r in runs]}
    self.collapsed_seeds = []
    if self.has_codes:
      self.values.update(usage=[], entropy=[], bit_rate=[])
      if all("code_information_bits" in r["eval"] for r in runs):  # Runs whose data has a score.
        self.values["information"] = [r["eval"]["code_information_bits"] for r in runs]
      if all(r.get("reconstruction") for r in runs):  # Runs scored by the runner (small_scale.score_reconstructions).
        self.values["f1"] = [r["reconstruction"]["onset_f1"] for r in runs]
      for r in runs:
        e = r["eval"]
        entropy = e["entropy_bits"] if "entropy_bits" in e else math.log2(e["perplexity"])
        self.values["usage"].append(e["usage"])
        self.values["entropy"].append(entropy)
        self.values["bit_rate"].append(entropy * r["codes_per_second"])
        collapsed = (
          e["collapsed"] if "collapsed" in e else (entropy < COLLAPSE_ENTROPY_BITS or e["usage"] < COLLAPSE_USAGE)
        )
        if collapsed:
          self.collapsed_seeds.append(r["seed"])

  @property
  def seeds(self) -> int:
    return len(self.runs)

  def mean(self, key: str) -> float:
    return stats.mean_std(self.values[key])[0]

  def spread(self, key: str, spec: str = ".3f", scale: float = 1.0) -> str:
    """'mean ± std' (just the mean for one seed)."""
    mean, std = stats.mean_std([v * scale for v in self.values[key]])
    return format(mean, spec) if math.isnan(std) else f"{format(mean, spec)} ± {format(std, spec)}"

  def codes_phrase(self) -> str:
    if not self.has_codes:
      return "no codes"
    return (
      f"usage {self.spread('usage', '.0f', 100)}%, entropy {self.spread('entropy', '.2f')} bits/code, "
      f"{self.spread('bit_rate', '.0f')} bit/s"
    )

  def nll_phrase(self) -> str:
    """The NLL with the codes' usage, entropy and bit rate beside it, and the seed count."""
    collapsed = f", collapsed in {len(self.collapsed_seeds)} of {self.seeds} seeds" if self.collapsed_seeds else ""
    return (
      f"{self.name}: NLL {self.spread('nll')} bits/timestep ({self.codes_phrase()}{collapsed}; "
      f"{self.seeds} seed{'s' if self.seeds > 1 else ''})"
    )


def claim(what: str, interval: stats.Interval, unit: str) -> str:
  """'what +x unit (95% CI lo to hi): a real difference' or '... includes zero: within the noise'."""
  if not interval.known:
    return f"{what} {interval.estimate:+.3f} {unit} (fewer than 2 seeds: no interval, so no claim)"
  ci = f"(95% CI {interval.low:+.3f} to {interval.high:+.3f})"
  if interval.excludes_zero:
    return f"{what} {interval.estimate:+.3f} {unit} {ci}: a real difference"
  return f"{what} {interval.estimate:+.3f} {unit} {ci} includes zero: within the noise"


def collapse_finding(v: Variant) -> str:
  """The collapsed seeds, each with its own usage and entropy; their NLL is not credited to the codes."""
  collapsed = [i for i, r in enumerate(v.runs) if r["seed"] in v.collapsed_seeds]
  each = "; ".join(
    f"seed {v.runs[i]['seed']}: {v.values['entropy'][i]:.2f} bits/code at {v.values['usage'][i]:.0%} usage"
    for i in collapsed
  )
  return (
    f"**{v.name} collapsed** in {len(collapsed)} of {v.seeds} seeds ({each}; collapsed: below "
    f"{COLLAPSE_ENTROPY_BITS:g} bit/code or {COLLAPSE_USAGE:.0%} usage), so its NLL ({v.spread('nll')}) is not "
    "credited to its codes."
  )


def pair_finding(title: str, a: Variant, b: Variant) -> str:
  """Two variants: their NLLs (with code numbers) and the NLL, entropy and (where both runs were scored)
  reconstruction onset F1 differences, a - b."""
  parts = [
    f"**{title}.** {a.nll_phrase()}; {b.nll_phrase()}.",
    claim(f"NLL difference ({a.name} - {b.name})", stats.difference(a.values["nll"], b.values["nll"]), "bits/timestep")
    + ".",
  ]
  if a.has_codes and b.has_codes:
    parts.append(
      claim("Entropy difference", stats.difference(a.values["entropy"], b.values["entropy"]), "bits/code") + "."
    )
  if "f1" in a.values and "f1" in b.values:
    f1 = f"Reconstruction onset F1 {a.spread('f1', '.2f')} and {b.spread('f1', '.2f')}, difference"
    parts.append(claim(f1, stats.difference(a.values["f1"], b.values["f1"]), "F1") + ".")
  return " ".join(parts)


def gain(codes: Variant, baseline: Variant) -> stats.Interval:
  """NLL saved by the codes: baseline NLL - autoencoder NLL (bits/timestep)."""
  return stats.difference(baseline.values["nll"], codes.values["nll"])


def gain_per_code_bit(codes: Variant, baseline: Variant, sample_rate: float) -> float:
  """Bits per second the codes save (gain x sample rate) over the bits per second they carry (entropy)."""
  rate = codes.mean("bit_rate")
  return gain(codes, baseline).estimate * sample_rate / rate if rate > 0 else math.nan


def gain_finding(title: str, codes: Variant, baseline: Variant, sample_rate: float) -> str:
  g = gain(codes, baseline)
  text = f"**{title}.** {codes.nll_phrase()}; {baseline.nll_phrase()}. " + claim(
    f"Gain of the codes ({baseline.name} - {codes.name})", g, "bits/timestep"
  )
  if codes.collapsed_seeds:
    return text + f"; {codes.name} collapsed, so this gain is not credited to its codes."
  share = gain_per_code_bit(codes, baseline, sample_rate)
  return text + f"; {share:.1%} of the bits the codes carry (gain per effective code bit)."


def diversity_findings(v: dict[str, Variant]) -> list[str]:
  lines = []
  for k, names in DIVERSITY_TABLE.items():
    present = [v[n] for n in names if n in v]
    if len(present) < 2:
      continue
    reference = present[0]
    lines += [pair_finding(f"K={k}, {form_label(x)} vs {form_label(reference)}", x, reference) for x in present[1:]]
    # Against the published 'mean' form: the other published form, and the codes term added to it.
    if names[1] in v:
      mean = v[names[1]]
      lines += [
        pair_finding(f"K={k}, {form_label(v[n])} vs {form_label(mean)}", v[n], mean) for n in names[2:] if n in v
      ]
  return lines + collapse_by_loss_finding(v)


def collapse_by_loss_finding(v: dict[str, Variant]) -> list[str]:
  """How many AMAE runs collapsed under each form of the diversity loss, over every K, hop and receptive field."""
  runs, collapsed = {}, {}
  for x in v.values():
    if x.has_codes and x.runs[0]["config"]["model"]["quantizer"]["kind"] == "argmax":
      form = form_label(x)
      runs[form] = runs.get(form, 0) + x.seeds
      collapsed[form] = collapsed.get(form, 0) + len(x.collapsed_seeds)
  if len(runs) < 2:
    return []
  counts = "; ".join(f"{form}: {collapsed[form]} of {runs[form]}" for form in runs)
  return [f"**Collapse by diversity loss** (AMAE runs collapsed, every K, hop and receptive field): {counts}."]


def receptive_field_findings(v: dict[str, Variant], sample_rate: float) -> list[str]:
  pairs = [(v[a], v[b]) for a, b in RECEPTIVE_FIELD_TABLE if a in v and b in v]
  lines = [gain_finding(f"Receptive field {c.runs[0]['receptive_field']} samples", c, w, sample_rate) for c, w in pairs]
  if len(pairs) >= 2:
    (small, small_base), (large, large_base) = pairs[0], pairs[-1]
    trend = stats.contrast(
      [large_base.values["nll"], large.values["nll"], small_base.values["nll"], small.values["nll"]], [1, -1, -1, 1]
    )
    lines.append(
      "**Receptive field and the codes.** "
      + claim(
        f"The codes' gain at {large.runs[0]['receptive_field']} samples minus their gain at "
        f"{small.runs[0]['receptive_field']} samples:",
        trend,
        "bits/timestep",
      )
      + ". The paper's trade-off predicts a negative value: a decoder that sees more of its own past leans "
      "less on the codes."
    )
  return lines


def hop_findings(v: dict[str, Variant], sample_rate: float) -> list[str]:
  hops = [v[n] for n in HOP_TABLE if n in v]
  lines = []
  if HOP_BASELINE in v:
    lines += [gain_finding(f"Hop {h.runs[0]['hop']}", h, v[HOP_BASELINE], sample_rate) for h in hops]
    helped = [
      h
      for h in hops
      if not h.collapsed_seeds and gain(h, v[HOP_BASELINE]).excludes_zero and gain(h, v[HOP_BASELINE]).estimate > 0
    ]
    lines.append(
      f"**Where the codes help.** The gain over the unconditional WaveNet is real, with codes that did "
      f"not collapse, at {len(helped)} of {len(hops)} hops"
      + (f" ({', '.join(str(h.runs[0]['hop']) for h in helped)})." if helped else ".")
    )
  for a, b in itertools.pairwise(hops):
    lines.append(
      claim(
        f"**Hop {b.runs[0]['hop']} vs hop {a.runs[0]['hop']}.** NLL difference",
        stats.difference(b.values["nll"], a.values["nll"]),
        "bits/timestep",
      )
      + "."
    )
  return lines


def quantizer_findings(v: dict[str, Variant]) -> list[str]:
  names = [n for n in QUANTIZER_TABLE if n in v]
  return [pair_finding(f"{a} vs {b}", v[a], v[b]) for i, a in enumerate(names) for b in names[i + 1 :]]


def amae_findings(v: dict[str, Variant]) -> list[str]:
  """Each switch of table (e) against the AMAE at the same hop, and the AMAE and its recipe against the VQ-VAE + EMA."""
  switches = AMAE_TABLE[1 : AMAE_TABLE.index("vqvae_ema_hop8")]
  pairs = [(n, "amae_hop8") for n in switches] + [(n, "vqvae_ema_hop8") for n in ("amae_hop8", "amae_hop8_recipe")]
  pairs.append(("amae_hop8_recipe", "vqvae_ema_hop8_noise"))
  return [pair_finding(f"{a} vs {b}", v[a], v[b]) for a, b in pairs if a in v and b in v]


def eval_curve(run: dict, key: str) -> dict[int, float]:
  """One run's validation `key` by step (empty where the run has no recorded curve)."""
  return {int(s): e[key] for s, e in run.get("curves", {}).get("eval", {}).items() if key in e}


def last_change(v: Variant) -> tuple[float, int] | None:
  """The change of the validation NLL between the last two evals (mean over seeds), and the steps between them."""
  changes, interval = [], 0
  for r in v.runs:
    curve = eval_curve(r, "nll_bits")
    steps = sorted(curve)
    if len(steps) >= 2:
      changes.append(curve[steps[-1]] - curve[steps[-2]])
      interval = steps[-1] - steps[-2]
  return (stats.mean_std(changes)[0], interval) if changes else None


def training_finding(v: dict[str, Variant]) -> list[str]:
  """Whether training had stopped improving: how each variant's validation NLL moved over its last eval interval."""
  changes = {name: c for name, x in v.items() if (c := last_change(x))}
  if not changes:
    return []
  falling = {n: c for n, (c, _) in changes.items() if c < 0}
  steps = sorted({s for _, s in changes.values()})
  text = (
    f"**Training length.** Over the last {' / '.join(map(str, steps))} steps of training the validation NLL "
    f"(mean over seeds) fell in {len(falling)} of {len(changes)} variants"
  )
  if falling:
    least, most = (f"{-c:.3f}" for c in (max(falling.values()), min(falling.values())))
    text += f", by {least if least == most else f'{least} to {most}'} bits/timestep"
  rising = sorted(set(changes) - set(falling))
  if rising:
    text += f"; it did not fall in {', '.join(rising)}"
  if len(falling) == len(changes):
    return [text + ": no model is converged, so the tables compare variants after the same short training."]
  return [text + "."]


def settling_finding(v: dict[str, Variant], drop: float = 0.05) -> list[str]:
  """The runs whose validation code usage fell by more than `drop` over the second half of training: codes that
  had not settled when training stopped."""
  falling = []
  for x in v.values():
    for r in x.runs:
      curve = eval_curve(r, "usage")
      if len(curve) < 2:
        continue
      last = max(curve)
      middle = min(curve, key=lambda s: abs(s - last / 2))
      if curve[middle] - curve[last] > drop:
        falling.append(f"{x.name} seed {r['seed']} ({curve[middle]:.0%} at step {middle}, {curve[last]:.0%} at {last})")
  if not falling:
    return []
  return [
    f"**Codes still settling.** Code usage fell by more than {drop:.0%} of the K codes over the second half of "
    f"training in {len(falling)} run{'s' if len(falling) > 1 else ''}: {'; '.join(falling)}. "
    "Their final usage and entropy are not settled values."
  ]


def findings(v: dict[str, Variant], sample_rate: float) -> list[str]:
  """Every sentence the report claims, each from the numbers beside it."""
  lines = [collapse_finding(x) for x in v.values() if x.collapsed_seeds]
  return (
    lines
    + training_finding(v)
    + settling_finding(v)
    + diversity_findings(v)
    + receptive_field_findings(v, sample_rate)
    + hop_findings(v, sample_rate)
    + quantizer_findings(v)
    + amae_findings(v)
  )


def form_label(v: Variant) -> str:
  model = v.runs[0]["config"]["model"]
  q = model["quantizer"]
  decoder = [
    f"input noise {model['decoder_input_noise']:g}" if model.get("decoder_input_noise") else "",
    f"blind fraction {model['decoder_blind_fraction']:g}" if model.get("decoder_blind_fraction") else "",
  ]
  if q["kind"] != "argmax":
    form = "VQ-VAE, EMA codebook + restarts" if q.get("ema_decay") else "plain VQ-VAE (codebook loss)"
    return ", ".join([form] + [s for s in decoder if s])
  terms = []
  if q["diversity_weight"]:
    terms.append(f"{q['diversity_reduce']}, weight {q['diversity_weight']:g}")
  if q.get("code_diversity_weight"):
    terms.append(f"+ codes term, weight {q['code_diversity_weight']:g}")
  switches = [
    f"running target (decay {q['diversity_target_decay']:g})" if q.get("diversity_target_decay") else "",
    f"mass floor {q['mass_floor']:g}" if q.get("mass_floor") else "",
    "normalised conditioning" if model.get("upsampler", {}).get("normalize") else "",
    "softmax normaliser" if q.get("normalizer") == "softmax" else "",
    *decoder,
  ]
  return ", ".join([" ".join(terms) or "no diversity loss"] + [s for s in switches if s])
