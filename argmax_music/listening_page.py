"""The listening page: WAVs, spectrograms and figures of a set of clips, as `index.html` in one folder.

`write_page` writes a folder: `sample_I.wav`, `sample_I.png` (its log-mel spectrogram), and,
where a clip has an original (reconstructions), `original_I.wav`, drawn in the same PNG above
the clip on the same time axis and colour scale. The page's content is kept in `page.json`,
so figures computed later (by `argmax_music.evaluate`, say) are added with `add_figures`,
which redraws `index.html`. Figures are `{name: value}` dicts; a name's suffix gives the unit
(`_db` dB, `_per_s` per second, `_hz` Hz, `_bits` bits, `_s` seconds), and values are written
for reading: rounded numbers, lists and dicts spelt out, a dash where there is no value.
Every link is relative to the page, so the folder can be moved or served as it is.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import numpy as np

from argmax_music import audio
from argmax_music.files import atomic_write_bytes

PAGE_DATA = "page.json"
UNITS = (("_per_s", "per s"), ("_db", "dB"), ("_hz", "Hz"), ("_bits", "bits"), ("_s", "s"))
MISSING = "–"


# ---------------------------------------------------------------------------
# Values as text.
# ---------------------------------------------------------------------------


def split_unit(name: str) -> tuple[str, str]:
  """('notes', 'per s') from 'notes_per_s': a readable label and the unit its suffix names."""
  for suffix, unit in UNITS:
    if name.endswith(suffix) and len(name) > len(suffix):
      return humanise(name[: -len(suffix)]), unit
  return humanise(name), ""


def humanise(name: str) -> str:
  """'onset_f1' -> 'onset F1'; names with spaces are kept as they are."""
  if " " in name:
    return name
  words = name.replace("_", " ").split()
  return " ".join(w.upper() if w in ("f1", "stft", "nll", "k") else w for w in words)


def format_number(value: float) -> str:
  """Rounded for reading: thousands separated, three significant digits below 100."""
  if isinstance(value, (bool, np.bool_)):
    return "yes" if value else "no"
  if isinstance(value, (int, np.integer)):
    return f"{int(value):,}"
  value = float(value)
  if not math.isfinite(value):
    return MISSING
  if value == 0:
    return "0"
  if abs(value) >= 100:
    return f"{value:,.0f}"
  text = f"{value:.3g}"
  return text if "e" not in text else f"{value:.2e}"


def format_value(value, unit: str = "") -> str:
  """Any figure or setting as text: numbers with `unit`, lists and dicts spelt out, never a Python repr."""
  suffix = f" {unit}" if unit else ""
  if value is None:
    return MISSING
  if isinstance(value, (bool, int, float, np.number, np.bool_)):
    text = format_number(value)
    return text if text == MISSING else text + suffix
  if isinstance(value, np.ndarray):
    value = value.tolist()
  if isinstance(value, dict):
    return ", ".join(f"{humanise(str(k))} {format_value(v, unit)}" for k, v in value.items()) or MISSING
  if isinstance(value, (list, tuple)):
    return ", ".join(format_value(v, unit) for v in value) or MISSING
  return str(value) + suffix


def figure_rows(figures: dict) -> list[tuple[str, str]]:
  """(label, value) pairs of a figures dict."""
  rows = []
  for name, value in figures.items():
    label, unit = split_unit(str(name))
    rows.append((label, format_value(value, unit)))
  return rows


# ---------------------------------------------------------------------------
# Spectrograms.
# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# The page.
# ---------------------------------------------------------------------------


def write_page(
  out: str | os.PathLike,
  waveforms,
  settings: dict,
  sample_rate: int,
  originals=None,
  figures: list[dict] | None = None,
  links: dict[str, str] | None = None,
  kind: str = "sample",
) -> dict:
  """Write each float waveform (and its original, if any) as WAV + spectrogram PNG, then the page.

  `settings` are shown at the top; `figures` (one dict per clip) beside each clip; `links` are
  {label: file in `out`}. Returns the page's data (also written to page.json).
  """
  out = Path(out)
  out.mkdir(parents=True, exist_ok=True)
  clips = []
  for i, x in enumerate(waveforms):
    x = np.asarray(x, np.float32)
    clip = {
      "name": f"{kind} {i}",
      "audio": f"sample_{i}.wav",
      "spectrogram": f"sample_{i}.png",
      "seconds": len(x) / sample_rate,
      "original": None,
      "figures": dict(figures[i]) if figures else {},
    }
    audio.save_audio(out / clip["audio"], x, sample_rate)
    panels = {clip["name"]: x}
    if originals is not None:
      original = np.asarray(originals[i], np.float32)
      clip["original"] = f"original_{i}.wav"
      audio.save_audio(out / clip["original"], original, sample_rate)
      panels = {"original": original, clip["name"]: x}
    audio.save_spectrogram_png(out / clip["spectrogram"], panels, sample_rate)
    clips.append(clip)
  page = {
    "title": f"argmax_music: {settings.get('mode', kind)}",
    "settings": settings,
    "clips": clips,
    "summary": {},
    "links": links or {},
  }
  save(out, page)
  return page


def add_figures(out: str | os.PathLike, clip_figures: list[dict] | None = None, summary: dict | None = None) -> None:
  """Add figures to a written page: one dict per clip (in order) and/or figures over all clips."""
  out = Path(out)
  page = json.loads((out / PAGE_DATA).read_text())
  for clip, extra in zip(page["clips"], clip_figures or [], strict=False):
    clip["figures"].update(extra)
  page["summary"].update(summary or {})
  save(out, page)


def save(out: Path, page: dict) -> None:
  """Write page.json and index.html."""
  atomic_write_bytes(out / PAGE_DATA, json.dumps(page, indent=1, default=_plain).encode())
  atomic_write_bytes(out / "index.html", render(page).encode())


def _plain(value):
  """JSON for numpy values in figures."""
  return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else str(value)


def _table(rows: list[tuple[str, str]], css: str) -> str:
  body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
  return f'<table class="{css}">{body}</table>'


def _player(label: str, src: str) -> str:
  return (
    f'<div class="player"><span>{html.escape(label)}</span>'
    f'<audio controls preload="metadata" src="{html.escape(src)}"></audio></div>'
  )


def _clip(clip: dict) -> str:
  name = html.escape(clip["name"])
  players = (_player("original", clip["original"]) if clip["original"] else "") + _player(clip["name"], clip["audio"])
  figures = _table(figure_rows(clip["figures"]), "figures") if clip["figures"] else ""
  what = "the original (top) and " + name if clip["original"] else name
  return (
    f'<section class="clip"><h2>{name} <small>{format_value(clip["seconds"], "s")}</small></h2>'
    f'<div class="players">{players}</div><div class="row">'
    f'<img src="{html.escape(clip["spectrogram"])}" alt="log-mel spectrogram of {what}">'
    f"{figures}</div></section>"
  )


STYLE = """body{font-family:system-ui,sans-serif;max-width:1240px;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.1em;margin:0 0 .4em}small{color:#666;font-weight:normal}
table{border-collapse:collapse;font-size:.9em}th{text-align:left;font-weight:normal;color:#555;padding:.1em 1em .1em 0}
td{font-variant-numeric:tabular-nums;padding:.1em 0}
.clip{border-top:1px solid #ddd;padding:1em 0}.players{display:flex;gap:1.5em;flex-wrap:wrap;margin-bottom:.5em}
.player span{display:block;font-size:.85em;color:#555}audio{width:380px}
.row{display:flex;gap:1.5em;align-items:flex-start}.row img{width:800px;max-width:70vw;height:auto}
.figures{min-width:260px}"""


def render(page: dict) -> str:
  """The page's HTML."""
  settings = _table(figure_rows(page["settings"]), "settings")
  summary = f"<h2>Over all clips</h2>{_table(figure_rows(page['summary']), 'figures')}" if page["summary"] else ""
  links = "".join(
    f'<li><a href="{html.escape(src)}">{html.escape(label)}</a></li>' for label, src in page["links"].items()
  )
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(page["title"])}</title>
<style>{STYLE}</style></head>
<body><h1>{html.escape(page["title"])}</h1>
{settings}
{summary}
{"".join(_clip(c) for c in page["clips"])}
{f"<ul>{links}</ul>" if links else ""}
</body></html>
"""
