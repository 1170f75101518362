"""MT-pi, the Motion Track Policy (Ren et al. 2025), registered as ``mtpi``.

A diffusion model predicts, per camera view, where the gripper's keypoints go next (a
horizon of pixel positions), the grasp flag and the terminal flag, from the view's image and
the keypoints' current pixels; it trains on robot demonstrations and human videos together
(the hand's points retargeted onto the gripper's, ``retarget``). At inference the tracks of
two calibrated views are triangulated and turned into a timed end-effector chunk
(``robot_learning.track_geometry``), so evaluation, deployment and intervention run it like
ACT and Diffusion.

  config.py    MotionTrackConfig (published sizes as defaults)
  data.py      per-view samples from a store's robot and human_video episodes, balanced
  retarget.py  hand points -> gripper-shaped points
  model.py     encoder + U-Net denoiser, balanced loss, human/robot embedding alignment
  network.py   preprocessing shared by training and inference (crops move the keypoints)
  policy.py    MotionTrackPolicy: observation -> tracks -> ActionChunk; calibration checks

Presets: ``default`` = MT-pi's sizes (see config.py); ``sim`` = sized for the simulated
workcell on a 2-core CPU.
"""

from __future__ import annotations

from policies.motion_tracks.config import MotionTrackConfig
from policies.registry import PolicySpec, register_policy


def _training_data(*args, **kwargs):
    from policies.motion_tracks.data import TrackTrainingData

    return TrackTrainingData.from_store(*args, **kwargs)


def _build_network(config, features, stats):
    from policies.motion_tracks.network import TrackNetwork

    return TrackNetwork(config, features, stats)


def _no_chunk_model(config, shapes):
    raise ValueError("mtpi builds its own network (TrackNetwork), not a ChunkModel")


def _load(path, *, device="cpu"):
    from policies.motion_tracks.policy import MotionTrackPolicy

    return MotionTrackPolicy.load(path, device=device)


SIM = MotionTrackConfig(
    image_size=(72, 96),
    crop_size=(66, 88),
    encoder_width=16,
    encoder_output_stride=16,
    num_keypoints=32,
    embed_dim=64,
    down_dims=(64, 128, 256),
    diffusion_step_embed_dim=64,
    num_inference_steps=10,
    batch_size=32,
    train_steps=8000,
    lr=3e-4,
    lr_backbone=3e-4,
    warmup_steps=200,
    ema_decay=0.999,
    align_weight=0.1,
)

SPEC = register_policy(
    PolicySpec(
        name="mtpi",
        config_class=MotionTrackConfig,
        build_model=_no_chunk_model,
        presets={"default": MotionTrackConfig(), "sim": SIM},
        training_data=_training_data,
        build_network=_build_network,
        load=_load,
    )
)

__all__ = ["MotionTrackConfig", "SPEC"]
