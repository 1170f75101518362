"""Committed episodes to an S3-compatible server on loopback (moto in server mode, s3fs), and
training reads from it."""

from __future__ import annotations

import json
import logging

import fsspec
import numpy as np
import pytest

from robot_learning.store import StoreReader, StoreWriter
from robot_learning.store.remote import upload, verify_upload
from robot_learning.store.sampler import SequenceDataset, make_loader
from tests.store import helpers

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

SHARD = 4


@pytest.fixture(scope="module")
def s3_endpoint():
    """A real S3 protocol server (moto) bound to 127.0.0.1 on a free port."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch, request):
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", s3_endpoint),
    ):
        monkeypatch.setenv(name, value)
    fsspec.filesystem("s3", skip_instance_cache=True).clear_instance_cache()
    fs = fsspec.filesystem("s3")
    name = request.node.name.replace("_", "-")[:50].strip("-")
    fs.mkdir(name)
    return fs, f"s3://{name}"


def record(writer, seeds, length=6):
    for seed in seeds:
        writer.begin_episode(source="teleop", task="lift", notes={"seed": seed})
        writer.append_batch(helpers.episode(seed, length))
        writer.commit(success=True)


def test_upload_sends_committed_episodes_only_and_resumes(tmp_path, bucket):
    fs, url = bucket
    local = tmp_path / "s.zarr"
    remote = f"{url}/demos.zarr"
    with StoreWriter(local, helpers.schema(), shard_frames=SHARD) as writer:
        record(writer, [0, 1, 2], length=5)  # 15 rows: 3 full shards and a tail of 3
        first = upload(local, remote)
        assert first.episodes == 3 and first.files_skipped == 0
        # Mid-episode: 7 uncommitted rows are on disk (a full shard among them).
        writer.begin_episode(source="teleop", task="lift")
        writer.append_batch(helpers.episode(9, 7))
        writer._drain()
        second = upload(local, remote)
        assert second.episodes == 3 and second.files_skipped >= 3  # full shards: sent once
        reader = StoreReader(remote)
        assert reader.num_episodes == 3 and reader.num_steps == 15
        shard_files = fs.find(f"{remote}/data/camera_front")
        assert len([f for f in shard_files if not f.endswith("zarr.json")]) == 4
        tail = fs.cat_file(f"{remote}/data/camera_front/c/3/0/0/0")
        index = np.frombuffer(tail[-(16 * SHARD + 4) : -4], "<u8").reshape(SHARD, 2)
        assert (index[3] == 2**64 - 1).all()  # row 15 (uncommitted) never left the machine
        meta = json.loads(fs.cat_file(f"{remote}/data/robot_state/zarr.json"))
        assert meta["shape"][0] == 15
        writer.discard()
        record(writer, [3, 4], length=5)
    third = upload(local, remote)
    assert third.episodes == 5 and verify_upload(local, remote) == []
    remote_reader, local_reader = StoreReader(remote), StoreReader(local)
    rows = list(range(remote_reader.num_steps))
    for key in ("camera_front", "camera_depth"):
        np.testing.assert_array_equal(
            remote_reader.read_frames(key, rows[::-1]), local_reader.read_frames(key, rows[::-1])
        )
    for e in range(5):
        seed = remote_reader.episode(e).info.notes["seed"]
        got = remote_reader.read_episode(e)
        assert helpers.lossless_digest(got) == helpers.lossless_digest(helpers.episode(seed, 5))


def test_training_reads_from_the_bucket_with_loader_workers(tmp_path, bucket):
    _, url = bucket
    local = tmp_path / "s.zarr"
    with StoreWriter(local, helpers.schema()) as writer:
        record(writer, [0, 1], length=8)
    upload(local, f"{url}/s.zarr")
    dataset = SequenceDataset(
        f"{url}/s.zarr", obs_keys=["camera_front", "robot_state"], action_keys=["action"]
    )
    local_set = SequenceDataset(
        local, obs_keys=["camera_front", "robot_state"], action_keys=["action"]
    )
    batch = next(iter(make_loader(dataset, batch_size=16, num_workers=2, shuffle=False)))
    expected = local_set.get_batch(list(range(16)))
    for key in ("camera_front", "robot_state", "action"):
        np.testing.assert_array_equal(batch[key].numpy(), expected[key].numpy())
