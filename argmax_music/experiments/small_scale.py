"""The paper's comparisons at small scale on the embedded piano corpus; writes RESULTS.md.

  python -m argmax_music.experiments.small_scale [--variants=amae_hop20,vqvae_hop20,...] [--steps=N]

Trains every variant of configs/small_scale.py on the same data with the same decoder:
AMAE at hops 8, 20 and 64, AMAE without the diversity loss, VQ-VAE with and without EMA
codebook updates, and the unconditional WaveNet of the decoder's size. Then it reconstructs
a validation clip with each autoencoder, samples the WaveNet, and writes RESULTS.md (tables,
plots, links to the audio and spectrograms in results/) and results/small_scale.json.

The corpus is rendered and prepared first if --data does not exist (as in the demo). A
finished variant is kept in --runs and skipped on the next run; an interrupted one resumes
from its checkpoint. --size=tiny shrinks every model and run (the test uses it).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import jax
import numpy as np
from absl import app, flags, logging

from argmax_music import audio, plots, train
from argmax_music.data import dataset
from argmax_music.models import generate
from configs import small_scale

FLAGS = flags.FLAGS
QUANTIZER_VARIANTS = ("amae_hop20", "amae_hop20_nodiv", "vqvae_hop20", "vqvae_ema_hop20")
HOP_VARIANTS = ("wavenet", "amae_hop8", "amae_hop20", "amae_hop64")
CLIP_SECONDS = 3.0


def variant_config(name: str, data: Path, size: str, steps: int | None):
  """The variant's config with the data, size and step overrides applied."""
  config = small_scale.get_config(name)
  config.data.dir = str(data)
  if size == "tiny":
    config.data.update(crop=320, threads=1)
    config.model.update(num_codes=16)
    config.model.quantizer.dim = 8
    config.model.encoder.update(channels=8, blocks_per_stage=1)
    config.model.upsampler.update(channels=8, kernel_size=3)
    config.model.decoder.update(layers=4, cycle=4, residual_channels=8, gate_channels=8, skip_channels=8)
    config.train.update(steps=4, batch_size=4, warmup_steps=2, log_every=2, eval_every=2, checkpoint_every=2)
    config.eval.update(batch_size=4, max_crops=8)
  if steps:
    config.train.update(steps=steps, eval_every=max(1, steps // 4), checkpoint_every=max(1, steps // 4))
  return config


def command(name: str, config, workdir: Path) -> str:
  """The train command that reproduces one variant's run (with its overrides)."""
  base = flat(small_scale.get_config(name).to_dict())
  overrides = [f"--config.{k}={v}" for k, v in flat(config.to_dict()).items() if base.get(k) != v]
  return shlex.join(["python", "-m", "argmax_music.train", f"--config=configs/small_scale.py:{name}",
                     f"--workdir={workdir}", *overrides])


def flat(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(flat(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def train_variant(name: str, config, workdir: Path) -> dict:
  """Train (or resume, or skip if finished) one variant; its numbers and curves."""
  done = workdir / "result.json"
  if done.exists():
    result = json.loads(done.read_text())
    if result["config"] == json.loads(json.dumps(config.to_dict())):
      logging.info("%s: finished earlier, kept (%s)", name, done)
      return result
  start = time.monotonic()
  train.train(config, workdir)
  evals, trains = train.read_metrics(workdir, "eval"), train.read_metrics(workdir, "train")
  last_step = max(evals)
  task = train.Task(config, 256)
  model = task.model.decoder if task.is_ada else task.model
  hop = task.model.hop if task.is_ada else None
  result = {
      "variant": name, "config": config.to_dict(), "command": command(name, config, workdir),
      "train_seconds": time.monotonic() - start, "steps": last_step, "eval": evals[last_step],
      "hop": hop, "num_codes": config.model.num_codes if hop else None,
      "code_bits_per_second": math.log2(config.model.num_codes) * 16000 / hop if hop else 0.0,
      "receptive_field": model.receptive_field,
      "curves": {"eval": {str(s): v for s, v in evals.items()},
                 "train": {str(s): {k: v[k] for k in ("nll_bits", "usage", "perplexity") if k in v}
                           for s, v in trains.items()}}}
  dataset.atomic_write_json(done, result)
  return result


def validation_clip(data: dataset.PreparedDataset, length: int) -> np.ndarray:
  """`length` mu-law samples from the middle of the longest validation file."""
  longest = max(data.arrays("validation"), key=len)
  if len(longest) < length:
    raise ValueError(f"{data.root}: no validation file is {length} samples long; render more pieces")
  start = (len(longest) - length) // 2
  return np.asarray(longest[start:start + length], np.int32)


def listen(results: dict, runs: Path, data: dataset.PreparedDataset, out: Path, seconds: float) -> dict:
  """Reconstruct one validation clip with each autoencoder and sample the WaveNet; write FLAC and PNG files."""
  out.mkdir(parents=True, exist_ok=True)
  rate = 16000
  length = int(seconds * rate) // 320 * 320  # A multiple of every hop.
  clip = validation_clip(data, length)
  signals = {"original": audio.mu_law_decode(clip)}
  files = {"original": "original.flac"}
  for name in results:
    config, task, params, model_state, _ = train.load_trained(runs / name)
    rng = jax.random.key(config.seed)
    if task.is_ada:
      signals[name] = audio.mu_law_decode(train.reconstruct_clip(task, params, model_state, clip, rng))
      files[name] = f"reconstruction_{name}.flac"
    else:
      samples = np.asarray(generate.generate(task.model, jax.device_get(params), rng, 2, length))
      for i, s in enumerate(samples):
        signals[f"{name} sample {i}"] = audio.mu_law_decode(s)
        files[f"{name} sample {i}"] = f"sample_{name}_{i}.flac"
  for key, x in signals.items():
    audio.save_audio(out / files[key], x, rate)
  reconstructions = {k: v for k, v in signals.items() if " sample " not in k}
  audio.save_spectrogram_png(out / "reconstructions.png", reconstructions, rate)
  samples = {k: v for k, v in signals.items() if " sample " in k}
  if samples:
    audio.save_spectrogram_png(out / "samples.png", samples, rate)
  return files


def machine() -> str:
  cpu = platform.processor() or "unknown CPU"
  if Path("/proc/cpuinfo").exists():
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")]
    cpu = names[0] if names else cpu
  device = jax.devices()[0]
  return (f"{os.cpu_count()} cores ({cpu}), {jax.device_count()} x {device.platform} device "
          f"({device.device_kind}), JAX {jax.__version__}")


def draw_curves(results: dict, out: Path) -> None:
  """code_usage.png (AMAE vs VQ-VAE over training) and nll.png (validation NLL of every variant)."""
  def series(name, kind, key):
    points = [(int(s), v[key]) for s, v in results[name]["curves"][kind].items() if key in v]
    return [s for s, _ in points], [v for _, v in points]

  quantizers = [n for n in QUANTIZER_VARIANTS if n in results]
  plots.save_panels(out / "code_usage.png", [
      plots.Panel("code usage of each training batch", "step", "fraction of the K codes used",
                  {n: series(n, "train", "usage") for n in quantizers}),
      plots.Panel("perplexity of each training batch's codes", "step", "perplexity (max K)",
                  {n: series(n, "train", "perplexity") for n in quantizers})])
  plots.save_panels(out / "nll.png", [
      plots.Panel("validation NLL", "step", "bits per timestep", {n: series(n, "eval", "nll_bits") for n in results}),
      plots.Panel("training NLL (each logged batch)", "step", "bits per timestep",
                  {n: series(n, "train", "nll_bits") for n in results})])


def findings(results: dict) -> list[str]:
  """The trends of this run, stated from its numbers, beside what the paper reports."""
  nll = {n: r["eval"]["nll_bits"] for n, r in results.items()}
  usage = {n: r["eval"].get("usage") for n, r in results.items()}
  lines = []
  if {"amae_hop20", "vqvae_hop20"} <= results.keys():
    better = "more" if usage["amae_hop20"] > usage["vqvae_hop20"] else "no more"
    lines.append(
        f"**AMAE vs VQ-VAE (code usage).** At hop 20, AMAE uses {usage['amae_hop20']:.0%} of its codes on the "
        f"validation split and plain VQ-VAE {usage['vqvae_hop20']:.0%}: AMAE keeps {better} codes alive. The paper "
        "introduces AMAE as a more stable alternative to VQ-VAE, whose codebooks can collapse onto a few codes; "
        + ("this run agrees." if better == "more" else "this run does not show the difference."))
    gap = nll["vqvae_hop20"] - nll["amae_hop20"]
    lines.append(
        f"**AMAE vs VQ-VAE (NLL).** Validation NLL {nll['amae_hop20']:.3f} (AMAE) vs {nll['vqvae_hop20']:.3f} "
        f"(VQ-VAE) bits per timestep: AMAE is {'better' if gap > 0 else 'worse'} by {abs(gap):.3f}.")
  if "vqvae_ema_hop20" in results and "vqvae_hop20" in results:
    lines.append(
        f"**VQ-VAE with EMA codebooks and restarts** uses {usage['vqvae_ema_hop20']:.0%} of its codes "
        f"(plain VQ-VAE {usage['vqvae_hop20']:.0%}) at NLL {nll['vqvae_ema_hop20']:.3f}: the usual remedies for "
        "dead codes, for comparison.")
  if {"amae_hop20", "amae_hop20_nodiv"} <= results.keys():
    helps = usage["amae_hop20"] > usage["amae_hop20_nodiv"]
    lines.append(
        f"**The diversity loss.** Without it AMAE uses {usage['amae_hop20_nodiv']:.0%} of its codes (with it "
        f"{usage['amae_hop20']:.0%}) and reaches NLL {nll['amae_hop20_nodiv']:.3f} (with it "
        f"{nll['amae_hop20']:.3f}). The paper adds the loss so that all K codes get used; "
        + ("this run agrees: without it fewer codes are used." if helps else "this run shows no loss of codes "
           "without it."))
  hops = [n for n in ("amae_hop8", "amae_hop20", "amae_hop64") if n in results]
  if len(hops) > 1:
    rising = all(nll[a] <= nll[b] for a, b in zip(hops, hops[1:]))
    lines.append(
        "**NLL vs hop.** " + ", ".join(f"hop {results[n]['hop']}: {nll[n]:.3f}" for n in hops) + " bits per "
        "timestep. Fewer code bits per second should leave the decoder more to guess, as in the paper, where the "
        "larger-hop autoencoders reconstruct less faithfully; "
        + ("this run agrees (NLL rises with the hop)." if rising else "this run does not order them that way."))
  if "wavenet" in results and hops:
    helped = [n for n in hops if nll[n] < nll["wavenet"]]
    lines.append(
        f"**What the codes add.** The unconditional WaveNet of the same size reaches {nll['wavenet']:.3f} bits "
        f"per timestep; the codes help at {len(helped)} of {len(hops)} hops "
        f"({', '.join(str(results[n]['hop']) for n in helped) or 'none'}).")
  return lines


def write_report(path: Path, out: Path, results: dict, audio_files: dict, meta: dict) -> None:
  """RESULTS.md: how it was made, the tables, the plots, the audio, the findings."""
  rel = os.path.relpath(out, path.parent)
  nll_wavenet = results["wavenet"]["eval"]["nll_bits"] if "wavenet" in results else None
  k = meta["num_codes"]

  def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"

  def fmt(x, spec=".3f"):
    return "-" if x is None else format(x, spec)

  lines = [
      "# Results: the paper's comparisons at small scale", "",
      f"Made by `{meta['command']}` on {meta['date']}, in {meta['minutes']:.1f} minutes on {meta['machine']}. "
      f"Every variant trains {meta['steps']} steps (batch {meta['batch']} x {meta['crop']} timesteps) on the "
      f"embedded piano corpus ({meta['train_hours']:.2f} h of training audio, {meta['validation_hours']:.2f} h "
      f"for validation: `{meta['data']}`). Config: `configs/small_scale.py` (one decoder, K={k}); the numbers are "
      f"in [{rel}/small_scale.json]({rel}/small_scale.json). Regenerate with the same command: finished variants "
      f"in `{meta['runs']}` are kept, so delete it to start over.", "",
      "NLL is the validation negative log-likelihood of the 8-bit mu-law audio in bits per timestep (lower is "
      "better; 8 bits is a uniform guess). Usage is the fraction of the K codes that appear in the validation "
      "codes; perplexity is 2^entropy of their histogram (at most K).", "",
      f"## Quantizers: AMAE vs VQ-VAE at hop 20, K={k}", "",
      row(["variant", "NLL (bits/timestep)", "code usage", "perplexity", "dead codes", "train time"]),
      row(["---"] * 6)]
  for n in QUANTIZER_VARIANTS:
    if n in results:
      e = results[n]["eval"]
      lines.append(row([n, fmt(e["nll_bits"]), fmt(e.get("usage"), ".0%"), fmt(e.get("perplexity"), ".1f"),
                        int(e["dead_codes"]) if "dead_codes" in e else "-", f"{results[n]['train_seconds'] / 60:.1f} min"]))
  lines += ["", f"![code usage and perplexity over training]({rel}/code_usage.png)", "",
            "## How much information is in the codes: NLL vs hop", "",
            row(["variant", "hop", "code bit rate", "decoder receptive field", "NLL (bits/timestep)",
                 "gain over no codes (bits/timestep)", "gain / code bit rate"]),
            row(["---"] * 7)]
  for n in HOP_VARIANTS:
    if n in results:
      r = results[n]
      gain = None if nll_wavenet is None or n == "wavenet" else nll_wavenet - r["eval"]["nll_bits"]
      share = None if gain is None else gain * 16000 / r["code_bits_per_second"]
      lines.append(row([n, r["hop"] or "-", f"{r['code_bits_per_second']:.0f} bit/s",
                        f"{r['receptive_field']} samples ({r['receptive_field'] / 16:.0f} ms)",
                        fmt(r["eval"]["nll_bits"]), fmt(gain), fmt(share, ".1%")]))
  lines += ["", "The code bit rate is log2(K) x 16000 / hop. 'Gain / code bit rate' is the NLL saved per second "
            "(gain x 16000) over the bits per second the codes carry: the share of the code bits the decoder "
            "turns into better predictions.", "",
            f"![validation and training NLL]({rel}/nll.png)", "",
            "## Listen", "",
            f"A {meta['clip_seconds']:.1f}-second validation clip, encoded and decoded (temperature 1) by each "
            "autoencoder, and two samples of the unconditional WaveNet:", ""]
  lines += [f"- [{k}]({rel}/audio/{v})" for k, v in audio_files.items()]
  lines += ["", f"![spectrograms of the clip and its reconstructions]({rel}/audio/reconstructions.png)", ""]
  if any(" sample " in k for k in audio_files):
    lines += [f"![spectrograms of the WaveNet's samples]({rel}/audio/samples.png)", ""]
  lines += ["## Findings, and the paper", ""] + [f"- {f}" for f in findings(results)]
  lines += ["", "Why a small-scale run may not agree with the paper: the paper trains for days on 400 hours of "
            "real piano recordings with far larger models; here each variant sees under an hour of rendered "
            "(synthesised, noiseless, one-instrument) piano for a few minutes of CPU, with one seed and no error "
            "bars, so differences of a few hundredths of a bit are within run-to-run noise. VQ-VAE's dead codes "
            "also depend on its initialisation and commitment weight, and short runs favour whichever model "
            "learns fastest rather than best.", "", "## Commands of each run", ""]
  lines += [f"- {n} ({results[n]['receptive_field']}-sample decoder, {results[n]['train_seconds'] / 60:.1f} min): "
            f"`{results[n]['command']}`" for n in results]
  path.write_text("\n".join(lines) + "\n")


def ensure_data(data: Path, pieces: int) -> None:
  """Render and prepare the embedded corpus if `data` is not a prepared dataset yet."""
  if (data / "manifest.json").exists():
    return
  from argmax_music import demo
  corpus = data.parent / "piano"
  demo.run("argmax_music.data.corpus", f"--out={corpus}", f"--pieces={pieces}")
  demo.run("argmax_music.data.prepare", f"--input={corpus}", f"--output={data}", "--min_seconds=1")


def main(argv):
  del argv
  start = time.monotonic()
  train.quiet_orbax()
  data_dir, runs, out, report = Path(FLAGS.data), Path(FLAGS.runs), Path(FLAGS.out), Path(FLAGS.report)
  names = FLAGS.variants.split(",") if FLAGS.variants else list(small_scale.VARIANTS)
  unknown = sorted(set(names) - set(small_scale.VARIANTS))
  if unknown:
    raise app.UsageError(f"--variants: unknown {unknown}; expected some of {sorted(small_scale.VARIANTS)}")
  ensure_data(data_dir, FLAGS.pieces)
  results = {}
  for i, name in enumerate(names, 1):
    logging.info("variant %d/%d: %s", i, len(names), name)
    config = variant_config(name, data_dir, FLAGS.size, FLAGS.steps)
    results[name] = train_variant(name, config, runs / name)
  data = dataset.PreparedDataset(data_dir)
  audio_files = listen(results, runs, data, out / "audio", FLAGS.clip_seconds)
  draw_curves(results, out)
  first = next(iter(results.values()))["config"]
  meta = {"command": shlex.join(["python", "-m", "argmax_music.experiments.small_scale", *sys.argv[1:]]),
          "date": datetime.date.today().isoformat(), "machine": machine(),
          "minutes": (time.monotonic() - start) / 60, "steps": first["train"]["steps"],
          "batch": first["train"]["batch_size"], "crop": first["data"]["crop"], "data": str(data_dir),
          "train_hours": data.seconds("train") / 3600, "validation_hours": data.seconds("validation") / 3600,
          "clip_seconds": FLAGS.clip_seconds, "runs": str(runs), "num_codes": first["model"]["num_codes"]}
  dataset.atomic_write_json(out / "small_scale.json", {"meta": meta, "results": results})
  write_report(report, out, results, audio_files, meta)
  print(f"wrote {report} and {out}/ in {meta['minutes']:.1f} min")


if __name__ == "__main__":
  flags.DEFINE_string("data", "data/piano_prepared", "Prepared dataset (rendered and prepared if missing).")
  flags.DEFINE_integer("pieces", 40, "Corpus entries to render when the data is missing.")
  flags.DEFINE_string("runs", "runs/small_scale", "Where each variant trains (kept between runs).")
  flags.DEFINE_string("out", "results", "Where plots, audio and the JSON of all numbers go.")
  flags.DEFINE_string("report", "RESULTS.md", "The report to write.")
  flags.DEFINE_string("variants", None, "Comma-separated variants of configs/small_scale.py (default: all).")
  flags.DEFINE_enum("size", "small", ["small", "tiny"], "'tiny' shrinks every model and run (for the test).")
  flags.DEFINE_integer("steps", None, "Override the training steps of every variant.")
  flags.DEFINE_float("clip_seconds", CLIP_SECONDS, "Seconds of the reconstructed clip and the samples.")
  app.run(main)
