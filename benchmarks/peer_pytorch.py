"""The same WaveNet here and in PyTorch's `wavenet_vocoder` (r9y9, 0.1.1): training and batch-1 sampling speed.

  python benchmarks/peer_pytorch.py [--peer_python=/tmp/peer_venv/bin/python] [--baseline=../old_checkout]
      [--batch=8 --crop=8000 --repeats=3 --sample_length=4000 --peer_sample_length=1000 --threads=2]
      [--peer_keep_memory]

The model: 20 layers (2 x dilations 1..512), kernel 2, 64 residual channels, a 128-wide
gate convolution (here `gate_channels=64`: the convolution makes 2 x 64 channels; there
`gate_channels=128`), 64 skip channels, 256-way softmax, no conditioning, no dropout, no
weight normalisation. Training: one Adam step on a batch of --batch x --crop mu-law
timesteps (timesteps/s). Sampling: batch 1, the project's cached sampler against the peer's
`incremental_forward` (samples/s). Each side runs in its own process, built and warmed up
first; then the timed runs alternate side by side, --repeats times, and the medians and their
ratios (project / peer) are printed as JSON. --baseline=DIR adds another checkout of this
project (e.g. a `git worktree` of an older commit) as a third side. This project's side keeps
the host memory XLA frees for reuse, as its command line tools do (`argmax_music.host_memory`);
--peer_keep_memory gives the peer's process the same glibc settings (a PyTorch user could set
them too; by default the peer runs as installed).

The peer lives in a throwaway virtual environment, kept apart from the project's:

  python3 -m venv /tmp/peer_venv
  /tmp/peer_venv/bin/pip install torch numpy absl-py  # torch: the CPU wheel (--index-url https://download.pytorch.org/whl/cpu)
  /tmp/peer_venv/bin/pip download --no-deps --no-binary :all: wavenet_vocoder==0.1.1 -d /tmp/peer_dl
  /tmp/peer_venv/bin/pip install --no-deps /tmp/peer_dl/wavenet_vocoder-0.1.1.tar.gz

(--no-deps: the model itself needs only torch and numpy; the package's other requirements
serve its training scripts.) When that interpreter or package is missing, the JSON says so
in `skipped` and the script exits 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import flops
from absl import app, flags

flags.DEFINE_string("peer_python", "/tmp/peer_venv/bin/python", "Interpreter with torch and wavenet_vocoder.")
flags.DEFINE_string("baseline", None, "Another checkout of this project, timed as a third side.")
flags.DEFINE_integer("batch", 8, "Training batch size.")
flags.DEFINE_integer("crop", 8000, "Training timesteps per example.")
flags.DEFINE_integer("repeats", 3, "Timed runs per side (the median is reported).")
flags.DEFINE_integer("sample_length", 4000, "Samples per timed sampling run of this project.")
flags.DEFINE_integer("peer_sample_length", 1000, "Samples per timed sampling run of the peer (it is slow).")
flags.DEFINE_integer("threads", 2, "CPU threads for torch (XLA uses every core).")
flags.DEFINE_bool("peer_keep_memory", False, "Give the peer's process this project's malloc settings too.")
flags.DEFINE_string("worker", None, "Internal: 'project' or 'peer', serving timings over stdin/stdout.")
FLAGS = flags.FLAGS

LAYERS, STACKS, RESIDUAL, GATE, SKIP, CLASSES = 20, 2, 64, 64, 64, 256


class ProjectSide:
  """This project's WaveNet: a jitted Adam train step and the cached sampler."""

  def __init__(self, batch: int, crop: int, sample_length: int):
    import jax
    import jax.numpy as jnp
    import optax

    from argmax_music.models import generate
    from argmax_music.models.wavenet import WaveNet

    try:
      from argmax_music import host_memory
    except ImportError:  # A --baseline checkout from before host_memory: malloc as it was.
      pass
    else:
      host_memory.keep_freed_memory()  # As the command line tools do, before JAX runs anything.

    model = WaveNet(
      CLASSES,
      layers=LAYERS,
      cycle=LAYERS // STACKS,
      kernel_size=2,
      residual_channels=RESIDUAL,
      gate_channels=GATE,
      skip_channels=SKIP,
    )
    tokens = jax.random.randint(jax.random.key(0), (batch, crop), 0, CLASSES)
    params = model.init(jax.random.key(1), tokens[:, :16])["params"]
    optimizer = optax.adam(1e-3)

    def loss_fn(params, tokens):
      logp = jax.nn.log_softmax(model.apply({"params": params}, tokens), axis=-1)
      return -jnp.take_along_axis(logp, tokens[..., None], axis=-1).mean()

    @jax.jit
    def train_step(params, opt_state, tokens):
      loss, grads = jax.value_and_grad(loss_fn)(params, tokens)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss

    self.parameters = sum(x.size for x in jax.tree.leaves(params))
    state = [params, optimizer.init(params)]

    def train():
      state[0], state[1], loss = train_step(state[0], state[1], tokens)
      jax.block_until_ready(loss)

    self.train = train
    self.sample = lambda: jax.block_until_ready(generate.generate(model, state[0], jax.random.key(2), 1, sample_length))
    self.train()
    self.sample()


