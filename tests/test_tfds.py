"""The optional TFDS source: a tiny TFDS audio dataset built locally, exported, then prepared."""

import sys

import numpy as np
import pytest

from argmax_music.data import dataset, prepare, tfds_source


def register_tiny_tones():
  """Register the local TFDS dataset 'tiny_tones' (defining its builder class registers it)."""
  tfds = pytest.importorskip("tensorflow_datasets", reason="TensorFlow/TFDS not installed: pip install '.[tfds]'")

  class TinyTones(tfds.core.GeneratorBasedBuilder):
    """Six int16 tones at 16 kHz, in train/validation/test."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict(
          {"audio": tfds.features.Audio(shape=(None,), dtype=np.int16, sample_rate=16000), "id": tfds.features.Text()}
        ),
      )

    def _split_generators(self, dl_manager):
      del dl_manager
      return {
        "train": self._generate_examples(0, 4),
        "validation": self._generate_examples(4, 5),
        "test": self._generate_examples(5, 6),
      }

    def _generate_examples(self, start, stop):
      for i in range(start, stop):
        t = np.arange(24000) / 16000
        yield str(i), {"audio": (12000 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.int16), "id": str(i)}


def test_tfds_without_the_extra_names_the_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # As if the extra were not installed.
  with pytest.raises(ImportError, match=r"pip install '\.\[tfds\]'"):
    tfds_source.export_tfds("tiny_tones", "unused")


@pytest.mark.slow
def test_tfds_dataset_exports_and_prepares_with_its_splits(tmp_path):
  register_tiny_tones()
  n = tfds_source.export_tfds("tiny_tones", tmp_path / "exported", data_dir=str(tmp_path / "tfds"))
  assert n == 6
  manifest = prepare.prepare(tmp_path / "exported", tmp_path / "prepared")
  assert [len(manifest["splits"][s]) for s in dataset.SPLITS] == [4, 1, 1]
  data = dataset.PreparedDataset(tmp_path / "prepared")
  (validation,) = data.arrays("validation")
  assert len(validation) == 24000 and validation.dtype == np.uint8
  assert validation.max() > 200 and validation.min() < 55  # the tone's amplitude survived (~0.37 full scale)
