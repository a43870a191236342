"""Training throughput by model size and device count: compile time, step time, samples/s and memory, as JSON.

  python benchmarks/train_step.py [--config=configs/small_scale.py:amae_hop20] [--channels=16,32,64]
      [--devices=1,2] [--cpu_devices=2] [--steps=10] [--plot=train_step.png]

A random mu-law batch of the config's crop and global batch (no data needed), one jitted
step over a mesh of the first N devices, as in training (`measure.TrainStep`). --config is
repeatable and names configs as everywhere else (file path, optional variant after a colon). --channels sets the
decoder's residual and gate channels (skip = 2x) to sweep the model size; --cpu_devices forces
that many host devices on a CPU-only machine (they share its cores, so scaling there shows the
overhead of sharding, not a speed-up). Memory: what XLA plans for one step (`step_mb`), the
device's peak where the backend reports it, and the host's peak RSS.
"""

import json
import os

from absl import flags

from argmax_music import cli

flags.DEFINE_multi_string("config", ["configs/cpu_demo.py"], "Config file[:variant] (repeatable).")
flags.DEFINE_list("channels", [], "Decoder channel counts to sweep (default: the config's).")
flags.DEFINE_list("devices", ["1"], "Device counts to sweep, e.g. 1,2,4.")
flags.DEFINE_integer("cpu_devices", 0, "Force this many host devices (CPU only).")
flags.DEFINE_integer("steps", 10, "Timed steps per measurement.")
flags.DEFINE_integer("batch_size", None, "Override the config's global batch.")
flags.DEFINE_string("plot", None, "Write a PNG of throughput vs size and devices.")
FLAGS = flags.FLAGS


def measure(spec: str, channels: int | None, devices: int, steps: int, batch_size: int | None):
  import jax
  import measure as m

  from argmax_music import config as config_lib
  from argmax_music import sharding

  config = config_lib.load(spec)
  if channels:
    config.model.decoder.update(residual_channels=channels, gate_channels=channels, skip_channels=2 * channels)
  if batch_size:
    config.train.batch_size = batch_size
  step = m.TrainStep(config, 256, sharding.make_mesh(jax.devices()[:devices]))
  step_s = step.seconds(steps)
  examples = config.train.batch_size / step_s
  return {
    "config": spec,
    "decoder_channels": config.model.decoder.residual_channels,
    "devices": devices,
    "params_m": step.params / 1e6,
    "batch": config.train.batch_size,
    "crop": config.data.crop,
    "compile_s": step.compile_s,
    "step_s": step_s,
    "examples_per_s": examples,
    "timesteps_per_s": examples * config.data.crop,
    "step_mb": m.compiled_memory_mb(step.compiled),
    **m.peak_memory_mb(),
  }


def plot(path: str, results: list[dict]) -> None:
  from argmax_music import plots

  by_devices, by_size = {}, {}
  for r in sorted(results, key=lambda r: r["params_m"]):
    xs, ys = by_devices.setdefault(f"{r['devices']} devices", ([], []))
    xs.append(r["params_m"])
    ys.append(r["timesteps_per_s"])
  for r in sorted(results, key=lambda r: r["devices"]):
    xs, ys = by_size.setdefault(f"{r['config']}, {r['params_m']:.2f}M params", ([], []))
    xs.append(r["devices"])
    ys.append(r["timesteps_per_s"])
  plots.save_panels(
    path,
    [
      plots.Panel(
        "training throughput by model size", "parameters (millions)", "timesteps/s", by_devices, log_x=True, log_y=True
      ),
      plots.Panel("training throughput by device count", "devices", "timesteps/s", by_size),
    ],
  )


def main(argv):
  del argv
  if FLAGS.cpu_devices:  # Read when JAX starts its backend, so before the first device query.
    os.environ["XLA_FLAGS"] = (
      os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={FLAGS.cpu_devices}"
    )
  import jax

  channels = [int(c) for c in FLAGS.channels] or [None]
  results = [
    measure(spec, c, int(d), FLAGS.steps, FLAGS.batch_size)
    for spec in FLAGS.config
    for c in channels
    for d in FLAGS.devices
  ]
  if FLAGS.plot:
    plot(FLAGS.plot, results)
  print(
    json.dumps(
      {
        "benchmark": "train_step",
        "device": jax.devices()[0].device_kind,
        "platform": jax.devices()[0].platform,
        "results": results,
      }
    )
  )


if __name__ == "__main__":
  cli.run(main)
