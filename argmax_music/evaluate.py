"""Musical evaluation of a trained stack: are the right notes there, not only a low NLL?

  python -m argmax_music.evaluate --workdir=runs/demo [--clips=4] [--seconds=4] [--generate=2] [--out=FILE]

Reconstruction: validation clips of the level's prepared dataset are encoded, decoded and
transcribed (basic-pitch), then scored note by note against the score (the corpus keeps each
piece's MIDI; MAESTRO has its own) -- or, where a file has no MIDI, against the transcription
of the original clip, which the output says. Spectral (multi-resolution STFT, log-mel) and
harmonic (chroma cosine) distances compare reconstruction and original. Generated audio (with
a prior) gets notes/s, pitched frames, polyphony, pitch-class and duration histogram distances
to the training set's notes, and spectral flatness beside the training audio's and white noise's.
Writes JSON (default ROOT/eval/metrics.json) and prints a table.

The figures themselves are computed by `argmax_music.metrics.figures`; the stack is run by
`argmax_music.stack` (`Sampler.reconstruct`, the one reconstruction path).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from absl import flags

from argmax_music import audio, metrics, stack
from argmax_music.data import clips as clips_lib
from argmax_music.data import dataset
from argmax_music.files import atomic_write_bytes
from argmax_music.metrics import figures, scores, transcription


def validation_clips(data_dir, count: int, seconds: float, multiple: int = 1) -> list[clips_lib.Clip]:
  """`count` validation clips of `seconds` (a whole number of `multiple` samples) of a prepared dataset."""
  data = dataset.PreparedDataset(data_dir)
  return clips_lib.pick_clips(data, "validation", count, int(seconds * data.rate), multiple)


def evaluate_stack(
  levels: list[stack.Stage],
  prior: stack.Stage | None,
  clips: int = 4,
  seconds: float = 4.0,
  generate: int = 2,
  levels_used: int | None = None,
  temperature: float = 0.0,
  prior_temperature: float = 1.0,
  seed: int = 0,
  midi_root: str | None = None,
  soft_codes: bool = False,
) -> dict:
  """Reconstruct `clips` validation clips through `levels_used` levels (decoders at `temperature`; `soft_codes`
  as `stack.Sampler` takes it) and score them against their score; with a prior, generate `generate` clips (the
  prior at `prior_temperature`) and set them beside the training audio. The figures as a JSON-ready dict."""
  used = levels_used or len(levels)
  data_dir = levels[0].config.data.dir
  temperatures = ([prior_temperature] if prior else []) + [temperature] * len(levels)
  sampler = stack.Sampler(levels, prior, temperatures, None, seed, soft_codes=soft_codes)
  rate = sampler.sample_rate
  result = {"levels": [s.describe() for s in levels], "levels_used": used, "temperatures": temperatures}
  result["soft_codes"] = soft_codes
  picked = validation_clips(data_dir, clips, seconds, sampler.top_hop(used))
  codes, decoded = sampler.reconstruct(np.stack([c.waveform for c in picked]), used)
  midi = scores.midi_index(dataset.PreparedDataset(data_dir), midi_root)
  clip_scores = [scores.clip_score(midi, c, decoded.shape[1] / rate) for c in picked]
  result["reconstruction"] = figures.reconstruction_figures(picked, decoded, rate, clip_scores)
  result["codes"] = {
    f"level{i}": figures.codes_figures(c, levels[i - 1].task.num_codes, sampler.top_hop(i) / rate, clip_scores)
    for i, c in enumerate(codes, 1)
  }
  if generate and prior is not None:
    reference = figures.training_reference(data_dir, seconds=seconds, midi_root=midi_root)
    result["generated"] = figures.generated_figures(generated(sampler, generate, seconds), rate, reference)
  result["transcriber_s_per_audio_s"] = transcription.speed()
  return result


def generated(sampler: stack.Sampler, count: int, seconds: float) -> list[np.ndarray]:
  """`count` new pieces of `seconds` from the sampler's prior through every level, as float audio."""
  rate = sampler.sample_rate
  top = sampler.prior_codes(count, math.ceil(seconds * rate / sampler.top_hop()))
  waveforms = sampler.decode(top, len(sampler.levels))[-1][:, : int(seconds * rate)]
  return [audio.mu_law_decode(w) for w in waveforms]


