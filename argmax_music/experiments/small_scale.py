"""The paper's comparisons at small scale on the embedded piano corpus; writes RESULTS.md.

  python -m argmax_music.experiments.small_scale [--seeds=3] [--variants=amae_hop20,...] [--steps=N] [--parallel=0]
  python -m argmax_music.experiments.small_scale --quick      # every table, tiny models, a few minutes

Trains every variant of configs/small_scale.py with each seed on the same data: the
diversity loss's form and weight at K = 64 and 512, the decoder's receptive field (each
against an unconditional WaveNet of the same receptive field), the hop, and AMAE against
plain VQ-VAE and VQ-VAE with EMA codebooks and restarts. Each autoencoder run, once trained,
reconstructs --scored_clips validation clips scored as `evaluate` scores them (onset note F1
against the score at temperature 0: table (e)); seed 0 of every autoencoder reconstructs one more
validation clip to listen to (argmax decoding, stack.Sampler.reconstruct), and the WaveNet samples.
Then it scores those (note F1 against the clip's MIDI, spectral distances; notes/s and flatness
of the samples: experiments/listening.py) and writes the report (experiments/report.py: tables of
mean ± std, findings from Welch intervals) and results/small_scale.json.

The corpus is rendered and prepared first if --data does not exist (as in the demo). Each run
trains in --runs/VARIANT/seedN; an interrupted one resumes from its checkpoint there. A finished
run's record (numbers, curves, scores, listening files) is written to --out/runs/VARIANT/seedN,
which the repository keeps: the next invocation, on this machine or another, skips it.
--parallel=N trains N runs at a time, each in its own process on its own core (0: one per core;
on 2 cores, 1.2x the throughput of one run on both). --size=tiny shrinks every model and run
(the test uses it); --quick is --size=tiny with 2 seeds and 20 steps, written under a temporary
folder unless --out/--runs/--report are given, so it never replaces the committed results.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
from absl import app, flags, logging

from argmax_music import cli, evaluate, files, metrics, sharding, stack, train, writer
from argmax_music import config as config_lib
from argmax_music.data import dataset
from argmax_music.experiments import listening, report
from argmax_music.models import wavenet
from configs import small_scale

FLAGS = flags.FLAGS


def variant_config(name: str, seed: int, data: Path, size: str, steps: int | None):
  """The variant's config with the seed, data, size and step overrides applied."""
  config = small_scale.get_config(name)
  config.seed = seed
  config.data.dir = str(data)
  if size == "tiny":  # Same shape of study: K 64 -> 16 and 512 -> 128, receptive fields 4 / 16 / 64.
    config.data.update(crop=320, threads=1)
    config.model.num_codes = config.model.num_codes // 4
    config.model.quantizer.dim = 8
    config.model.encoder.update(channels=8, blocks_per_stage=1)
    config.model.upsampler.update(channels=8, kernel_size=3)
    layers = config.model.decoder.layers - 6
    config.model.decoder.update(layers=layers, cycle=layers, residual_channels=8, gate_channels=8, skip_channels=8)
    config.train.update(steps=4, batch_size=4, warmup_steps=2, log_every=2, eval_every=2, checkpoint_every=2)
    config.eval.update(batch_size=4, max_crops=8)
  if steps:
    config.train.update(
      steps=steps,
      eval_every=max(1, steps // 4),
      checkpoint_every=max(1, steps // 4),
      log_every=max(1, min(config.train.log_every, steps // 4)),
    )
  return config


def command(name: str, config, workdir: Path) -> str:
  """The train command that reproduces one run (with its overrides)."""
  base = config_lib.flatten(small_scale.get_config(name).to_dict())
  overrides = [f"--config.{k}={v}" for k, v in config_lib.flatten(config.to_dict()).items() if base.get(k) != v]
  return shlex.join(
    [
      "python",
      "-m",
      "argmax_music.train",
      f"--config=configs/small_scale.py:{name}",
      f"--workdir={workdir}",
      *overrides,
    ]
  )


def score_reconstructions(workdir: Path, clips: int, seconds: float) -> dict:
  """`evaluate`'s reconstruction summary (onset note F1 against the score, ...) of `clips` validation clips of
  `seconds` decoded at temperature 0 by the run's autoencoder (needs the evaluation dependencies)."""
  stage = stack.Stage.load(workdir)
  return evaluate.evaluate_stack([stage], None, clips, seconds, generate=0)["reconstruction"]["summary"]


def train_variant(
  name: str, config, runs: Path, out: Path, data: dataset.PreparedDataset, scored: tuple[int, float], clip
) -> dict:
  """Train (or resume, or keep if finished) one run of a variant in `runs`/VARIANT/seedN; its numbers and curves.
  What the report needs of it is recorded in `out`/runs/VARIANT/seedN (kept in the repository) once it exists:
  result.json, with an autoencoder's reconstructions of `scored` = (clips, seconds) scored once
  (`score_reconstructions`; not without the evaluation dependencies) and seed 0's listening files (`clip`
  reconstructed, or a WaveNet's samples); so a finished run is kept on any machine, without its checkpoint."""
  workdir, record = runs / name / f"seed{config.seed}", out / "runs" / name / f"seed{config.seed}"
  done = record / "result.json"
  result = json.loads(done.read_text()) if done.exists() else None
  if result is not None and result["config"] == json.loads(json.dumps(config.to_dict())):
    logging.info("%s seed %d: finished earlier, kept (%s)", name, config.seed, done)
  else:
    result = trained_run(name, config, workdir, data)
    files.atomic_write_json(done, result)
  if result["hop"] and result.get("reconstruction") is None and not metrics.missing_dependencies():
    result["reconstruction"] = score_reconstructions(workdir, *scored)
    files.atomic_write_json(done, result)
  if listening.listened(name, result) and "audio" not in result:
    result["audio"] = listening.listen_run(name, workdir, clip, record, out)
    files.atomic_write_json(done, result)
  return result


def trained_run(name: str, config, workdir: Path, data: dataset.PreparedDataset) -> dict:
  """Train (or resume) one run of a variant to its last step; its numbers and curves. Its training time adds up
  over invocations (`workdir`/train_seconds.json), so a resumed run counts all of it."""
  spent = workdir / "train_seconds.json"
  earlier = json.loads(spent.read_text()) if spent.exists() else 0.0
  start = time.monotonic()
  returned = train.train(config, workdir)
  seconds = earlier + time.monotonic() - start
  files.atomic_write_json(spent, seconds)
  if returned["step"] < config.train.steps:  # Stopped by a signal: stop the study too; the run resumes next time.
    cli.fail(f"{name} seed {config.seed} stopped at step {returned['step']}; run the same command to resume")
  evals, trains = writer.read_metrics(workdir, "eval"), writer.read_metrics(workdir, "train")
  last_step = max(evals)
  d = config.model.decoder
  hop = math.prod(config.model.encoder.strides) if config.stage == "ada" else None
  return {
    "variant": name,
    "seed": config.seed,
    "config": config.to_dict(),
    "command": command(name, config, workdir),
    "train_seconds": seconds,
    "machine": sharding.machine(),
    "jax": jax.__version__,
    "steps": last_step,
    "eval": {**evals[last_step], **(returned.get("eval") or {})},
    "hop": hop,
    "num_codes": config.model.num_codes if hop else None,
    "sample_rate": data.rate,
    "codes_per_second": data.rate / hop if hop else 0.0,
    "receptive_field": wavenet.receptive_field(d.layers, d.cycle, d.kernel_size),
    "curves": {
      "eval": {str(s): v for s, v in evals.items()},
      "train": {str(s): {k: v[k] for k in ("nll_bits", "usage", "perplexity") if k in v} for s, v in trains.items()},
    },
  }


def ensure_data(data: Path, pieces: int) -> None:
  """Render and prepare the embedded corpus if `data` is not a prepared dataset yet."""
  if (data / "manifest.json").exists():
    return
  from argmax_music import demo

  corpus = data.parent / "piano"
  demo.run("argmax_music.data.corpus", f"--out={corpus}", f"--pieces={pieces}")
  demo.run("argmax_music.data.prepare", f"--input={corpus}", f"--output={data}", "--min_seconds=1")


def train_in_parallel(workers: int, names: list[str], common: list[str]) -> None:
  """Train every run in `workers` child processes (`--train_only`), the i-th given every workers-th variant
  and one core (XLA's matmuls on one thread), and wait for them. SIGTERM is passed on to them (each saves a
  checkpoint and stops); a child that fails or stops stops the study."""
  cores = sorted(os.sched_getaffinity(0))
  flags_env = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
  children = []
  for i in range(min(workers, len(names))):
    command = [
      sys.executable,
      "-m",
      "argmax_music.experiments.small_scale",
      *common,
      f"--variants={','.join(names[i::workers])}",
      "--train_only",
    ]
    core = {cores[i % len(cores)]}
    children.append(
      subprocess.Popen(
        command, env=dict(os.environ, XLA_FLAGS=flags_env), preexec_fn=lambda core=core: os.sched_setaffinity(0, core)
      )
    )
  previous = signal.signal(signal.SIGTERM, lambda *_: [c.send_signal(signal.SIGTERM) for c in children])
  try:
    failed = [c for c in children if c.wait()]
  finally:
    signal.signal(signal.SIGTERM, previous)
  if failed:
    cli.fail(f"{len(failed)} of {len(children)} training processes stopped; their messages are above")


def main(argv):
  del argv
  start = time.monotonic()
  size, seeds, steps = ("tiny", 2, FLAGS.steps or 20) if FLAGS.quick else (FLAGS.size, FLAGS.seeds, FLAGS.steps)
  quick_root = Path(tempfile.gettempdir()) / "argmax_music_quick"

  def place(flag, quick_path):
    return quick_path if FLAGS.quick and not FLAGS[flag].present else Path(getattr(FLAGS, flag))

  data_dir = Path(FLAGS.data)
  runs, out, report_path = (
    place("runs", quick_root / "runs"),
    place("out", quick_root / "results"),
    place("report", quick_root / "RESULTS.md"),
  )
  names = FLAGS.variants.split(",") if FLAGS.variants else list(small_scale.VARIANTS)
  unknown = sorted(set(names) - set(small_scale.VARIANTS))
  if unknown:
    raise app.UsageError(f"--variants: unknown {unknown}; expected some of {sorted(small_scale.VARIANTS)}")
  ensure_data(data_dir, FLAGS.pieces)
  data = dataset.PreparedDataset(data_dir)
  try:  # Before any training: every seed-0 run reconstructs this clip once it finishes.
    clip, score = listening.validation_clip(data, listening.clip_length(FLAGS.clip_seconds))
  except ValueError as e:
    raise app.UsageError(f"--clip_seconds={FLAGS.clip_seconds:g}: {e}") from e
  workers = FLAGS.parallel or len(os.sched_getaffinity(0))
  if workers > 1 and not FLAGS.train_only:
    common = [f"--data={data_dir}", f"--runs={runs}", f"--out={out}", f"--seeds={seeds}", f"--size={size}"]
    common += [f"--scored_clips={FLAGS.scored_clips}", f"--scored_seconds={FLAGS.scored_seconds}"]
    common += [f"--clip_seconds={FLAGS.clip_seconds}"]
    train_in_parallel(workers, names, common + ([f"--steps={steps}"] if steps else []))
  results = {name: [] for name in names}
  scored = (FLAGS.scored_clips, FLAGS.scored_seconds)
  for seed in range(seeds):  # Seed 0 of every variant first: a partial run already fills every table.
    for i, name in enumerate(names, 1):
      logging.info("seed %d/%d, variant %d/%d: %s", seed + 1, seeds, i, len(names), name)
      config = variant_config(name, seed, data_dir, size, steps)
      results[name].append(train_variant(name, config, runs, out, data, scored, clip))
  if FLAGS.train_only:
    return
  audio_files, signals = listening.listening_files(results, clip, out)
  figures = listening.musical_figures(signals, score, data_dir)
  listening.draw_curves(results, out)
  first = results[names[0]][0]["config"]
  meta = {
    "command": shlex.join(["python", "-m", "argmax_music.experiments.small_scale", *sys.argv[1:]]),
    "date": datetime.date.today().isoformat(),
    "machine": sharding.machine(),
    "minutes": (time.monotonic() - start) / 60,
    "steps": first["train"]["steps"],
    "seeds": seeds,
    "train_minutes": sum(r["train_seconds"] for done in results.values() for r in done) / 60,
    "trained_on": sorted({r.get("machine", "an unrecorded machine") for done in results.values() for r in done}),
    "trained_with_jax": sorted({r["jax"] for done in results.values() for r in done if "jax" in r}),
    "batch": first["train"]["batch_size"],
    "crop": first["data"]["crop"],
    "data": str(data_dir),
    "train_hours": data.seconds("train") / 3600,
    "validation_hours": data.seconds("validation") / 3600,
    "clip_seconds": FLAGS.clip_seconds,
    "scored_clips": FLAGS.scored_clips,
    "scored_seconds": FLAGS.scored_seconds,
    "runs": str(runs),
    "sample_rate": data.rate,
  }
  files.atomic_write_json(out / "small_scale.json", {"meta": meta, "musical": figures})
  report.write_report(report_path, out, results, audio_files, meta, figures)
  print(f"wrote {report_path} and {out}/ in {meta['minutes']:.1f} min")


if __name__ == "__main__":
  flags.DEFINE_string("data", "data/piano_prepared", "Prepared dataset (rendered and prepared if missing).")
  flags.DEFINE_integer("pieces", 40, "Corpus entries to render when the data is missing.")
  flags.DEFINE_string("runs", "runs/small_scale", "Where each run trains (checkpoints: an interrupted run resumes).")
  flags.DEFINE_string("out", "results", "Plots, audio, the JSON of all numbers and each finished run's record.")
  flags.DEFINE_string("report", "RESULTS.md", "The report to write.")
  flags.DEFINE_string("variants", None, "Comma-separated variants of configs/small_scale.py (default: all).")
  flags.DEFINE_integer("seeds", 3, "Seeds per variant (0, 1, ...).")
  flags.DEFINE_enum("size", "small", ["small", "tiny"], "'tiny' shrinks every model and run (for the test).")
  flags.DEFINE_bool(
    "quick",
    False,
    "Every table and the report in minutes: --size=tiny, 2 seeds, 20 steps, "
    "written under the temporary folder unless --runs/--out/--report are given.",
  )
  flags.DEFINE_integer("steps", None, "Override the training steps of every variant.")
  flags.DEFINE_integer("parallel", 1, "Runs trained at a time, one process and core each (0: one per core).")
  flags.DEFINE_bool("train_only", False, "Train (or keep) the runs, without the report (--parallel's workers).")
  flags.DEFINE_float("clip_seconds", 3.0, "Seconds of the reconstructed clip and the samples.")
  flags.DEFINE_integer("scored_clips", 3, "Validation clips each autoencoder run reconstructs for its onset F1.")
  flags.DEFINE_float("scored_seconds", 4.0, "Seconds of each of those clips.")
  cli.run(main)
