"""The listening page: readable figures, and opened in a real browser (headless Chromium)."""

import json
import shutil

import numpy as np
import pytest
from conftest import REPO, write_tone

from argmax_music import audio, listening_page, sample, stack

SCREENSHOT = REPO / "results" / "listening_page.png"


def test_values_are_written_for_reading():
  rows = dict(
    listening_page.figure_rows(
      {
        "onset_f1": 0.81234,
        "flatness_db": -23.456,
        "notes_per_s": 3.0,
        "samples_per_s": {"level1": 6943.5},
        "top_p": None,
        "temperatures (prior, levels top-down)": [1.0, 0.9],
        "start_s": 2,
        "clips": 12345,
        "nll_bits": float("nan"),
      }
    )
  )
  assert rows == {
    "onset F1": "0.812",
    "flatness": "-23.5 dB",
    "notes": "3 per s",
    "samples": "level1 6,944 per s",
    "top p": "–",
    "temperatures (prior, levels top-down)": "1, 0.9",
    "start": "2 s",
    "clips": "12,345",
    "NLL": "–",
  }


def find_chromium() -> str | None:
  return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def reconstruct_page(tiny_stack, tmp_path_factory):
  """The reconstruct page of a real tiny stack, with a figure per clip added afterwards (as evaluate does)."""
  out = tmp_path_factory.mktemp("page") / "reconstruct"
  write_tone(out.parent / "input.wav", 1.0, 262)
  levels, _ = stack.open_stack(tiny_stack)
  sample.sample("reconstruct", levels, None, out, seconds=0.3, num=2, input_file=str(out.parent / "input.wav"))
  original = audio.load_audio(out / "original_0.wav")
  figures = []
  for i in range(2):
    reconstruction = audio.load_audio(out / f"sample_{i}.wav")
    distance = np.mean(np.abs(audio.log_mel_spectrogram(original) - audio.log_mel_spectrogram(reconstruction)))
    figures.append({"log_mel_distance_db": float(distance), "seconds": len(reconstruction) / 16000})
  listening_page.add_figures(out, figures, summary={"clips": 2})
  return out


@pytest.mark.slow
def test_reconstruct_page_shows_the_original_beside_each_reconstruction(reconstruct_page):
  page = json.loads((reconstruct_page / listening_page.PAGE_DATA).read_text())
  text = (reconstruct_page / "index.html").read_text()
  assert [c["original"] for c in page["clips"]] == ["original_0.wav", "original_1.wav"]
  assert "None" not in text and "{'" not in text and "/tmp" not in text.split("<table")[0]
  for clip in page["clips"]:
    assert f'src="{clip["original"]}"' in text and f'src="{clip["audio"]}"' in text
    assert "log mel distance" in text and clip["figures"]["log_mel_distance_db"] > 0


@pytest.mark.slow
def test_listening_page_in_browser(reconstruct_page):
  chromium = find_chromium()
  if chromium is None:
    pytest.skip("Chromium not found (`make test` installs Debian's chromium package where apt is available)")
  from playwright.sync_api import sync_playwright

  problems = []
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
    page.goto((reconstruct_page / "index.html").as_uri())
    page.wait_for_function(
      "[...document.querySelectorAll('audio')].every(a => a.readyState >= 1 || a.error)", timeout=30_000
    )
    durations = page.eval_on_selector_all("audio", "els => els.map(a => a.duration)")
    widths = page.eval_on_selector_all("img", "els => els.map(i => i.naturalWidth)")
    figures = page.inner_text("body")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    browser.close()
  assert len(durations) == 4 and all(d > 0.29 for d in durations), durations  # 2 originals, 2 reconstructions
  assert len(widths) == 2 and all(w > 0 for w in widths), widths
  assert figures.count("log mel distance") == 2 and "dB" in figures, figures
  assert not problems, problems
