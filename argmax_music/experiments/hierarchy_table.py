"""RESULTS.md table (f) and its findings, written from the JSON `experiments.hierarchy` makes (results/hierarchy.json):
each stack's figures, the floors its pieces are held to, and the differences the pieces can show."""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np

from argmax_music import files
from argmax_music.experiments import stats

SECTION = "## (f) Two levels against one: structure across 20-second pieces"
REAL_CODES = "two levels from real level-2 codes (a perfect prior)"
REAL_CLIPS = "the same real clips, their own audio"
SOFT = ", soft codes"  # Level 1 conditioned on the expected code vector under level 2's prediction (stack.Sampler).
KEY_COLUMN = "key: guidance / pieces in their key (or its relative)"


def floors(result: dict) -> dict[str, bool]:
  """The floors a stack's generated pieces are held to, each met or not."""
  s, structure = result["generated"]["summary"], result["structure_median"]
  return {
    "notes/s >= 50% of the training audio's": s["notes_per_s"] >= 0.5 * s["training_notes_per_s"],
    "flatness within 4 dB of the training audio's": abs(s["flatness_db"] - s["training_flatness_db"]) <= 4,
    "pitch-class distance <= 1.5 x two halves of the corpus": s["pitch_class_distance"]
    <= 1.5 * s["training_pitch_class_halves_distance"],
    "structure >= 0.8 x real clips' and above different pieces'": structure >= 0.8 * s["training_structure_same_piece"]
    and structure > s["training_structure_different_pieces"],
  }


def per_piece(result: dict, key: str) -> list[float]:
  return [r[key] for r in result["generated"]["clips"] if key in r and not math.isnan(r[key])]


def spread(values: list[float], fmt: str = ".2f") -> str:
  if not values:
    return "-"
  mean, std = stats.mean_std(values)
  return f"{mean:{fmt}}" + ("" if math.isnan(std) else f" ± {std:{fmt}}")


def table_f(h: dict) -> list[str]:
  """Table (f) and its findings, from the JSON `main` writes (results/hierarchy.json)."""
  two, one = h["two_level"], h["one_level"]
  s = two["generated"]["summary"]
  lines = [
    SECTION,
    "",
    f"`{h['command']}` on {h['date']} ({h['machine']}). Each stack generated {h['pieces_per_stack']} pieces of "
    f"{h['seconds']:g} s (seeds {h['seeds']}; prior, then decoders top-down, at temperatures "
    f"{two['temperatures']} and {one['temperatures']}); mean ± std over pieces. Structure: the correlation of the "
    "pitch-class profiles of a piece's first and last 5 s (median over pieces). Training clips: "
    f"{s['training_notes_from']}, {h['seconds']:g}-s clips. Reconstruction: onset note F1 of 4 validation clips "
    "of 4 s at temperature 0 against their score, through level 1 alone and through every level. Training "
    "time: the minutes of the stages that differ (level 1 is shared; the model card says where each ran)."
    + (f" The one-level row is {one['from']}." if "from" in one else "")
    + (f" The other priors' rows are {two['other_priors_from']}." if "other_priors_from" in two else "")
    + (
      " Soft codes: the same prior codes, with level 1 conditioned at each step on the expected code vector under "
      "level 2's prediction rather than on the code sampled from it (`stack.Sampler`)."
      if "two_level_soft" in h
      else ""
    )
    + (
      f" Autoguidance: each stack's prior moves away from its guide, its own recipe stopped at {two['guide_steps']} "
      "steps, whose minutes count in the stack's training time (not in its prior steps)."
      if "autoguidance" in two
      else ""
    ),
    "",
  ]
  header = ["stack", "prior sees", "prior input noise", "prior steps", "training (min)", "notes/s", "flatness (dB)"]
  header += ["pitch-class distance", "structure", KEY_COLUMN, "reconstruction F1 (level 1 / all)"]
  others = two.get("other_priors", [])
  shipped = f", prior seed {two['prior_seed']}" if others else ""
  rows = [stack_row(f"two levels (hop 8 x 8){shipped}", two)]
  if "two_level_soft" in h:
    rows.append(stack_row(f"two levels (hop 8 x 8){shipped}{SOFT}", h["two_level_soft"]))
  rows += [
    stack_row(f"two levels, prior seed {r['prior_seed']}{SOFT if r.get('soft_codes') else ''}", r) for r in others
  ]
  rows += [stack_row(name, r) for name, r in judged(h) if name.startswith((REAL_CODES, REAL_CLIPS))]
  one_others = one.get("other_priors", [])
  one_seed = f", prior seed {one['prior_seed']}" if one_others else ""
  rows.append(stack_row(f"one level (hop 8){one_seed}", one))
  rows += [stack_row(f"one level, prior seed {r['prior_seed']}", r) for r in one_others]
  rows.append(
    [
      "training clips",
      "-",
      "-",
      "-",
      "-",
      f"{s['training_notes_per_s']:.2f}",
      f"{s['training_flatness_db']:.1f}",
      f"{s['training_pitch_class_halves_distance']:.2f} (two halves)",
      f"{s['training_structure_same_piece']:.2f} (different pieces: {s['training_structure_different_pieces']:.2f})",
      "-",
      "-",
    ]
  )
  lines += ["| " + " | ".join(c) + " |" for c in (header, ["---"] * len(header), *rows)] + [""]
  lines += [f"- {f}" for f in findings(h)] + [""]
  return lines


