"""What RESULTS.md shows beside its tables: each seed-0 run's reconstruction of one validation clip (or a
WaveNet's samples), written when the run finishes so the report needs no checkpoint; their spectrograms and
musical figures; the curves over training."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from absl import logging

from argmax_music import audio, metrics, plots, stack
from argmax_music.data import clips, dataset
from argmax_music.experiments import findings
from argmax_music.metrics import figures as musical
from argmax_music.metrics import scores
from argmax_music.models import generate

# Pictured beside the clip: the hops, the VQ-VAEs at hop 20, and table (e)'s AMAE recipe against the VQ-VAE it
# is compared with (the WaveNet among them: the one whose samples are played).
LISTEN_VARIANTS = (
  *findings.HOP_TABLE,
  *findings.QUANTIZER_TABLE[1:],
  "amae_hop8_recipe",
  "vqvae_ema_hop8_noise",
  findings.HOP_BASELINE,
)
CURVE_VARIANTS = (*findings.DIVERSITY_TABLE[64], *findings.QUANTIZER_TABLE[1:], "amae_hop64")
RATE = 16000


def listened(name: str, result: dict) -> bool:
  """Whether the report plays this run: seed 0 of every autoencoder, and of the WaveNets in LISTEN_VARIANTS."""
  return result["seed"] == 0 and (result["hop"] is not None or name in LISTEN_VARIANTS)


def clip_length(seconds: float) -> int:
  """Samples of the listening clip: `seconds` at 16 kHz, a multiple of every hop."""
  return int(seconds * RATE) // 320 * 320


def validation_clip(data: dataset.PreparedDataset, length: int) -> tuple[np.ndarray, np.ndarray | None]:
  """`length` mu-law samples of the first validation file that long (its middle), and the score's notes in them
  (None where the file has no MIDI or the evaluation dependencies are missing)."""
  clip = clips.pick_clips(data, "validation", 1, length)[0]
  score = (
    None if metrics.missing_dependencies() else scores.clip_score(scores.midi_index(data), clip, length / data.rate)
  )
  return clip.waveform.astype(np.int32), score


def listen_run(name: str, workdir: Path, clip: np.ndarray, folder: Path, out: Path) -> dict[str, str]:
  """Reconstruct `clip` with the run in `workdir` (temperature 0, stack.Sampler.reconstruct), or sample a
  WaveNet twice as long as it; FLAC files in `folder`. Returns {label: file relative to `out`}."""
  trained = stack.Stage.load(workdir)
  if trained.task.is_level:
    _, decoded = stack.Sampler([trained], temperatures=[0.0], quiet=True).reconstruct(clip[None])
    signals = {name: ("reconstruction.flac", decoded[0])}
  else:
    module, params = trained.task.generator(jax.device_get(trained.params))
    samples = np.asarray(generate.generate(module, params, jax.random.key(trained.config.seed), 2, len(clip)))
    signals = {f"{name} sample {i}": (f"sample_{i}.flac", s) for i, s in enumerate(samples)}
  for file, x in signals.values():
    audio.save_audio(folder / file, audio.mu_law_decode(x), RATE)
  return {label: str((folder / file).relative_to(out)) for label, (file, _) in signals.items()}


def listening_files(results: dict[str, list[dict]], clip: np.ndarray, out: Path) -> tuple[dict, dict]:
  """The clip (written to out/audio/original.flac) and every run's listening files, read back: ({label: file
  relative to `out`}, {label: signal}); spectrograms of those in LISTEN_VARIANTS and of the samples."""
  (out / "audio").mkdir(parents=True, exist_ok=True)
  audio.save_audio(out / "audio" / "original.flac", audio.mu_law_decode(clip), RATE)
  files = {"original": "audio/original.flac"}
  for runs in results.values():
    files.update(runs[0].get("audio", {}))
  signals = {label: audio.load_audio(out / file, RATE) for label, file in files.items()}
  for label, x in signals.items():
    if len(x) != len(clip):
      raise ValueError(f"{out / files[label]}: {len(x)} samples, not the clip's {len(clip)} (another --clip_seconds)")
  shown = ("original", *LISTEN_VARIANTS)
  reconstructions = {k: v for k, v in signals.items() if k in shown}
  audio.save_spectrogram_png(out / "audio" / "reconstructions.png", reconstructions, RATE)
  samples = {k: v for k, v in signals.items() if " sample " in k}
  if samples:
    audio.save_spectrogram_png(out / "audio" / "samples.png", samples, RATE)
  return files, signals


def musical_figures(signals: dict[str, np.ndarray], score: np.ndarray | None, data_dir: Path) -> dict:
  """Per autoencoder: note F1 of its reconstruction against the clip's score (else the original's
  transcription) and spectral distances to the original; per WaveNet: notes/s and flatness of its samples
  beside the training audio's and white noise's. Empty, with a warning, without the evaluation dependencies."""
  try:
    metrics.require()
  except metrics.MissingDependencies as e:
    logging.warning("no musical figures in the report: %s", e)
    return {}
  original = signals["original"]
  figures = {
    name: musical.clip_figures(x, RATE, original, score)
    for name, x in signals.items()
    if name != "original" and " sample " not in name
  }
  sampled = dict.fromkeys(k.split(" sample ")[0] for k in signals if " sample " in k)
  if sampled:
    reference = musical.training_reference(data_dir, seconds=len(original) / RATE)
    for name in sampled:
      samples = [x for k, x in signals.items() if k.startswith(f"{name} sample ")]
      figures[name] = musical.generated_figures(samples, RATE, reference)["summary"]
  return figures


def draw_curves(results: dict, out: Path) -> None:
  """code_usage.png (AMAE variants and VQ-VAE over training) and nll.png (validation NLL), seed 0 of each."""

  def series(name, kind, key):
    points = [(int(s), v[key]) for s, v in results[name][0]["curves"][kind].items() if key in v]
    return [s for s, _ in points], [v for _, v in points]

  coded = [n for n in CURVE_VARIANTS if n in results]
  plots.save_panels(
    out / "code_usage.png",
    [
      plots.Panel(
        "code usage of each training batch (seed 0)",
        "step",
        "fraction of the K codes used",
        {n: series(n, "train", "usage") for n in coded},
      ),
      plots.Panel(
        "perplexity of each training batch's codes (seed 0)",
        "step",
        "perplexity (max K)",
        {n: series(n, "train", "perplexity") for n in coded},
      ),
    ],
  )
  plots.save_panels(
    out / "nll.png",
    [
      plots.Panel(
        "validation NLL (seed 0)", "step", "bits per timestep", {n: series(n, "eval", "nll_bits") for n in results}
      ),
      plots.Panel(
        "training NLL (each logged batch, seed 0)",
        "step",
        "bits per timestep",
        {n: series(n, "train", "nll_bits") for n in results},
      ),
    ],
  )
