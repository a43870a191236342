"""benchmarks/accelerator.py: the peaks it divides by, and its whole code path on the CPU with tiny shapes (--smoke)."""

import json
import math
import subprocess
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import measure  # noqa: E402


def positive(value) -> bool:
  return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_peaks_by_device_kind():
  assert measure.peak_flops("NVIDIA H200", "bfloat16") == 989e12
  assert measure.peak_flops("NVIDIA H100 80GB HBM3", "float32") == 494.5e12  # TF32.
  assert measure.peak_flops("NVIDIA A100-SXM4-80GB", "float32") == 156e12
  assert measure.peak_flops("TPU v5 lite", "bfloat16") == 197e12  # v5e, not v5p.
  assert measure.peak_flops("TPU v5", "bfloat16") == 459e12
  assert measure.peak_flops("TPU v6 lite", "float32") == 918e12
  assert measure.peak_flops("NVIDIA H100 PCIe", "bfloat16") is None  # Other clocks: no figure rather than a wrong one.
  assert measure.peak_flops("cpu", "float32") is None


@pytest.mark.slow
def test_smoke_run_measures_every_configuration(tmp_path):
  out = tmp_path / "accelerator_cpu.json"
  command = [sys.executable, "benchmarks/accelerator.py", "--smoke", "--profile", f"--out={out}", "--peak_tflops=0.01"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-4000:]
  report = json.loads(out.read_text())
  assert report["device"] == "cpu" and report["smoke"] and report["finished"]
  assert [t["dtype"] for t in report["training"]] == ["bfloat16", "float32", "bfloat16"]
  for config in report["training"]:
    assert config["stopped"] in ("out_of_memory", "max_batch", "budget"), config
    assert positive(config["mfu"]) and config["largest_batch"] == config["batches"][-1]["batch"]
    for figures in config["batches"]:
      for key in ("compile_s", "steps_per_s", "timesteps_per_s", "analytic_flops_per_step", "xla_flops_per_step"):
        assert positive(figures[key]), (key, figures)
      assert positive(figures["mfu"]) and positive(figures["step_mb"])
      assert 0.5 < figures["xla_over_analytic"] < 2
  # The smoke run's memory limit (3 MiB) sits between a tiny level's step at batch 2 and at batch 4.
  assert report["training"][0]["stopped"] == "out_of_memory" and report["training"][0]["out_of_memory_at"] == 4
  profile = report["training"][0]["profile"]
  assert "error" not in profile and profile["top_ops"] and all(positive(op["ms"]) for op in profile["top_ops"])
  (sampling,) = report["sampling"]
  assert [b["batch"] for b in sampling["batches"]] == [1, 4]
  for figures in sampling["batches"]:
    assert (
      positive(figures["samples_per_s"]) and positive(figures["compile_s"]) and positive(figures["real_time_factor"])
    )
  assert positive(report["hierarchy"]["real_time_factor"])


def test_device_script_runs_the_benchmark_with_its_deadline_and_copies_the_results(tmp_path):
  """launch/device_benchmark.sh run, with a stand-in Python that records its arguments (no install, no JAX)."""
  calls, out = tmp_path / "calls.txt", tmp_path / "out"
  python = tmp_path / "python"
  python.write_text(f'#!/usr/bin/env bash\necho "$*" >> "{calls}"\n')
  python.chmod(0o755)
  env = {"PATH": "/usr/bin:/bin", "PYTHON": str(python), "OUT": str(out), "SKIP_INSTALL": "1", "DEADLINE_S": "60"}
  result = subprocess.run(
    ["launch/device_benchmark.sh", "run", "--", "--smoke"], cwd=REPO, env=env, capture_output=True, text=True
  )
  assert result.returncode == 0, result.stderr
  check, benchmark = calls.read_text().splitlines()
  assert check.startswith("-c import jax")
  assert benchmark == (
    f"benchmarks/accelerator.py --out={out}/ --profile --profile_dir=/tmp/argmax_music_profile --deadline_s=60 --smoke"
  )
  assert (out / "benchmark.log").exists()


def test_device_script_refuses_a_package_without_a_pin(tmp_path):
  env = {"PATH": "/usr/bin:/bin", "PACKAGES": "flax no-such-package", "OUT": str(tmp_path)}
  result = subprocess.run(["launch/device_benchmark.sh", "run"], cwd=REPO, env=env, capture_output=True, text=True)
  assert result.returncode == 2 and "no-such-package is not pinned in requirements.txt" in result.stderr