def stack_row(name: str, r: dict) -> list[str]:
  """A stack's cells in table (f); '-' where a figure was not measured (another prior's reconstructions and time,
  the prior of real codes)."""
  f1 = [f"{r[f'reconstruction_{n}_levels']['onset_f1']:.2f}" for n in (1, 2) if f"reconstruction_{n}_levels" in r]
  prior = "prior_receptive_field_s" in r  # Not for real codes.
  return [
    name,
    f"{r['prior_receptive_field_s']:.1f} s" if prior else "-",
    f"{r.get('prior_input_noise', 0.0):g}" if prior else "-",
    f"{r['prior_steps']}" if "prior_steps" in r else "-",
    f"{r['training_minutes']:.0f}" if "training_minutes" in r else "-",
    spread(per_piece(r, "notes_per_s")),
    spread(per_piece(r, "flatness_db"), ".1f"),
    f"{r['generated']['summary']['pitch_class_distance']:.2f}",
    f"{r['structure_median']:.2f}",
    key_cell(r),
    " / ".join(f1) or "(as above)",
  ]


def key_cell(r: dict) -> str:
  """The guidance of a key-conditioned prior and the share of its pieces in the key they were asked for, or in it
  or its relative (real codes: of the clips in their score's key); '-' for an unconditioned prior."""
  s = r["generated"]["summary"]
  if "key_agreement" not in s:
    return "-"
  guidance = f"{r['guidance']:g}" if "guidance" in r else "-"
  guidance += f" + autoguidance {r['autoguidance']:g}" if "autoguidance" in r else ""
  return f"{guidance} / {s['key_agreement']:.2f} ({s['signature_agreement']:.2f})"


def judged(h: dict) -> list[tuple[str, dict]]:
  """The rows of table (f) held to the floors, by name: each two-level decoding, its real codes, the real clips
  themselves, one level."""
  two = [("two levels", h["two_level"])] + (
    [(f"two levels{SOFT}", h["two_level_soft"])] if "two_level_soft" in h else []
  )
  real = [(REAL_CODES + name[len("two levels") :], r["real_codes"]) for name, r in two if "real_codes" in r]
  real += [(REAL_CLIPS, h["real_clips"])] if "real_clips" in h else []
  return two + real + [("one level", h["one_level"])]


