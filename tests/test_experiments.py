"""The small-scale experiment runner, end to end on a tiny setting: RESULTS.md with real numbers and files."""

import json
import math
import re
import subprocess
import sys

import soundfile as sf

from conftest import REPO

VARIANTS = ("amae_hop8", "vqvae_hop20", "wavenet")


def run_experiment(tiny_data, root):
  return subprocess.run(
      [sys.executable, "-m", "argmax_music.experiments.small_scale", "--size=tiny", f"--data={tiny_data}",
       f"--runs={root / 'runs'}", f"--out={root / 'results'}", f"--report={root / 'RESULTS.md'}",
       f"--variants={','.join(VARIANTS)}", "--clip_seconds=0.5"],
      cwd=REPO, capture_output=True, text=True, timeout=600)


def test_small_scale_runner_writes_the_report_and_keeps_finished_runs(tiny_data, tmp_path):
  done = run_experiment(tiny_data, tmp_path)
  assert done.returncode == 0, done.stderr[-3000:]
  report = (tmp_path / "RESULTS.md").read_text()
  numbers = json.loads((tmp_path / "results" / "small_scale.json").read_text())
  assert list(numbers["results"]) == list(VARIANTS)
  for name, result in numbers["results"].items():
    nll = result["eval"]["nll_bits"]
    assert 0 < nll < 9 and math.isfinite(nll)
    assert re.search(rf"^\| {name} \|.*{nll:.3f}", report, re.M), f"no table row for {name}"
    assert result["steps"] == 4 and "--config.train.steps=4" in result["command"]
  for name in ("amae_hop8", "vqvae_hop20"):  # Code usage recorded over training, for the plot.
    usage = [v["usage"] for v in numbers["results"][name]["curves"]["train"].values()]
    assert len(usage) == 2 and all(0 < u <= 1 for u in usage)
  # The bit rate of the codes: log2(K) x 16000 / hop.
  assert numbers["results"]["amae_hop8"]["code_bits_per_second"] == math.log2(16) * 16000 / 8
  links = re.findall(r"\]\(([^)]+)\)", report)
  assert {"results/code_usage.png", "results/nll.png", "results/audio/reconstructions.png",
          "results/audio/original.flac", "results/audio/sample_wavenet_1.flac"} <= set(links)
  for link in links:
    assert (tmp_path / link).stat().st_size > 0, link
  clip, rate = sf.read(tmp_path / "results" / "audio" / "reconstruction_amae_hop8.flac")
  assert rate == 16000 and len(clip) == 8000

  # Run again: the finished variants are kept, not retrained; the report is rewritten.
  kept = {n: (tmp_path / "runs" / n / "result.json").stat().st_mtime_ns for n in VARIANTS}
  again = run_experiment(tiny_data, tmp_path)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stderr.count("finished earlier, kept") == len(VARIANTS)
  assert kept == {n: (tmp_path / "runs" / n / "result.json").stat().st_mtime_ns for n in VARIANTS}
