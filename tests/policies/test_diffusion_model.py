"""Diffusion Policy: U-Net shapes and padding, loss masking, overfitting, DDIM sampling."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from policies.diffusion import DiffusionConfig, DiffusionModel
from policies.diffusion.unet import ConditionalUnet1D
from policies.model import ModelShapes
from policies.network import medoid_chunk
from policies.registry import get_policy, preset

SHAPES = ModelShapes(
    num_cameras=2, image_size=(64, 80), state_dim=10, action_dim=10, obs_horizon=2, horizon=16
)
TINY = DiffusionConfig(
    image_size=(64, 80),
    crop_size=None,
    encoder_width=8,
    num_keypoints=8,
    down_dims=(16, 32),
    diffusion_step_embed_dim=16,
)


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(2)


def make_batch(b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = SHAPES
    return {
        "images": torch.randn(b, s.obs_horizon, s.num_cameras, 3, *s.image_size, generator=g),
        "state": torch.rand(b, s.obs_horizon, s.state_dim, generator=g) * 2 - 1,
        "action": torch.rand(b, s.horizon, s.action_dim, generator=g) * 2 - 1,
        "action_is_pad": torch.zeros(b, s.horizon, dtype=torch.bool),
    }


def fixed_noise(b: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(b, SHAPES.horizon, SHAPES.action_dim, generator=g)
    return noise, torch.randint(0, TINY.num_train_timesteps, (b,), generator=g)


@pytest.mark.parametrize("horizon", [16, 20, 10, 7, 1])
def test_unet_shapes_and_padding(horizon: int) -> None:
    torch.manual_seed(0)
    unet = ConditionalUnet1D(
        6, 12, down_dims=(16, 32, 64), kernel_size=5, n_groups=8, step_embed_dim=16
    )
    x = torch.randn(3, horizon, 6)
    t = torch.tensor([0, 50, 99])
    cond = torch.randn(3, 12)
    out = unet(x, t, cond)
    assert out.shape == (3, horizon, 6)
    # Horizons that do not survive two halvings are zero-padded to a multiple of 4 and cropped.
    padded = -(-horizon // 4) * 4
    full = unet(F.pad(x, (0, 0, 0, padded - horizon)), t, cond)
    torch.testing.assert_close(out, full[:, :horizon])


def test_unet_names_keep_out_of_backbone_group() -> None:
    model = DiffusionModel(TINY, SHAPES)
    assert not any("encoder" in n for n, _ in model.unet.named_parameters())
    groups = model.parameter_groups(1e-4, 1e-5, 0.0)
    backbone = sum(p.numel() for p in groups[1]["params"])
    assert backbone == sum(p.numel() for p in model.encoders.parameters())
    assert len(model.encoders) == 2  # separate_encoders: one per camera
    shared = DiffusionModel(dataclasses.replace(TINY, separate_encoders=False), SHAPES)
    assert len(shared.encoders) == 1


@pytest.mark.parametrize("separate", [True, False])
def test_predict_and_loss_shapes(separate: bool) -> None:
    torch.manual_seed(0)
    model = DiffusionModel(dataclasses.replace(TINY, separate_encoders=separate), SHAPES)
    batch = make_batch(3)
    cond = model.encode_observations(batch["images"], batch["state"])
    assert cond.shape == (3, 2 * (2 * 16 + 10)) == (3, model.global_cond_dim)
    loss, parts = model.compute_loss(**batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(parts) == {"mse"} and not parts["mse"].requires_grad
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    out = model.predict(batch["images"], batch["state"])
    assert out.shape == (3, 16, 10)


def test_predict_is_seeded_and_clipped() -> None:
    torch.manual_seed(0)
    model = DiffusionModel(TINY, SHAPES).eval()
    batch = make_batch(2)
    torch.manual_seed(123)
    a = model.predict(batch["images"], batch["state"])
    torch.manual_seed(123)
    b = model.predict(batch["images"], batch["state"])
    torch.manual_seed(124)
    c = model.predict(batch["images"], batch["state"])
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    assert a.abs().max() <= 1.0


def test_predict_samples_draws_several_chunks_per_observation() -> None:
    torch.manual_seed(0)
    model = DiffusionModel(TINY, SHAPES).eval()
    batch = make_batch(2)
    torch.manual_seed(7)
    drawn = model.predict_samples(batch["images"], batch["state"], 4)
    torch.manual_seed(7)
    again = model.predict_samples(batch["images"], batch["state"], 4)
    assert drawn.shape == (2, 4, 16, 10)
    torch.testing.assert_close(drawn, again, rtol=0, atol=0)
    assert not torch.equal(drawn[:, 0], drawn[:, 1])  # each draw its own noise


def test_medoid_chunk_plays_the_draw_nearest_the_others() -> None:
    base = torch.zeros(16, 8, dtype=torch.float64)
    base[:, 3:7] = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    offsets = torch.tensor([0.05, -0.02, 0.01, 0.0, 0.3], dtype=torch.float64)  # x, metres
    draws = base.repeat(5, 1, 1)
    draws[:, :, 0] += offsets[:, None]
    draws[:, :, 7] = torch.arange(5, dtype=torch.float64)[:, None]  # tags which draw it is
    other = draws.roll(2, dims=0)  # the same draws in another order: the median at index 4
    picked = medoid_chunk(torch.stack([draws, other]))
    assert picked.shape == (2, 16, 8)
    # x 0.01, the median: the stray 0.3 does not pull it (the mean, 0.068, is nearest 0.05)
    assert picked[0, 0, 7] == 2 and picked[1, 0, 7] == 2
    torch.testing.assert_close(picked[0], draws[2])  # whole chunk: pose and gripper together


def test_padded_targets_do_not_change_loss() -> None:
    torch.manual_seed(0)
    model = DiffusionModel(TINY, SHAPES)
    batch = make_batch(2)
    batch["action_is_pad"][0, 11:] = True
    batch["action_is_pad"][1, 5:] = True
    noise, t = fixed_noise(2)
    base = model.denoising_loss(**batch, noise=noise, timesteps=t)
    changed = dict(batch, action=batch["action"].clone())
    changed["action"][batch["action_is_pad"]] = 5.0
    torch.testing.assert_close(model.denoising_loss(**changed, noise=noise, timesteps=t), base)
    valid_change = dict(batch, action=batch["action"].clone())
    valid_change["action"][0, 3] += 0.5
    assert not torch.allclose(model.denoising_loss(**valid_change, noise=noise, timesteps=t), base)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
def test_overfits_one_batch(prediction_type: str) -> None:
    torch.manual_seed(0)
    model = DiffusionModel(dataclasses.replace(TINY, prediction_type=prediction_type), SHAPES)
    batch = make_batch(4)
    noise, t = fixed_noise(4)

    def fixed_loss() -> float:
        with torch.no_grad():
            return model.denoising_loss(**batch, noise=noise, timesteps=t).item()

    before = fixed_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):  # 10x is reached by ~75 steps for either target
        loss = model.denoising_loss(**batch, noise=noise, timesteps=t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss()
    assert after < before / 10, (before, after)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_inference_steps", 101),
        ("num_inference_steps", 0),
        ("prediction_type", "v_prediction"),
        ("down_dims", ()),
        ("n_groups", 7),
        ("kernel_size", 4),
        ("diffusion_step_embed_dim", 15),
        ("beta_schedule", "cosine"),
        ("num_keypoints", 0),
        ("obs_horizon", 0),
    ],
)
def test_bad_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        DiffusionConfig(**{field: value})


def test_presets() -> None:
    spec = get_policy("diffusion")
    assert set(spec.presets) >= {"default", "sim", "bench"}
    for name in ("default", "sim", "bench"):
        cfg = preset("diffusion", name)
        assert isinstance(cfg, DiffusionConfig)
        assert (cfg.horizon_steps(10), cfg.execute_steps(10), cfg.obs_horizon) == (16, 8, 2)
        assert DiffusionConfig.from_json(cfg.to_json()) == cfg
    assert preset("diffusion", "default").down_dims == (512, 1024, 2048)
    assert preset("diffusion", "bench").crop_size == (84, 84)
    assert not preset("diffusion", "bench").separate_encoders