def format_table(result: dict) -> str:
  """The figures as a plain-text table: one line per clip and a mean line per part."""
  lines = []
  if "reconstruction" in result:
    lines.append(f"reconstruction (notes scored against: {result['reconstruction']['summary']['vs']})")
    lines.append(
      f"  {'clip':<40} {'F1 on':>6} {'F1 off':>6} {'orig F1':>7} {'notes':>9} {'STFT':>6} {'mel dB':>6} {'onsets':>6} {'chroma':>6}"
    )
    for r in result["reconstruction"]["clips"] + [dict(result["reconstruction"]["summary"], source="mean")]:
      name = r["source"] if "start_s" not in r else f"{Path(r['source']).stem}@{r['start_s']:.1f}s"
      lines.append(
        f"  {name[-40:]:<40} {r['onset_f1']:6.3f} {r['offset_f1']:6.3f} "
        f"{r.get('original_onset_f1', math.nan):7.3f} "
        f"{r['estimated_notes']:4.0f}/{r['reference_notes']:<4.0f} {r['stft_distance']:6.2f} "
        f"{r['log_mel_distance_db']:6.2f} {r['onset_envelope_corr']:6.3f} {r['chroma_cosine']:6.3f}"
      )
  for level, c in result.get("codes", {}).items():
    carried = (
      f", {c['information_bits']:.2f} bits/code about the score (of {c['label_entropy_bits']:.2f}; {c['clips']} clips)"
      if "information_bits" in c
      else ""
    )
    lines.append(f"{level} codes: usage {c['usage']:.2f}, entropy {c['entropy_bits']:.2f} bits/code{carried}")
  if "generated" in result:
    s = result["generated"]["summary"]
    lines.append("generated")
    lines.append(
      f"  notes/s {s['notes_per_s']:.2f}  pitched frames {s['pitched_fraction']:.2f}  "
      f"polyphony {s['polyphony']:.2f}  pitch-class dist {s['pitch_class_distance']:.2f}  "
      f"duration dist {s['duration_distance']:.2f}  (vs {s['training_notes_from']}; pitch-class dist between "
      f"their two halves {s['training_pitch_class_halves_distance']:.2f})"
    )
    lines.append(
      f"  flatness {s['flatness_db']:.1f} dB  (training audio {s['training_flatness_db']:.1f} dB, "
      f"white noise {s['noise_flatness_db']:.1f} dB)"
    )
    if "structure" in s:
      lines.append(
        f"  structure {s['structure']:.2f}: pitch classes of the first and last 5 s correlated (training clips "
        f"{s['training_structure_same_piece']:.2f}; different pieces {s['training_structure_different_pieces']:.2f})"
      )
  lines.append(f"transcriber: {result['transcriber_s_per_audio_s']:.3f} s of compute per s of audio")
  return "\n".join(lines)


FLAGS = flags.FLAGS


def main(argv):
  del argv
  metrics.require()
  root = Path(FLAGS.workdir)
  levels, prior = stack.open_stack(root, with_prior=FLAGS.generate > 0)
  if FLAGS.generate and prior is None:
    print(f"{root}: no prior/, so no generated audio to evaluate")
  result = {"workdir": str(root)} | evaluate_stack(
    levels,
    prior,
    FLAGS.clips,
    FLAGS.seconds,
    FLAGS.generate,
    FLAGS.levels_used,
    FLAGS.temperature,
    FLAGS.prior_temperature,
    FLAGS.seed,
    FLAGS.midi_root,
    FLAGS.soft_codes,
  )
  out = Path(FLAGS.out or root / "eval" / "metrics.json")
  atomic_write_bytes(out, json.dumps(result, indent=1).encode())
  print(format_table(result))
  print(f"wrote {out}")


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "Root with level1/, level2/, ..., prior/.", required=True)
  flags.DEFINE_integer("clips", 4, "Validation clips to reconstruct.")
  flags.DEFINE_float("seconds", 4.0, "Seconds per clip (reconstructed and generated).")
  flags.DEFINE_integer("generate", 2, "Clips to generate with the prior (0: none; skipped without a prior).")
  flags.DEFINE_integer("levels_used", None, "Levels to encode through (default: all).")
  flags.DEFINE_float("temperature", 0.0, "The decoders' sampling temperature (0: argmax, deterministic).")
  flags.DEFINE_float("prior_temperature", 1.0, "The prior's sampling temperature (with --generate).")
  flags.DEFINE_integer("seed", 0, "Random seed.")
  flags.DEFINE_bool(
    "soft_codes",
    False,
    "Condition each level on the expected code vector under the prediction of the level above (stack.Sampler).",
  )
  flags.DEFINE_string(
    "midi_root",
    None,
    "Folder with the dataset's MIDI and metadata CSV (default: the folder the prepared dataset was made from).",
  )
  flags.DEFINE_string("out", None, "JSON output (default: WORKDIR/eval/metrics.json).")
  from argmax_music import cli

  cli.run(main, metrics.MissingDependencies, stack.StackError)
