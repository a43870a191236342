"""The small-scale experiment runner, end to end on a tiny setting: RESULTS.md with real numbers and files."""

import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO

from argmax_music import metrics, tasks
from argmax_music.experiments import small_scale
from configs import small_scale as small_scale_configs

VARIANTS = ("amae_hop20", "wavenet")  # amae_hop20 has a row in every table; wavenet is its baseline.
SEEDS = 2


@pytest.mark.parametrize("size", ["full", "tiny"])
def test_every_variant_passes_its_stage_checks(size, tmp_path):
  for name in small_scale_configs.VARIANTS:
    config = small_scale.variant_config(name, 0, tmp_path, size, None)
    tasks.make_task(config, 256, 16000).check(None)  # Crop vs hop and vs receptive field; no data needed.


def test_a_listening_clip_longer_than_the_data_stops_the_study_before_training(tiny_data, tmp_path):
  done = run_experiment(tiny_data, tmp_path, "--clip_seconds=100")  # Last flag wins.
  assert done.returncode == 1
  assert "--clip_seconds=100: " in done.stderr and "no validation file is 1600000 timesteps long" in done.stderr
  assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


def run_experiment(tiny_data, root, *flags):
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "argmax_music.experiments.small_scale",
      "--size=tiny",
      f"--data={tiny_data}",
      f"--runs={root / 'runs'}",
      f"--out={root / 'results'}",
      f"--report={root / 'RESULTS.md'}",
      f"--variants={','.join(VARIANTS)}",
      f"--seeds={SEEDS}",
      "--clip_seconds=0.5",
      "--scored_clips=2",
      "--scored_seconds=0.5",
      *flags,
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )


@pytest.mark.slow
def test_small_scale_runner_writes_the_report_and_keeps_finished_runs(tiny_data, tmp_path):
  done = run_experiment(tiny_data, tmp_path, "--parallel=2")  # Two training processes, then the report.
  assert done.returncode == 0, done.stderr[-3000:]
  report = (tmp_path / "RESULTS.md").read_text()
  numbers = json.loads((tmp_path / "results" / "small_scale.json").read_text())
  records = [tmp_path / "results" / "runs" / n / f"seed{s}" / "result.json" for n in VARIANTS for s in range(SEEDS)]
  recorded = {n: [json.loads(p.read_text()) for p in records if p.parts[-3] == n] for n in VARIANTS}
  for name, runs in recorded.items():
    assert [r["seed"] for r in runs] == list(range(SEEDS))
    nlls = [r["eval"]["nll_bits"] for r in runs]
    assert all(0 < nll < 9 and math.isfinite(nll) for nll in nlls)
    assert nlls[0] != nlls[1]  # Different seeds, different runs.
    mean = sum(nlls) / SEEDS
    assert re.search(rf"^\| {name} \|.*\| {SEEDS} \| {mean:.3f} ± ", report, re.M), f"no table row for {name}"
    assert all(r["steps"] == 4 and "--config.train.steps=4" in r["command"] for r in runs)
    assert "--config.seed=1" in runs[1]["command"]
  amae = recorded["amae_hop20"][0]
  usage = [v["usage"] for v in amae["curves"]["train"].values()]  # Recorded over training, for the plot.
  assert len(usage) == 2 and all(0 < u <= 1 for u in usage)
  assert amae["codes_per_second"] == 16000 / 20 and amae["receptive_field"] == 16  # Tiny: 4 layers.
  for section in (
    "## (a) Diversity loss",
    "## (b) Decoder receptive field",
    "## (c) Hop",
    "## (d) AMAE vs",
    "## Findings",
  ):
    assert section in report
  assert "Gain of the codes (wavenet - amae_hop20)" in report  # A finding, with its interval.
  links = re.findall(r"\]\(([^)]+)\)", report)
  assert {
    "results/code_usage.png",
    "results/nll.png",
    "results/audio/reconstructions.png",
    "results/audio/original.flac",
    "results/runs/amae_hop20/seed0/reconstruction.flac",
    "results/runs/wavenet/seed0/sample_1.flac",
  } <= set(links)
  for link in links:
    assert (tmp_path / link).stat().st_size > 0, link
  if not metrics.missing_dependencies():  # With the evaluation dependencies: the clip's musical figures.
    assert numbers["musical"]["amae_hop20"]["vs"] == "transcription of the original"  # The tones have no MIDI.
    assert re.search(r"^\| amae_hop20 \| transcription of the original \| \d\.\d\d \|", report, re.M)
    assert re.search(r"^\| wavenet \| \d+\.\d\d \| -?\d+\.\d \|", report, re.M)
    scored = [r["reconstruction"] for r in recorded["amae_hop20"]]  # Each run's 2 clips, as evaluate.
    assert all(0 <= f["onset_f1"] <= 1 and f["vs"] == "transcription of the original" for f in scored)
    assert not any(r.get("reconstruction") for r in recorded["wavenet"])
  assert [bool(r.get("audio")) for r in recorded["amae_hop20"]] == [True, False]  # Seed 0 is listened to.
  clip, rate = sf.read(tmp_path / "results" / "runs" / "amae_hop20" / "seed0" / "reconstruction.flac")
  assert rate == 16000 and len(clip) == 8000

  # Run again, the WaveNet's checkpoints gone (another machine): the recorded runs are kept, not retrained; the
  # report is rewritten. A kept run recorded before runs were scored (no "reconstruction") is scored once (from
  # its checkpoint), and only it is rewritten.
  shutil.rmtree(tmp_path / "runs" / "wavenet")
  unscored = records[0] if not metrics.missing_dependencies() else None
  if unscored:
    record = json.loads(unscored.read_text())
    del record["reconstruction"]
    unscored.write_text(json.dumps(record))
  kept = [p.stat().st_mtime_ns for p in records if p != unscored]
  again = run_experiment(tiny_data, tmp_path)
  assert again.returncode == 0, again.stderr[-3000:]
  assert again.stderr.count("finished earlier, kept") == len(records)
  assert kept == [p.stat().st_mtime_ns for p in records if p != unscored]
  assert "results/runs/wavenet/seed0/sample_1.flac" in (tmp_path / "RESULTS.md").read_text()
  if unscored:
    assert 0 <= json.loads(unscored.read_text())["reconstruction"]["onset_f1"] <= 1


