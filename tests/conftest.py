"""Test set-up: 4 forced CPU devices (before JAX starts) and small real datasets made on disk.

The tests' models are tiny, so XLA's compiler takes more of the suite's time than the programs it makes:
every test and every subprocess it starts compiles without LLVM's optimisations (about 3x faster) and
shares one JAX compilation cache for the session, so the many tests that train the same tiny model
compile it once (set JAX_COMPILATION_CACHE_DIR to keep the cache across runs).
"""

import atexit
import os
import shutil
import sys
import tempfile

FAST_COMPILE = "--xla_backend_optimization_level=0"


def xla_flags(devices: int) -> str:
  """XLA_FLAGS for a test process with `devices` forced CPU devices."""
  return f"{FAST_COMPILE} --xla_force_host_platform_device_count={devices}"


os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {xla_flags(4)}"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="argmax-music-jax-cache-")
  atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from argmax_music import metrics  # noqa: E402
from argmax_music.data import prepare  # noqa: E402
from argmax_music.models.wavenet import WaveNet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
needs_eval = pytest.mark.skipif(
  bool(metrics.missing_dependencies()), reason=f"evaluation dependencies missing: {metrics.INSTALL}"
)


def write_tone(path: Path, seconds: float, freq: float, rate: int = 16000, channels: int = 1) -> None:
  """A decaying piano-like tone with a few harmonics."""
  t = np.arange(int(seconds * rate)) / rate
  x = sum(np.sin(2 * np.pi * freq * h * t) / h for h in (1, 2, 3)) * 0.3 * np.exp(-1.5 * (t % 1.0))
  if channels > 1:
    x = np.stack([x * (1 - 0.2 * c) for c in range(channels)], axis=1)
  path.parent.mkdir(parents=True, exist_ok=True)
  sf.write(path, x, rate)


def small_wavenet(num_classes=256, layers=6, cycle=3, kernel_size=2, cond_channels=0, channels=8) -> WaveNet:
  """A WaveNet with `channels` residual and gate channels and twice as many skip channels."""
  return WaveNet(
    num_classes,
    layers=layers,
    cycle=cycle,
    kernel_size=kernel_size,
    residual_channels=channels,
    gate_channels=channels,
    skip_channels=2 * channels,
    cond_channels=cond_channels,
  )


def tiny_config(data_dir, stage: str = "ada", **train_overrides):
  """configs/tiny.py for `stage` on the prepared data in `data_dir`, with config.train overrides."""
  from configs import tiny

  c = tiny.get_config(stage)
  c.data.dir = str(data_dir)
  c.train.update(train_overrides)
  return c


def tiny_train_command(workdir, data_dir, **train_overrides) -> list[str]:
  """The command line that trains configs/tiny.py in `workdir` on `data_dir`, with config.train overrides."""
  overrides = [f"--config.train.{k}={v}" for k, v in train_overrides.items()]
  return [
    sys.executable,
    "-m",
    "argmax_music.train",
    "--config=configs/tiny.py",
    f"--workdir={workdir}",
    f"--config.data.dir={data_dir}",
    *overrides,
  ]


@pytest.fixture(scope="session")
def tone_folder(tmp_path_factory) -> Path:
  """12 two-second tones at 16 kHz."""
  root = tmp_path_factory.mktemp("tones")
  for i in range(12):
    write_tone(root / f"tone{i:02d}.wav", 2.0, 110.0 * 2 ** (i / 12))
  return root


@pytest.fixture(scope="session")
def tiny_data(tone_folder, tmp_path_factory) -> Path:
  """The tones prepared (a third of them for validation)."""
  out = tmp_path_factory.mktemp("prepared")
  prepare.prepare(tone_folder, out, validation_fraction=0.3, test_fraction=0.0)
  return out


@pytest.fixture(scope="session")
def tiny_stack(tiny_data, tmp_path_factory) -> Path:
  """A trained tiny stack: ROOT/level1 (AMAE, hop 8, K=16), ROOT/codes (its codes), ROOT/prior."""
  from argmax_music import encode, train
  from configs import tiny

  root = tmp_path_factory.mktemp("stack")
  level1 = tiny.get_config("ada")
  level1.data.dir = str(tiny_data)
  train.train(level1, root / "level1")
  encode.encode_dataset(root / "level1", root / "codes")
  prior = tiny.get_config("prior")
  prior.data.dir = str(root / "codes")
  train.train(prior, root / "prior")
  return root