def compare(key: str, what: str, a: tuple[str, dict], b: tuple[str, dict], paired: bool = False) -> str:
  """A sentence on the difference of a per-piece figure between two rows: Welch's 95% interval, or over pairs of
  the same pieces when `paired` (those with the figure in both rows)."""
  if paired:  # Only the pieces with a value in both rows.
    pairs = [
      (x[key], y[key])
      for x, y in zip(a[1]["generated"]["clips"], b[1]["generated"]["clips"], strict=True)
      if not (math.isnan(x.get(key, math.nan)) or math.isnan(y.get(key, math.nan)))
    ]
    diff = stats.paired_difference([x for x, _ in pairs], [y for _, y in pairs])
  else:
    diff = stats.difference(per_piece(a[1], key), per_piece(b[1], key))
  if not diff.known:
    return f"{what}: too few pieces with a value to compare {a[0]} and {b[0]}."
  verdict = "a real difference" if diff.excludes_zero else "no difference the pieces can show"
  how = ", the same pieces paired" if paired else ""
  return (
    f"{what}: {a[0]} minus {b[0]} {diff.estimate:+.2f} (95% CI{how} {diff.low:+.2f} to {diff.high:+.2f}): {verdict}."
  )


def findings(h: dict) -> list[str]:
  """Sentences written from table (f)'s numbers."""
  two, one = ("two levels", h["two_level"]), ("one level", h["one_level"])
  against_one = (("structure", "structure"), ("notes_per_s", "notes/s"), ("flatness_db", "flatness (dB)"))
  out = [compare(key, what, two, one) for key, what in against_one]
  if "guidance" in two[1] and "guidance" not in one[1]:
    out.append(
      "Not the same prior: the two-level prior is conditioned on each piece's key (guided towards it with scale "
      f"{two[1]['guidance']:g}), the one-level prior is not; the differences above mix the levels with the key."
    )
  steps = [r.get("training_steps") for _, r in (two, one)]
  if None not in steps and steps[0] != steps[1]:
    out.append(
      f"Not the same budget: the two-level stack trained {steps[0]} steps (in the stages it does not share), the "
      f"one-level stack {steps[1]} (its prior); the stack with more steps is favoured."
    )
  if "two_level_soft" in h:
    soft = (f"two levels{SOFT}", h["two_level_soft"])
    out += [
      compare(key, what, soft, two, paired=True)
      for key, what in (("notes_per_s", "notes/s"), ("flatness_db", "flatness (dB)"))
    ]
    out += [compare(key, what, soft, one) for key, what in against_one]
  others = two[1].get("other_priors", [])
  decoded_as_others = "two_level_soft" if others and others[0].get("soft_codes") else "two_level"
  two_priors = [h[decoded_as_others], *others] if others and decoded_as_others in h else []
  one_others = one[1].get("other_priors", [])
  one_priors = [one[1], *one_others] if one_others else []
  # Each stack's spread over its priors (the shipped prior's pieces decoded as the others' were), then both stacks'.
  out += over_priors("two levels", two_priors) + over_priors("one level", one_priors)
  if two_priors and one_priors:
    out += [stacks_differ_over_priors(key, what, two_priors, one_priors) for key, what in against_one]
  out += [pitch_class_parts(name, r) for name, r in judged(h) if "scale_degree_distance" in r["generated"]["summary"]]
  for name, r in judged(h):
    met = floors(r)
    missed = [k for k, ok in met.items() if not ok]
    out.append(
      f"{name}: {len(met) - len(missed)} of {len(met)} floors met"
      + (f"; not met: {'; '.join(missed)}." if missed else ".")
    )
  return out


def pitch_class_parts(name: str, r: dict) -> str:
  """What a row's pitch-class distance is made of: the keys its pieces were asked in, and how they use the scale."""
  s = r["generated"]["summary"]
  return (
    f"{name}: pitch-class distance {s['pitch_class_distance']:.2f}; the keys asked for alone would give "
    f"{s['key_mix_distance']:.2f} (each piece's notes spread over its key as the training files spread theirs); "
    f"counted from each piece's tonic, its notes are {s['scale_degree_distance']:.2f} from the training files' "
    "use of the scale."
  )