@pytest.mark.slow
def test_sigterm_stops_the_parallel_study_keeping_its_checkpoints(tiny_data, tmp_path):
  command = [sys.executable, "-m", "argmax_music.experiments.small_scale", "--size=tiny", f"--data={tiny_data}"]
  command += [f"--runs={tmp_path / 'runs'}", f"--out={tmp_path / 'results'}", f"--report={tmp_path / 'RESULTS.md'}"]
  command += ["--variants=amae_hop20,wavenet", "--seeds=1", "--steps=100000", "--parallel=2", "--clip_seconds=0.5"]
  study = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True, start_new_session=True)
  checkpoints = [tmp_path / "runs" / n / "seed0" / "checkpoints" for n in ("amae_hop20", "wavenet")]
  deadline = time.monotonic() + 300
  try:
    while not all(c.exists() and any(c.iterdir()) for c in checkpoints):  # Both runs are training.
      assert study.poll() is None and time.monotonic() < deadline, "the runs did not start"
      time.sleep(1)
  except BaseException:  # Its 100,000 steps would otherwise run on beside every later test.
    with contextlib.suppress(ProcessLookupError):  # A study that already exited: its own failure is the one to see.
      os.killpg(study.pid, signal.SIGKILL)
    raise
  study.send_signal(signal.SIGTERM)
  _, stderr = study.communicate(timeout=120)
  assert study.returncode == 1
  assert stderr.count("seed 0 stopped at step") == 2, stderr[-3000:]  # Each run stopped; no other was begun.
  assert "error: 2 of 2 training processes stopped" in stderr and "Traceback" not in stderr
  assert not (tmp_path / "RESULTS.md").exists()
  assert all(any(c.iterdir()) for c in checkpoints)  # What was trained is kept, to resume from.
  assert all(json.loads((c.parent / "train_seconds.json").read_text()) > 0 for c in checkpoints)  # So is its time.


def test_listening_audio_of_another_clip_length_is_refused(tmp_path):
  from argmax_music import audio
  from argmax_music.experiments import listening

  clip = np.full(4800, 128, np.int32)  # 0.3 s of mu-law silence.
  audio.save_audio(tmp_path / "runs" / "amae_hop20" / "seed0" / "reconstruction.flac", np.zeros(3200), 16000)
  results = {"amae_hop20": [{"audio": {"amae_hop20": "runs/amae_hop20/seed0/reconstruction.flac"}}]}
  with pytest.raises(ValueError, match=r"reconstruction.flac: 3200 samples, not the clip's 4800"):
    listening.listening_files(results, clip, tmp_path)
