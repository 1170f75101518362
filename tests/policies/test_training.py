"""rl train end to end on a real (small) store: checkpoints, exact resume, refusals, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from policies import checkpoint as ckpt
from policies.data import DataSelection
from policies.features import FeatureMismatchError, PolicyFeatures
from policies.policy import ChunkPolicy
from policies.train import TrainConfig, TrainingError, saved_progress, train
from robot_learning.keys import EE_POSE, GRIPPER_WIDTH, TIMESTAMP, camera_key
from robot_learning.runtime import ActionChunk, Observation
from robot_learning.store import Codec, KeySpec, Source, StoreReader, StoreSchema, StoreWriter
from tests.policies.conftest import tiny_config, tiny_overrides, train_tiny
from tests.rl_cli import ROOT, run_rl


def observation_from_store(store: Path, episode: int, step: int) -> Observation:
    reader = StoreReader(store)
    data = reader.read_episode(episode)
    values = {k: data[k][step] for k in (EE_POSE, GRIPPER_WIDTH)}
    for cam in ("front", "wrist"):
        values[camera_key(cam)] = data[camera_key(cam)][step]
    return Observation(time_s=float(data[TIMESTAMP][step]), values=values)


@pytest.mark.parametrize("name", ["act", "diffusion"])
def test_checkpoint_round_trip_gives_identical_chunks(lift_store, tmp_path, name):
    result = train_tiny(lift_store, tmp_path / name, name, steps=4)
    assert len(result.losses) == 4 and all(np.isfinite(result.losses))
    assert set(result.val_losses) == {2, 4}
    files = json.loads((result.checkpoint / ckpt.MANIFEST).read_text())
    assert {
        "config.json",
        "features.json",
        "normalization.json",
        "data.json",
        "model.safetensors",
        "training/state.json",
    } <= set(files)
    assert not list(result.checkpoint.rglob("*.pt")) and not list(result.checkpoint.rglob("*.pkl"))
    data = json.loads((result.checkpoint / "data.json").read_text())
    assert data["seeds"] == [0, 1, 2, 3] and len(data["val_episodes"]) == 1
    obs = observation_from_store(lift_store, 0, 5)
    chunks = []
    for _ in range(2):
        policy = ChunkPolicy.load(tmp_path / name)  # the output dir resolves to its checkpoint
        policy.reset()
        torch.manual_seed(0)
        chunks.append(policy.act(obs))
    np.testing.assert_array_equal(chunks[0].as_vectors(), chunks[1].as_vectors())
    chunk = chunks[0]
    horizon = policy.config.horizon_steps(10.0)
    assert len(chunk) == horizon
    np.testing.assert_allclose(chunk.times_s, obs.time_s + 0.1 * np.arange(horizon))
    np.testing.assert_allclose(np.linalg.norm(chunk.quaternions, axis=1), 1.0)
    # evaluation and deployment may draw several chunks per query (Diffusion), nothing else
    if name == "act":
        with pytest.raises(ValueError, match=r"\['num_samples'\] cannot change.*nothing"):
            policy.change_inference(num_samples=2)
        return
    with pytest.raises(ValueError, match="num_samples=0 must be >= 1"):
        policy.change_inference(num_samples=0)
    with pytest.raises(ValueError, match=r"\['lr'\] cannot change"):
        policy.change_inference(lr=1.0)
    policy.change_inference(num_samples=5)
    drawn = []
    for _ in range(2):
        policy.reset()
        torch.manual_seed(0)
        drawn.append(policy.act(obs).as_vectors())
    np.testing.assert_array_equal(drawn[0], drawn[1])
    assert drawn[0].shape == chunk.as_vectors().shape
    assert not np.array_equal(drawn[0], chunk.as_vectors())  # other noise, another chunk
    # the chunk played is, of the five draws that noise gives, the one whose positions lie
    # nearest the others' (the history after a reset repeats the one observation)
    net = policy.network
    window = policy.config.obs_horizon
    frames = {
        cam: torch.from_numpy(np.stack([obs[cam]] * window)).permute(0, 3, 1, 2)[None]
        for cam in policy.features.cameras
    }
    ee = torch.from_numpy(np.stack([np.asarray(obs[EE_POSE], np.float64)] * window))[None]
    grip = torch.full((1, window), float(obs[GRIPPER_WIDTH]), dtype=torch.float64)
    torch.manual_seed(0)
    normalized = net.model.predict_samples(
        net.prepare_images(frames, train=False), net.prepare_state(ee, grip), 5
    )[0]
    draws = net._decode(normalized, ee[:, -1].repeat(5, 1)).numpy()  # (5, H, 8)
    positions = draws[:, :, :3]
    spread = np.linalg.norm(positions[:, None] - positions[None], axis=-1).mean(-1).sum(1)
    pick = int(np.argmin(spread))
    medoid = ActionChunk.from_vectors(chunk.times_s, draws[pick])
    np.testing.assert_allclose(drawn[0], medoid.as_vectors(), atol=1e-6)
    others = [ActionChunk.from_vectors(chunk.times_s, d).as_vectors() for d in draws]
    assert sum(np.allclose(drawn[0], o, atol=1e-6) for o in others) == 1  # draws differ


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_chunks_are_base_frame_targets_in_either_action_mode(lift_store, tmp_path, mode):
    """Diffusion clips its normalized sample to [-1, 1] (min-max), so every target lies in
    the training actions' range: base-frame positions with absolute targets, offsets from
    the arm's pose at the observation with relative ones. A decode that dropped the arm's
    pose would leave relative targets near the base's origin, far outside that band."""
    train_tiny(lift_store, tmp_path / mode, "diffusion", steps=2, changes={"action_mode": mode})
    policy = ChunkPolicy.load(tmp_path / mode)
    assert policy.config.action_mode == mode
    obs = observation_from_store(lift_store, 0, 5)
    policy.reset()
    chunk = policy.act(obs)
    shift = policy.network.action_shift[:3].double().numpy()
    scale = policy.network.action_scale[:3].double().numpy()
    arm = np.asarray(obs.values[EE_POSE][:3]) if mode == "relative" else np.zeros(3)
    offsets = chunk.positions - arm
    assert np.all(offsets >= shift - scale - 1e-6) and np.all(offsets <= shift + scale + 1e-6)
    if mode == "relative":  # the band is a chunk's travel, narrower than the arm's reach
        assert np.all(scale < 0.5 * np.linalg.norm(arm))