def recipe(r: dict) -> str:
  """How a prior was trained and sampled, as far as table (f)'s priors differ: its input noise, its key and the
  weaker prior it was guided away from."""
  keyed = f", key-conditioned, guidance {r['guidance']:g}" if "guidance" in r else ""
  keyed += f", autoguidance {r['autoguidance']:g} from a {r['guide_steps']}-step prior" if "autoguidance" in r else ""
  return f"prior input noise {r['prior_input_noise']:g}{keyed}"


def stacks_differ_over_priors(key: str, what: str, two: list[dict], one: list[dict]) -> str:
  """A sentence on the difference of a figure between the two stacks over their priors (each prior's mean over its
  pieces is one value; structure: its median, as in the table)."""
  value = lambda r: r["structure_median"] if key == "structure" else float(np.mean(per_piece(r, key)))
  diff = stats.difference([value(r) for r in two], [value(r) for r in one])
  if not diff.known:
    return f"{what}: too few priors to compare the stacks over priors."
  priors = f"over their {len(two)} and {len(one)} priors (a value each)"
  return f"{what}: two levels minus one level {priors}, {over_priors_interval(diff)}."


def over_priors(name: str, priors: list[dict]) -> list[str]:
  """Stack `name`'s figures over the priors of each recipe (each prior's mean is one value) and, with two recipes,
  the difference of their notes/s; only priors trained as many steps as the most of them were."""
  if not priors:
    return []
  steps = collections.Counter(r["prior_steps"] for r in priors).most_common(1)[0][0]
  priors = [r for r in priors if r["prior_steps"] == steps]
  recipes = sorted({recipe(r) for r in priors}, reverse=True)
  groups = {k: [r for r in priors if recipe(r) == k] for k in recipes}
  means = {k: [float(np.mean(per_piece(r, "notes_per_s"))) for r in group] for k, group in groups.items()}
  out = []
  for k, group in groups.items():
    seeds = ", ".join(str(r["prior_seed"]) for r in group)
    structures = ", ".join(f"{r['structure_median']:.2f}" for r in group)
    pitch_classes = ", ".join(f"{r['generated']['summary']['pitch_class_distance']:.2f}" for r in group)
    met = ", ".join(str(sum(floors(r).values())) for r in group)
    out.append(
      f"{name}, {k}, over {len(group)} priors of {steps} steps (seeds {seeds}): notes/s {spread(means[k])} (mean "
      f"± std of each prior's mean), structure medians {structures}, pitch-class distances {pitch_classes}, floors "
      f"met {met} of 4."
    )
  if len(groups) == 2:
    (a, a_means), (b, b_means) = means.items()
    diff = stats.difference(a_means, b_means)
    if diff.known:
      out.append(f"notes/s: {a} minus {b}, over priors' means, {over_priors_interval(diff)}.")
  return out


def over_priors_interval(diff: stats.Interval) -> str:
  """A difference over priors' values: its estimate, Welch's 95% interval and whether the priors show it."""
  verdict = "a real difference" if diff.excludes_zero else "no difference these priors can show"
  return f"{diff.estimate:+.2f} (95% CI {diff.low:+.2f} to {diff.high:+.2f}): {verdict}"


def splice(path: Path, lines: list[str]) -> None:
  """Put table (f) into RESULTS.md: in place of an older one, else before the plots that follow the tables."""
  text = path.read_text().split("\n")
  if SECTION in text:
    start = text.index(SECTION)
    end = next((i for i in range(start + 1, len(text)) if text[i].startswith(("## ", "!["))), len(text))
    text[start:end] = lines
  else:
    at = next((i for i, line in enumerate(text) if line.startswith("![")), len(text))
    text[at:at] = lines
  files.atomic_write_bytes(path, "\n".join(text).encode())
