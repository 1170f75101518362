"""The training sampler: windows, edge padding, decoding, normalization, loader workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from robot_learning.store import Codec, KeySpec, StoreReader, StoreSchema, StoreWriter
from robot_learning.store.normalization import compute_stats
from robot_learning.store.sample_windows import split_episodes
from robot_learning.store.sampler import ACTION_IS_PAD, BatchedView, SequenceDataset, make_loader

ROOT = Path(__file__).resolve().parents[2]
LENGTHS = (5, 9, 4)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Episodes whose ``step`` value is the row's global index, so windows can be read off."""
    schema = StoreSchema(
        keys={
            "camera": KeySpec((24, 32, 3), "uint8", Codec.JPEG, quality=95),
            "state": KeySpec((2,), "float32"),
            "action": KeySpec((3,), "float64"),
        }
    )
    path = tmp_path_factory.mktemp("sampler") / "s.zarr"
    row = 0
    with StoreWriter(path, schema) as writer:
        for e, length in enumerate(LENGTHS):
            writer.begin_episode(source="teleop", task="t")
            for _ in range(length):
                writer.append(
                    {
                        "camera": np.full((24, 32, 3), 10 * row, np.uint8),
                        "state": np.array([row, -row], np.float32),
                        "action": np.array([row, 2 * row, e], np.float64),
                    }
                )
                row += 1
            writer.commit(success=True)
        writer.begin_episode(source="human_video", task="t")
        writer.append({"camera": np.zeros((24, 32, 3), np.uint8)})
        writer.commit(success=True)
    return path


def test_windows_repeat_edge_rows_and_mark_padding(store):
    ds = SequenceDataset(
        store,
        obs_keys=["state", "camera"],
        action_keys=["action"],
        obs_horizon=3,
        action_horizon=4,
        select={"source": "teleop"},
        image_dtype="float32",
    )
    assert len(ds) == sum(LENGTHS)
    first = ds[0]  # episode 0, step 0: observations padded before the start
    np.testing.assert_array_equal(first["state"][:, 0], [0, 0, 0])
    np.testing.assert_array_equal(first["action"][:, 0], [0, 1, 2, 3])
    assert not first[ACTION_IS_PAD].any()
    last = ds[LENGTHS[0] - 1]  # episode 0, last step: actions padded past the end
    np.testing.assert_array_equal(last["state"][:, 0], [2, 3, 4])
    np.testing.assert_array_equal(last["action"][:, 0], [4, 4, 4, 4])
    np.testing.assert_array_equal(last[ACTION_IS_PAD], [False, True, True, True])
    second = ds[LENGTHS[0]]  # episode 1 never borrows rows from episode 0
    np.testing.assert_array_equal(second["state"][:, 0], [5, 5, 5])
    assert int(second["episode"]) == 1 and int(second["step"]) == 0
    assert first["camera"].shape == (3, 3, 24, 32) and first["camera"].dtype == torch.float32
    np.testing.assert_allclose(last["camera"][:, 0, 0, 0].numpy() * 255, [20, 30, 40], atol=3)


def test_image_transform_and_normalization(store):
    ds = SequenceDataset(
        store,
        obs_keys=["state", "camera"],
        action_keys=["action"],
        obs_horizon=1,
        action_horizon=2,
        select={"source": "teleop"},
        image_transform=lambda x: x[..., :16, :16],
        normalization={"state": "mean_std", "action": "min_max"},
    )
    sample = ds[3]
    assert sample["camera"].shape == (1, 3, 16, 16) and sample["camera"].dtype == torch.uint8
    rows = np.arange(sum(LENGTHS), dtype=np.float64)
    expected = (rows[3] - rows.mean()) / rows.std()
    assert sample["state"][0, 0].item() == pytest.approx(expected, rel=1e-5)
    actions = torch.stack([ds[i]["action"] for i in range(len(ds))])
    assert actions.min().item() == pytest.approx(-1.0)
    assert actions.max().item() == pytest.approx(1.0)
    # Statistics were saved with the store, keyed by the selection.
    reader = StoreReader(store)
    saved = reader.meta_attrs()["normalization"][ds.fingerprint]["keys"]
    assert saved["state"]["mean"][0] == pytest.approx(rows.mean())
    image_stats = compute_stats(reader, ["camera"], reader.select(source="teleop"))["camera"]
    assert len(image_stats.mean) == 3