class PeerSide:
  """wavenet_vocoder's WaveNet: a torch Adam train step on one-hot inputs and `incremental_forward`."""

  def __init__(self, batch: int, crop: int, sample_length: int):
    import torch
    import torch.nn.functional as F
    from wavenet_vocoder import WaveNet

    torch.set_num_threads(FLAGS.threads)
    torch.manual_seed(0)
    model = WaveNet(
      out_channels=CLASSES,
      layers=LAYERS,
      stacks=STACKS,
      residual_channels=RESIDUAL,
      gate_channels=2 * GATE,
      skip_out_channels=SKIP,
      kernel_size=2,
      dropout=0.0,
      cin_channels=-1,
      gin_channels=-1,
      weight_normalization=False,
      scalar_input=False,
    )
    tokens = torch.randint(0, CLASSES, (batch, crop))
    inputs = F.one_hot(tokens, CLASSES).float().transpose(1, 2).contiguous()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    self.parameters = sum(p.numel() for p in model.parameters())

    def train():
      model.train()
      optimizer.zero_grad()
      loss = F.cross_entropy(model(inputs)[:, :, :-1], tokens[:, 1:])
      loss.backward()
      optimizer.step()

    def sample():
      model.eval()
      with torch.no_grad():
        model.incremental_forward(T=sample_length, softmax=True, quantize=True)

    self.train, self.sample = train, sample
    self.train()
    self.sample()


def serve(kind: str):
  """Worker loop: the first line builds the side ('BATCH CROP SAMPLE_LENGTH'); then 'train' / 'sample' time one run."""
  side = None
  for line in sys.stdin:
    command = line.strip()
    if side is None:
      side = (ProjectSide if kind == "project" else PeerSide)(*map(int, command.split()))
      print(json.dumps({"parameters": int(side.parameters)}), flush=True)
      continue
    start = time.perf_counter()
    getattr(side, command)()
    print(time.perf_counter() - start, flush=True)


class Worker:
  """One side in its own process (its interpreter and import path), answering one line per request."""

  def __init__(self, python: str, kind: str, pythonpath: str | None, sample_length: int, env: dict | None = None):
    env = dict(os.environ, **(env or {}))
    if pythonpath:
      env["PYTHONPATH"] = pythonpath
    self.process = subprocess.Popen(
      [python, os.path.abspath(__file__), f"--worker={kind}", f"--threads={FLAGS.threads}"],
      env=env,
      text=True,
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
    )
    self.sample_length = sample_length
    self.info = json.loads(self.ask(f"{FLAGS.batch} {FLAGS.crop} {sample_length}"))

  def ask(self, line: str) -> str:
    self.process.stdin.write(line + "\n")
    self.process.stdin.flush()
    answer = self.process.stdout.readline()
    if not answer:
      raise RuntimeError(f"worker {self.process.args} exited with {self.process.wait()}")
    return answer.strip()

  def close(self):
    self.process.stdin.close()
    self.process.wait()


def peer_missing() -> str | None:
  """Why the peer cannot run, or None."""
  if not os.path.exists(FLAGS.peer_python):
    return f"no peer interpreter at {FLAGS.peer_python} (see this script's docstring to make one)"
  check = subprocess.run([FLAGS.peer_python, "-c", "import torch, wavenet_vocoder"], capture_output=True, text=True)
  if check.returncode:
    return f"{FLAGS.peer_python} cannot import torch and wavenet_vocoder: {check.stderr.strip().splitlines()[-1]}"
  return None


def main(argv):
  del argv
  if FLAGS.worker:
    return serve(FLAGS.worker)
  report = {
    "benchmark": "peer_pytorch",
    "peer_library": "wavenet_vocoder 0.1.1",
    "batch": FLAGS.batch,
    "crop": FLAGS.crop,
    "threads": FLAGS.threads,
    "repeats": FLAGS.repeats,
    "peer_keep_memory": FLAGS.peer_keep_memory,
    "load_average_start": os.getloadavg(),
  }
  reason = peer_missing()
  if reason:
    print(json.dumps({**report, "skipped": reason}))
    return
  from argmax_music import host_memory  # Here, not at the top: the peer's worker runs this file without it.

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  peer_env = {"GLIBC_TUNABLES": host_memory.GLIBC_TUNABLES} if FLAGS.peer_keep_memory else None
  sides = {
    "project": Worker(sys.executable, "project", root, FLAGS.sample_length),
    "peer": Worker(FLAGS.peer_python, "peer", None, FLAGS.peer_sample_length, peer_env),
  }
  if FLAGS.baseline:
    sides["baseline"] = Worker(sys.executable, "project", os.path.abspath(FLAGS.baseline), FLAGS.sample_length)
  seconds = {name: {"train": [], "sample": []} for name in sides}
  for _ in range(FLAGS.repeats):  # Rep by rep, side by side: every side sees the same load.
    for task in ("train", "sample"):
      for name, worker in sides.items():
        seconds[name][task].append(float(worker.ask(task)))
  for name, worker in sides.items():
    train_s, sample_s = statistics.median(seconds[name]["train"]), statistics.median(seconds[name]["sample"])
    report[name] = {
      "parameters": worker.info["parameters"],
      "train_seconds": seconds[name]["train"],
      "train_timesteps_per_s": FLAGS.batch * FLAGS.crop / train_s,
      "sample_seconds": seconds[name]["sample"],
      "sample_samples_per_s": worker.sample_length / sample_s,
    }
    worker.close()
  for name in sides:
    if name != "peer":
      for key in ("train_timesteps_per_s", "sample_samples_per_s"):
        report[f"{name}_over_peer_{key}"] = report[name][key] / report["peer"][key]
  macs = flops.wavenet_forward_macs(LAYERS, 2, RESIDUAL, GATE, SKIP, CLASSES)
  report["train_gflop_per_step"] = flops.train_flops(macs, FLAGS.batch * FLAGS.crop) / 1e9
  for name in sides:
    report[name]["train_gflop_per_s"] = (
      report["train_gflop_per_step"] * report[name]["train_timesteps_per_s"] / (FLAGS.batch * FLAGS.crop)
    )
  report["load_average_end"] = os.getloadavg()
  print(json.dumps(report))


if __name__ == "__main__":
  app.run(main)
