"""Per-step time of the training loop with several local processes (launch/local_multihost.sh), this checkout
against another, runs alternating; prints JSON.

  python benchmarks/multihost_step.py --baseline=/tmp/baseline [--processes=2,4] [--repeats=3] [--steps=200]

Each run trains configs/tiny.py (the step is small, so what the loop adds around it shows) with one CPU device per
process on a few prepared tones, and reads the steps/s its log lines report after the first (compiled) ones.
`--baseline=DIR` is another checkout, e.g. `git worktree add /tmp/baseline <commit>`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from argmax_music.data import prepare  # noqa: E402
from argmax_music.writer import read_metrics  # noqa: E402


def tones(folder: Path, rate: int = 16000) -> Path:
  """Twelve 2-second tones, prepared."""
  (folder / "audio").mkdir(parents=True)
  t = np.arange(2 * rate) / rate
  for i in range(12):
    sf.write(folder / "audio" / f"tone_{i}.wav", 0.3 * np.sin(2 * np.pi * (110 + 20 * i) * t), rate)
  prepare.prepare(folder / "audio", folder / "prepared", validation_fraction=0.3, test_fraction=0.0)
  return folder / "prepared"


def seconds_per_step(checkout: Path, processes: int, steps: int, data: Path, scratch: Path) -> float:
  """Median seconds per step over the log lines after the first tenth of the run, process 0's metrics."""
  workdir = Path(tempfile.mkdtemp(dir=scratch))
  command = [
    str(checkout / "launch" / "local_multihost.sh"),
    "-n",
    str(processes),
    "-d",
    "1",
    "-p",
    str(20000 + os.getpid() % 10000),
    "-l",
    str(workdir / "logs"),
    "--",
    "--config=configs/tiny.py",
    f"--workdir={workdir / 'run'}",
    f"--config.data.dir={data}",
    f"--config.train.steps={steps}",
    "--config.train.log_every=10",
    f"--config.train.eval_every={steps}",
    f"--config.train.checkpoint_every={steps}",
  ]
  env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(checkout))
  subprocess.run(command, cwd=checkout, env=env, check=True, capture_output=True, timeout=1800)
  rates = read_metrics(workdir / "run", "perf")
  return 1.0 / statistics.median(r["steps_per_s"] for s, r in rates.items() if s > steps // 10)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--baseline", type=Path, required=True, help="Another checkout to time alternately.")
  parser.add_argument("--processes", default="2,4")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--steps", type=int, default=200)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as scratch:
    data = tones(Path(scratch) / "data")
    results = []
    for processes in [int(n) for n in args.processes.split(",")]:
      times = {"this": [], "baseline": []}
      for _ in range(args.repeats):
        for name, checkout in (("this", REPO), ("baseline", args.baseline)):
          times[name].append(seconds_per_step(checkout, processes, args.steps, data, Path(scratch)))
      medians = {k: statistics.median(v) for k, v in times.items()}
      results.append(
        {
          "processes": processes,
          "ms_per_step": {k: round(1000 * v, 2) for k, v in medians.items()},
          "runs_ms": {k: [round(1000 * x, 2) for x in v] for k, v in times.items()},
          "speedup": round(medians["baseline"] / medians["this"], 3),
        }
      )
      print(json.dumps(results[-1]), flush=True)
  print(json.dumps({"benchmark": "multihost_step", "steps": args.steps, "results": results}, indent=1))


if __name__ == "__main__":
  main()
