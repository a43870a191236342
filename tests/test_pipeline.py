import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from argmax_music import sharding
from argmax_music.data import dataset, pipeline
from argmax_music.data.dataset import DatasetError


def test_crops_shape_dtype_and_global_sharding(tiny_data):
  data = dataset.PreparedDataset(tiny_data)
  it = pipeline.train_iterator(data, crop=400, global_batch=8, seed=0)
  local = next(it)
  assert local.shape == (8, 400) and local.dtype == np.uint8
  mesh = sharding.make_mesh()
  assert mesh.devices.size == 4
  batch = sharding.global_batch(local, mesh)
  assert batch.shape == (8, 400) and batch.sharding.spec == P("data")
  assert [s.data.shape for s in batch.addressable_shards] == [(2, 400)] * 4
  np.testing.assert_array_equal(np.asarray(batch), local)


def test_processes_get_disjoint_examples(tiny_data):
  data = dataset.PreparedDataset(tiny_data)
  one = pipeline.train_iterator(data, 400, 8, seed=3, process_index=0, process_count=1)
  p0 = pipeline.train_iterator(data, 400, 8, seed=3, process_index=0, process_count=2)
  p1 = pipeline.train_iterator(data, 400, 8, seed=3, process_index=1, process_count=2)
  a, b, whole = next(p0), next(p1), next(one)
  assert a.shape == b.shape == (4, 400)
  rows = lambda x: {r.tobytes() for r in x}
  assert not rows(a) & rows(b)
  # Together the two processes see the same examples as one process would.
  assert rows(a) | rows(b) == rows(whole)


def test_restored_iterator_reproduces_the_next_batches(tiny_data):
  data = dataset.PreparedDataset(tiny_data)
  it = pipeline.train_iterator(data, 400, 4, seed=1)
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(3)]
  fresh = pipeline.train_iterator(data, 400, 4, seed=1)
  fresh.set_state(state)
  for e in expected:
    np.testing.assert_array_equal(next(fresh), e)
  other_seed = pipeline.train_iterator(data, 400, 4, seed=2)
  assert not np.array_equal(next(other_seed), next(pipeline.train_iterator(data, 400, 4, seed=1)))


def test_eval_batches_are_fixed(tiny_data):
  data = dataset.PreparedDataset(tiny_data)
  a = pipeline.eval_batches(data, 400, 4)
  b = pipeline.eval_batches(data, 400, 4)
  assert len(a) >= 1 and all(x.shape == (4, 400) for x in a)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  halves = [pipeline.eval_batches(data, 400, 4, process_index=i, process_count=2)[0] for i in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), a[0])


def test_crops_across_files_are_windows_of_the_files_end_to_end():
  """data.across_files: every crop is a window of the files laid end to end (some span a boundary, a file shorter
  than the crop is used), and locate names where it starts; without it each crop lies within one file."""
  arrays = [np.arange(0, 5), np.arange(100, 103), np.arange(200, 212)]
  joined = np.concatenate(arrays)
  within, across = pipeline.RandomCrops(arrays, 6, seed=0), pipeline.RandomCrops(arrays, 6, seed=0, across_files=True)
  starts = set()
  for i in range(200):
    crop = within(i)  # Only the third file is as long as a crop.
    assert crop[0] >= 200 and np.array_equal(crop, np.arange(crop[0], crop[0] + 6))
    file, start = across.locate(i)
    offset = sum(len(a) for a in arrays[:file]) + start
    np.testing.assert_array_equal(across(i), joined[offset : offset + 6])
    starts.add(offset)
  assert starts == set(range(len(joined) - 6 + 1))  # Every window, those over a boundary and the shortest file too.


def test_keyed_crops_give_each_timestep_the_key_of_its_file():
  """A key-conditioned prior's crops: the same codes as without keys, and beside each code the key of its file,
  which changes where a crop runs into the next file."""
  arrays = [np.arange(0, 5), np.arange(100, 103), np.arange(200, 212)]
  plain = pipeline.RandomCrops(arrays, 6, seed=0, across_files=True)
  keyed = pipeline.RandomCrops(arrays, 6, seed=0, across_files=True, keys=[7, 3, 20])
  file_of = {int(v): k for a, k in zip(arrays, [7, 3, 20]) for v in a}
  boundaries = 0
  for i in range(100):
    crop = keyed(i)
    np.testing.assert_array_equal(crop["codes"], plain(i))
    np.testing.assert_array_equal(crop["keys"], [file_of[int(v)] for v in crop["codes"]])
    boundaries += len(set(crop["keys"].tolist())) > 1
  assert boundaries > 10


def test_trimmed_crops_never_reach_a_file_end():
  """data.trim_end_seconds: no crop holds any of each file's last `trim_end` timesteps, every other window is
  drawn, and a trim that leaves no file a crop long is an error that names the key."""
  arrays = [np.arange(0, 10), np.arange(100, 120)]
  crops = pipeline.RandomCrops(arrays, 4, seed=0, trim_end=3)
  seen = {int(crops(i)[0]) for i in range(300)}
  assert seen == set(range(0, 4)) | set(range(100, 114))  # Starts that keep the crop clear of the last 3.
  with pytest.raises(DatasetError, match=r"once its last 17 are left out \(data.trim_end_seconds\)"):
    pipeline.RandomCrops(arrays, 4, seed=0, trim_end=17)
