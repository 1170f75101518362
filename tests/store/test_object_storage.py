"""Committed episodes to an S3-compatible server on loopback (moto in server mode, s3fs), and
training reads from it."""

from __future__ import annotations

import json
import logging
import re

import fsspec
import numpy as np
import pytest

from robot_learning.store import StoreReader, StoreWriter
from robot_learning.store.remote import ShardCache, upload, verify_upload
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


class ServedRequests(logging.Handler):
    """The GET and HEAD requests moto's server answered (its werkzeug request log)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.paths: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"(?:GET|HEAD) (/\S+) HTTP", record.getMessage())  # colour codes
        if found:
            self.paths.append(found.group(1))

    def frames(self) -> int:
        return sum("/data/camera_" in p and not p.endswith("zarr.json") for p in self.paths)


@pytest.fixture
def served():
    log = logging.getLogger("werkzeug")
    handler, level = ServedRequests(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler
    log.removeHandler(handler)
    log.setLevel(level)


def uploaded_store(tmp_path, url, episodes=4, length=6):
    local = tmp_path / "s.zarr"
    with StoreWriter(local, helpers.schema(), shard_frames=SHARD) as writer:
        record(writer, range(episodes), length=length)
    upload(local, f"{url}/s.zarr")
    return local, f"{url}/s.zarr"


def test_read_ahead_fetches_each_shard_once_and_reads_what_local_reads(tmp_path, bucket, served):
    _, url = bucket
    local, remote = uploaded_store(tmp_path, url)  # 24 rows: 6 full shards a key
    keys = ("camera_front", "camera_depth")
    here = StoreReader(local)
    order = np.random.default_rng(0).permutation(here.num_steps).tolist()
    batches = [order[i : i + 5] for i in range(0, len(order), 5)]
    requests = {}
    for budget in (None, 0):  # the default budget (all 12 shards fit), range reads only
        reader = StoreReader(remote, remote_cache_bytes=budget)
        for name in ("first", "second"):  # every frame in random order, twice
            served.paths.clear()
            for rows in batches:
                for key in keys:
                    np.testing.assert_array_equal(
                        reader.read_frames(key, rows), here.read_frames(key, rows)
                    )
            requests[budget, name] = served.frames()
        assert reader.shard_cache.requests == requests[budget, "first"] + requests[budget, "second"]
    # one HEAD a key (a shard's size: they fit), then each shard fetched whole once
    assert requests[None, "first"] == len(keys) + 12
    assert requests[None, "second"] == 0  # served from memory
    assert requests[0, "second"] >= len(batches) * len(keys)  # ranges: every batch goes out
    assert requests[None, "first"] + requests[None, "second"] < requests[0, "first"] / 2


def test_sampler_with_read_ahead_gives_local_samples_and_stays_in_budget(tmp_path, bucket):
    _, url = bucket
    local, remote = uploaded_store(tmp_path, url, episodes=5)  # 30 rows, 7 full shards a key
    kwargs = dict(obs_keys=["camera_front", "camera_depth", "robot_state"], action_keys=["action"])
    here = SequenceDataset(local, **kwargs)
    indices = np.random.default_rng(1).permutation(len(here)).tolist()
    shards = sorted(local.glob("data/camera_*/c/*/0/0*"), key=lambda p: p.stat().st_size)
    for budget in (None, sum(p.stat().st_size for p in shards[:10])):  # all fit / 10 of 16
        dataset = SequenceDataset(remote, remote_cache_bytes=budget, **kwargs)
        for i in range(0, len(indices), 8):
            got, want = dataset.get_batch(indices[i : i + 8]), here.get_batch(indices[i : i + 8])
            assert got.keys() == want.keys()
            for key in want:
                np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())
        cache = dataset._readers[0].shard_cache
        assert cache.bytes <= cache.max_bytes
        if budget is None:
            assert len(cache._shards) == 14  # every full shard of both keys, once
        else:  # they do not fit: range reads once both keys are sized (the first key
            # read may fetch its first batch's shards whole, before the second is sized)
            assert len(cache._shards) <= 8 and all("camera_front" in p for p in cache._shards)


def test_shard_cache_drops_the_least_recently_used_past_its_budget():
    cache = ShardCache(max_bytes=10)
    index = np.zeros((SHARD, 2), dtype="<u8")
    cache.put("a", b"1234", index)
    cache.put("b", b"5678", index)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", b"90ab", index)  # 12 bytes > 10: b goes
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.bytes == 8
    cache.put("huge", b"x" * 11, index)  # over the whole budget: not kept
    assert cache.get("huge") is None and cache.bytes == 8


def test_read_ahead_of_a_shard_without_file_reads_the_fill_value(tmp_path, bucket):
    _, url = bucket
    local = tmp_path / "s.zarr"
    with StoreWriter(local, helpers.schema(), shard_frames=SHARD) as writer:
        for seed in range(3):  # the middle episode's frames are all zero: no shard file
            data = helpers.episode(seed, SHARD)
            if seed == 1:
                data["camera_front"][:] = 0
                data["camera_depth"][:] = 0
            writer.begin_episode(source="teleop", task="lift")
            writer.append_batch(data)
            writer.commit(success=True)
    assert not (local / "data/camera_front/c/1/0/0/0").exists()
    upload(local, f"{url}/s.zarr")
    remote, here = StoreReader(f"{url}/s.zarr"), StoreReader(local)
    rows = [5, 0, 9, 4, 11, 6]
    for key in ("camera_front", "camera_depth"):
        for _ in range(2):  # sized, then read ahead
            got = remote.read_frames(key, rows)
            np.testing.assert_array_equal(got, here.read_frames(key, rows))
        assert not got[[0, 3, 5]].any()
    assert len(remote.shard_cache._shards) == 6  # the empty shards cached as such