def test_episodes_lacking_a_key_are_refused(store):
    with pytest.raises(ValueError, match="key 'state' is missing in episodes \\[3\\]"):
        SequenceDataset(store, obs_keys=["state"], action_keys=["action"])


def test_split_is_by_episode():
    train, val = split_episodes(list(range(10)), 0.2, seed=1)
    assert len(val) == 2 and not set(train) & set(val) and sorted(train + val) == list(range(10))


def test_batched_loader_in_workers_matches_per_sample_reads(store):
    ds = SequenceDataset(
        store,
        obs_keys=["camera", "state"],
        action_keys=["action"],
        obs_horizon=2,
        action_horizon=3,
        select={"source": "teleop"},
    )
    plain = list(DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="spawn"))
    fast = list(
        make_loader(ds, batch_size=4, shuffle=False, num_workers=2, multiprocessing_context="spawn")
    )
    assert len(fast) == len(plain) and sum(len(b["action"]) for b in fast) == len(ds)
    for a, b in zip(plain, fast, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key].shape == b[key].shape, key
            assert torch.equal(a[key], b[key]), key
    assert fast[0]["camera"].dtype == torch.uint8 and fast[0]["camera"].shape[1:] == (2, 3, 24, 32)


def test_codecs_register_in_a_process_that_never_imports_the_package(store):
    code = (
        "import sys, zarr\n"
        "assert 'robot_learning' not in sys.modules\n"
        f"a = zarr.open_array({str(store)!r}, path='data/camera')\n"
        "print(int(a[7].mean()))\n"
        "assert not any(m.startswith('robot_learning.sim') for m in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert abs(int(result.stdout) - 70) <= 2


@pytest.mark.parametrize(
    ("image_dtype", "persistent"), [("uint8", True), ("float32", True), ("uint8", False)]
)
def test_loader_workers_reuse_buffers_only_once_training_let_go(store, image_dtype, persistent):
    """Workers decode into buffers they recycle; a batch still held (as a view, or only as a
    numpy array of it) keeps its pixels, however many batches come after it, and the late
    release of a batch from workers of an earlier epoch frees nothing of the new ones'."""
    ds = SequenceDataset(
        store,
        obs_keys=["camera"],
        action_keys=["action"],
        select={"source": "teleop"},
        image_dtype=image_dtype,
    )
    loader = DataLoader(
        BatchedView(ds),
        batch_size=None,
        sampler=BatchSampler(SequentialSampler(ds), batch_size=2, drop_last=False),
        num_workers=2,
        persistent_workers=persistent,
    )
    held: list[tuple[list[int], object]] = []
    batches, batch = 0, None
    for _ in range(6):  # epochs: ~27 batches a worker, more than it keeps buffers
        for k, batch in enumerate(loader):  # noqa: B007 (the last batch outlives its epoch)
            indices = [2 * k, 2 * k + 1][: len(batch["action"])]
            expected = ds.get_batch(indices)["camera"]
            assert torch.equal(batch["camera"], expected)
            if batches % 4 == 0:
                held.append((indices, batch["camera"].numpy()))  # the tensor itself dropped
            elif batches % 4 == 1:
                held.append((indices, batch["camera"][:, 1]))  # a view of it
            batches += 1
    assert int(loader.dataset.buffers.reused.sum()) > 0  # buffers did come back
    for indices, kept in held:
        expected = ds.get_batch(indices)["camera"]
        if isinstance(kept, np.ndarray):
            np.testing.assert_array_equal(kept, expected.numpy())
        else:
            assert torch.equal(kept, expected[:, 1])
