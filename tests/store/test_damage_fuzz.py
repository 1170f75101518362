"""Damage one file of a real store at a time; every command must answer clearly.

The store comes from the simulator's scripted expert through ``rl sim collect``'s code (two
lift episodes, two cameras, the 100 Hz state stream). Each case copies it, damages one file
(a bit flip, a flip that leaves a ``zarr.json`` invalid UTF-8, truncation, deletion, or
well-formed garbage JSON) and runs ``rl store validate`` and ``rl store list`` as a user
would. Every answer must be a documented exit status with one clear line per error (naming
the store), never a traceback or an "internal error"; damage that destroys a file's content
must make validate fail. Every file is damaged at least once; which damage, and where in the
file, comes from a fixed seed. The sampler reads a few damaged stores too: it either reads
every sample or raises StoreCorruptError.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from robot_learning.cli import main
from robot_learning.errors import ExitCode
from robot_learning.keys import ACTION, EE_POSE, camera_key
from robot_learning.store import StoreCorruptError
from tests.rl_cli import run_rl

SEED = 11
GARBAGE = [
    "[]",
    "{}",
    "null",
    '{"zarr_format": 3}',
    '"zarr"',
    '{"zarr_format": 3, "node_type": "array", "shape": "x"}',
]
# Files that hold no store content: losing them loses nothing (locks, the disk-space reserve).
NO_CONTENT = {".meta.lock", ".writer.lock", ".space_reserve"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    from data_collection.sim_collect import CollectConfig, collect

    store = tmp_path_factory.mktemp("fuzz") / "demos.zarr"
    collect(
        CollectConfig(task="lift", episodes=2, store=store, image_size=(48, 64)), progress=False
    )
    return store


def damage(path: Path, kind: str, rng: random.Random) -> None:
    raw = bytearray(path.read_bytes())
    if kind == "delete":
        path.unlink()
    elif kind == "truncate":
        path.write_bytes(bytes(raw[: rng.randrange(len(raw))]))
    elif kind == "flip":
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(raw))
    elif kind == "utf8":  # the high bit on an ASCII byte: never valid UTF-8 on its own
        raw[rng.randrange(len(raw))] |= 0x80
        path.write_bytes(bytes(raw))
    elif kind == "garbage":
        path.write_text(rng.choice(GARBAGE))


def cases(store: Path) -> list[tuple[str, str]]:
    """One drawn damage per file, plus the reported case (invalid UTF-8) for every zarr.json."""
    rng = random.Random(SEED)
    files = sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
    out = []
    for rel in files:
        size = (store / rel).stat().st_size
        kinds = ["delete"] + (["flip", "truncate"] if size else [])
        kinds += ["garbage"] if rel.endswith("zarr.json") else []
        out.append((rel, rng.choice(kinds)))
        if rel.endswith("zarr.json"):
            out.append((rel, "utf8"))
    return out


def rl(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exits
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clear(code: int, out: str, err: str, command: str, store: Path) -> None:
    assert code in set(ExitCode), code
    assert "Traceback" not in out + err and "internal error" not in err, err
    if code == ExitCode.BAD_INPUT:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"rl store {command}: error: "), err
        assert str(store) in lines[0], lines[0]


def test_every_damaged_file_gets_a_clear_answer(pristine, tmp_path, capsys):
    rng = random.Random(SEED)
    store = tmp_path / "demos.zarr"
    missed = []
    for rel, kind in cases(pristine):
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(pristine, store)
        damage(store / rel, kind, rng)
        code, out, err = rl(capsys, "store", "validate", str(store))
        assert_clear(code, out, err, "validate", store)
        if code == ExitCode.FAILURE:
            assert out.splitlines()[-1] == f"{store}: {out.count('problem: ')} problem(s)"
            for line in out.splitlines()[:-1]:  # each names the file, or episode and key
                assert line.startswith("problem: ") and (
                    str(store) in line or "episode " in line or "key " in line
                ), line
        destroyed = kind in ("delete", "truncate", "utf8", "garbage")
        if destroyed and Path(rel).name not in NO_CONTENT and code == ExitCode.OK:
            missed.append((rel, kind))
        code, out, err = rl(capsys, "store", "list", str(store))
        assert_clear(code, out, err, "list", store)
        assert code in (ExitCode.OK, ExitCode.BAD_INPUT), (rel, kind, code, err)
    assert not missed, f"validate passed stores whose file was destroyed: {missed}"


def test_invalid_utf8_in_an_array_zarr_json_is_named_in_a_real_process(pristine, tmp_path):
    store = tmp_path / "demos.zarr"
    shutil.copytree(pristine, store)
    meta = store / "data" / ACTION / "zarr.json"
    raw = bytearray(meta.read_bytes())
    raw[len(raw) // 2] |= 0x80
    meta.write_bytes(bytes(raw))
    for command, code in (("validate", ExitCode.FAILURE), ("stats", ExitCode.BAD_INPUT)):
        extra = [ACTION] if command == "stats" else []
        result = run_rl("store", command, str(store), *extra, timeout=120)
        assert result.returncode == code, result.stderr
        assert "Traceback" not in result.stderr
        assert (
            f"{store}/data/{ACTION}/zarr.json: unreadable metadata" in result.stdout + result.stderr
        )


@pytest.mark.parametrize(
    "rel",
    [f"data/{camera_key('front')}/c/0/0/0/0", f"data/{EE_POSE}/c/0/0", f"data/{ACTION}/c/0/0"],
)
@pytest.mark.parametrize("kind", ["truncate", "flip"])
def test_the_sampler_reads_or_names_the_damage(pristine, tmp_path, rel, kind):
    from robot_learning.store.sampler import SequenceDataset

    store = tmp_path / "demos.zarr"
    shutil.copytree(pristine, store)
    damage(store / rel, kind, random.Random(f"{SEED}{rel}{kind}"))
    try:
        dataset = SequenceDataset(
            store,
            obs_keys=[camera_key("front"), EE_POSE],
            action_keys=[ACTION],
            obs_horizon=2,
            action_horizon=4,
        )
        for i in range(len(dataset)):
            dataset[i]
    except StoreCorruptError as exc:
        assert str(store) in str(exc) and rel.split("/")[1] in str(exc)