def test_resume_continues_with_the_identical_loss_sequence(lift_store, tmp_path):
    full = train_tiny(lift_store, tmp_path / "full", "diffusion", steps=6, every=3)
    assert saved_progress(tmp_path / "split") is None
    train_tiny(lift_store, tmp_path / "split", "diffusion", steps=6, every=3, stop_after=3)
    assert saved_progress(tmp_path / "split") == (3, 6)  # what a resume still has to do
    # an inference-only field (how many chunks a query draws) may differ on resume
    resumed = train_tiny(
        lift_store,
        tmp_path / "split",
        "diffusion",
        steps=6,
        every=3,
        resume=True,
        changes={"num_samples": 3},
    )
    assert resumed.losses == full.losses  # bit for bit, steps 1-3 restored and 4-6 recomputed
    a = ckpt.read_tensors(full.checkpoint, ckpt.WEIGHTS)
    b = ckpt.read_tensors(resumed.checkpoint, ckpt.WEIGHTS)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert saved_progress(tmp_path / "split") == (6, 6)


def test_resume_with_another_config_is_refused(lift_store, tmp_path):
    train_tiny(lift_store, tmp_path / "run", "act", steps=2)
    with pytest.raises(TrainingError, match="already holds a checkpoint.*--resume"):
        train_tiny(lift_store, tmp_path / "run", "act", steps=2)  # never overwritten silently
    with pytest.raises(TrainingError, match="dim_model"):
        train_tiny(
            lift_store, tmp_path / "run", "act", steps=4, resume=True, changes={"dim_model": 64}
        )


def test_rl_train_records_the_run_and_resume_continues_it(lift_store, tmp_path):
    """config.json holds the run's --steps and --batch-size, not the preset's defaults, and
    a bare --resume goes on with them: to the saved run's end, at its batch size."""
    out = tmp_path / "run"
    args = ("train", "--policy", "act", "--preset", "sim", *tiny_overrides("act"))
    args += ("--store", str(lift_store), "--out", str(out), "--workers", "0", "--val-every", "2")
    first = run_rl(*args, "--steps", "4", "--batch-size", "4", "--stop-after", "2", timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert saved_progress(out) == (2, 4)
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert (config["train_steps"], config["batch_size"]) == (4, 4)
    other = run_rl(*args, "--resume", "--batch-size", "8", timeout=600)
    assert other.returncode != 0 and "batch_size" in other.stderr
    resumed = run_rl(*args, "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = json.loads((out / "checkpoint" / "training" / "state.json").read_text())
    assert state["step"] == 4 and state["train_config"]["batch_size"] == 4


def test_fine_tuning_starts_from_another_checkpoints_weights(lift_store, tmp_path):
    first = train_tiny(lift_store, tmp_path / "first", "act", steps=4)
    # so the weights after 2 steps are the initial ones (an EMA would round them)
    frozen = {"lr": 0.0, "lr_backbone": 0.0, "ema_decay": None}
    tuned = train_tiny(
        lift_store, tmp_path / "tuned", "act", steps=2, changes=frozen, init_from=tmp_path / "first"
    )
    fresh = train_tiny(lift_store, tmp_path / "fresh", "act", steps=2, changes=frozen)
    a = ckpt.read_tensors(first.checkpoint, ckpt.WEIGHTS)
    b = ckpt.read_tensors(tuned.checkpoint, ckpt.WEIGHTS)
    c = ckpt.read_tensors(fresh.checkpoint, ckpt.WEIGHTS)
    model = [k for k in a if k.startswith("model.")]
    assert model and all(torch.equal(a[k], b[k]) for k in model)
    assert not all(torch.equal(a[k], c[k]) for k in model)
    with pytest.raises(TrainingError, match="--init-from .*differs"):
        train_tiny(
            lift_store,
            tmp_path / "other",
            "act",
            steps=2,
            changes={"dim_model": 64},
            init_from=tmp_path / "first",
        )


def test_fine_tuning_from_a_checkpoint_of_other_cameras_or_targets_is_refused(lift_store, tmp_path):
    """--init-from on a store whose images are another size (the weights would load: the
    shapes do not depend on it), or with targets that meant something else, names why."""
    from data_collection.sim_collect import CollectConfig, collect

    train_tiny(lift_store, tmp_path / "first", "act", steps=2)
    small = tmp_path / "small.zarr"
    collect(
        CollectConfig(task="lift", episodes=4, store=small, image_size=(40, 56), seed=10),
        progress=False,
    )
    with pytest.raises(
        FeatureMismatchError,
        match=r"--init-from .*camera 'camera_front' is \(40, 56, 3\), trained on \(48, 64, 3\)",
    ):
        train_tiny(small, tmp_path / "tuned", "act", steps=2, init_from=tmp_path / "first")
    trained = json.loads((tmp_path / "first" / "checkpoint" / "config.json").read_text())
    other = "absolute" if trained["action_mode"] == "relative" else "relative"
    with pytest.raises(FeatureMismatchError, match=f"action_mode='{other}', trained with"):
        train_tiny(
            lift_store,
            tmp_path / "flipped",
            "act",
            steps=2,
            changes={"action_mode": other},
            init_from=tmp_path / "first",
        )
    assert not (tmp_path / "tuned" / "checkpoint").exists()


def test_checkpoint_for_other_cameras_or_sizes_is_refused(lift_store, tmp_path):
    train_tiny(lift_store, tmp_path / "run", "act", steps=2)
    policy = ChunkPolicy.load(tmp_path / "run")
    bigger = PolicyFeatures(
        cameras=policy.features.cameras, image_shapes=((240, 320, 3), (240, 320, 3)), rate_hz=10.0
    )
    with pytest.raises(FeatureMismatchError, match=r"camera_front.*\(240, 320, 3\).*\(48, 64, 3\)"):
        policy.features.check(bigger, where="station")
    other = PolicyFeatures(cameras=("camera_front",), image_shapes=((48, 64, 3),), rate_hz=10.0)
    with pytest.raises(FeatureMismatchError, match="camera_wrist.*missing"):
        policy.features.check(other, where="station")
    obs = observation_from_store(lift_store, 0, 0)
    wrong = Observation(
        obs.time_s, {**obs.values, "camera_wrist": np.zeros((96, 128, 3), np.uint8)}
    )
    with pytest.raises(ValueError, match="camera_wrist.*96, 128, 3.*48, 64, 3"):
        policy.act(wrong)


def test_missing_or_altered_checkpoint_files_are_named(lift_store, tmp_path):
    result = train_tiny(lift_store, tmp_path / "run", "act", steps=2)
    weights = result.checkpoint / ckpt.WEIGHTS
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors was altered"):
        ChunkPolicy.load(result.checkpoint)
    (result.checkpoint / "features.json").unlink()
    with pytest.raises(ckpt.CheckpointError, match="features.json is missing"):
        ChunkPolicy.load(result.checkpoint)
    with pytest.raises(ckpt.CheckpointError, match="not a checkpoint"):
        ChunkPolicy.load(tmp_path)


def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_checkpoint(lift_store, tmp_path):
    with pytest.raises(TrainingError, match=r"non-finite training loss .* at step \d+"):
        train_tiny(
            lift_store,
            tmp_path / "run",
            "act",
            steps=50,
            every=1,
            changes={"lr": 1e30, "lr_backbone": 1e30, "grad_clip": None},
        )
    policy = ChunkPolicy.load(tmp_path / "run")  # the last good checkpoint still loads
    assert all(torch.isfinite(p).all() for p in policy.network.parameters())


def test_bad_stores_get_clear_errors(lift_store, tmp_path):
    human = tmp_path / "human.zarr"
    schema = StoreSchema(
        keys={
            camera_key("front"): KeySpec((48, 64, 3), "uint8", Codec.JPEG),
            TIMESTAMP: KeySpec((), "float64"),
        },
        stream_rates_hz={"step": 10.0},
    )
    with StoreWriter(human, schema) as writer:
        writer.begin_episode(source=Source.HUMAN_VIDEO, task="lift")
        for t in range(3):
            writer.append({camera_key("front"): np.zeros((48, 64, 3), np.uint8), TIMESTAMP: t})
        writer.commit(success=True)
    with pytest.raises(ValueError, match="no action key 'action'"):
        train_tiny(human, tmp_path / "a", "act", steps=1)
    with pytest.raises(ValueError, match="no episodes with robot actions match task=.'stack'"):
        cfg = TrainConfig(
            store=str(lift_store),
            out=tmp_path / "b",
            steps=1,
            batch_size=2,
            num_workers=0,
            selection=DataSelection(task=("stack",)),
        )
        train(cfg, tiny_config("act"), progress=False)
    with pytest.raises(ValueError, match="1 episode.*validation split needs at least 2"):
        cfg = TrainConfig(
            store=str(lift_store),
            out=tmp_path / "c",
            steps=1,
            batch_size=2,
            num_workers=0,
            selection=DataSelection(task=("lift",)),
        )
        from robot_learning.store.curation import set_excluded

        set_excluded(lift_store, [1, 2, 3], excluded=True, reason="test")
        try:
            train(cfg, tiny_config("act"), progress=False)
        finally:
            set_excluded(lift_store, [1, 2, 3], excluded=False)


def test_torchrun_two_cpu_processes_keep_identical_weights(lift_store, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "robot_learning.cli",
            "train",
            "--policy",
            "act",
            "--preset",
            "sim",
            *tiny_overrides("act"),
            "--store",
            str(lift_store),
            "--out",
            str(out),
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--val-fraction",
            "0.25",
            "--val-every",
            "3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    digests = json.loads((out / "checkpoint" / "rank_digests.json").read_text())
    assert len(digests) == 2 and digests[0] == digests[1]
    state = json.loads((out / "checkpoint" / "training" / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 3
    assert (out / "tensorboard").is_dir()


def test_rl_eval_runs_end_to_end_and_prints_json(lift_store, tmp_path):
    train_tiny(lift_store, tmp_path / "run", "diffusion", steps=2)
    result = run_rl(
        *("eval", "--checkpoint", str(tmp_path / "run"), "--task", "lift", "--episodes", "2"),
        *("--max-duration", "3", "--json", "--video", str(tmp_path / "video")),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["episodes"] == 2 and 0.0 <= report["success_rate"] <= 1.0
    assert report["latency_ms_p50"] > 0 and report["latency_ms_p99"] >= report["latency_ms_p50"]
    assert report["seeds"] == [100000, 100001]
    assert all(0 < length <= 3.0 + 1e-6 for length in report["episode_length_s"])
    assert len(list((tmp_path / "video").glob("lift_seed*.png"))) == 2
    clash = run_rl(
        *("eval", "--checkpoint", str(tmp_path / "run"), "--task", "lift", "--episodes", "2"),
        *("--seed", "3"),
        timeout=120,
    )
    assert clash.returncode == 2 and "seeds [3] were used by training" in clash.stderr
    # task options reach the evaluation scene (push targets only the hand videos showed)
    novel = run_rl(
        *("eval", "--checkpoint", str(tmp_path / "run"), "--task", "push", "--episodes", "1"),
        *("--task-option", "targets=novel", "--max-duration", "1", "--json", "--samples", "3"),
        *("--speed", "1.5"),
        timeout=600,
    )
    assert novel.returncode == 0, novel.stderr[-3000:]
    novel_report = json.loads(novel.stdout)
    assert novel_report["task_options"] == {"targets": "novel"}
    assert novel_report["inference"] == {"num_inference_steps": 4, "num_samples": 3}
    assert report["inference"] == {"num_inference_steps": 4, "num_samples": 1}
    assert novel_report["execution"]["speed"] == 1.5 and report["execution"]["speed"] == 1.0
    moon = run_rl(
        *("eval", "--checkpoint", str(tmp_path / "run"), "--task", "push", "--episodes", "1"),
        *("--task-option", "targets=moon"),
        timeout=120,
    )
    assert moon.returncode == 2 and "targets='moon'" in moon.stderr


def test_training_reads_a_remote_store_through_fsspec(lift_store, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    for path in lift_store.rglob("*"):
        if path.is_file():
            memory.pipe(
                f"/policy-remote/lift.zarr/{path.relative_to(lift_store)}", path.read_bytes()
            )
    result = train_tiny("memory://policy-remote/lift.zarr", tmp_path / "remote", "act", steps=2)
    local = train_tiny(lift_store, tmp_path / "local", "act", steps=2)
    assert result.losses == local.losses  # the same rows, decoded the same way
    data = json.loads((result.checkpoint / "data.json").read_text())
    assert data["store"] == "memory://policy-remote/lift.zarr"


def test_rl_train_reports_bad_arguments_without_a_traceback(lift_store, tmp_path, capsys):
    from robot_learning.cli import main

    base = ["train", "--policy", "act", "--out", str(tmp_path / "x")]
    assert main([*base, "--store", str(tmp_path / "missing.zarr")]) == 2
    assert "missing.zarr" in capsys.readouterr().err
    assert main([*base, "--store", str(lift_store), "--set", "dim_modle=64"]) == 2
    assert "act has no field(s) ['dim_modle']" in capsys.readouterr().err
    assert main([*base, "--store", str(lift_store), "--preset", "huge"]) == 2
    assert "no preset 'huge'" in capsys.readouterr().err
    assert main([*base, "--store", str(lift_store), "--set", "dim_model=36"]) == 2
    assert "dim_model=36" in capsys.readouterr().err
