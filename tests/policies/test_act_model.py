"""ACT network: shapes, learning, real decoder depth, padding mask, config checks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from policies.act import ACTConfig, ACTModel
from policies.model import ModelShapes
from policies.registry import get_policy

SHAPES = ModelShapes(
    num_cameras=2, image_size=(64, 80), state_dim=10, action_dim=10, obs_horizon=1, horizon=10
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny ops on a shared 2-core CPU: a second thread mostly waits for a busy core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**changes: object) -> ACTConfig:
    base = dict(
        image_size=(64, 80),
        crop_size=None,
        encoder_width=8,
        dim_model=32,
        n_heads=4,
        dim_feedforward=64,
        n_encoder_layers=1,
        n_decoder_layers=2,
        n_vae_encoder_layers=1,
        latent_dim=8,
        dropout=0.0,
    )
    base.update(changes)
    return ACTConfig(**base)


def make_batch(b: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = SHAPES
    t = torch.linspace(0, 1, s.horizon)
    phase = torch.rand(b, 1, s.action_dim, generator=g) * 6.28
    freq = 1 + torch.rand(b, 1, s.action_dim, generator=g)
    return {
        "images": torch.randn(b, s.obs_horizon, s.num_cameras, 3, *s.image_size, generator=g),
        "state": torch.randn(b, s.obs_horizon, s.state_dim, generator=g),
        "action": torch.sin(freq * 3 * t[None, :, None] + phase),  # smooth chunks
        "action_is_pad": torch.zeros(b, s.horizon, dtype=torch.bool),
    }


def build(**changes: object) -> ACTModel:
    torch.manual_seed(0)
    return ACTModel(tiny_config(**changes), SHAPES)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_shapes_and_determinism(pre_norm: bool) -> None:
    model = build(pre_norm=pre_norm).eval()
    batch = make_batch()
    loss, parts = model.compute_loss(**batch)
    assert loss.shape == () and torch.isfinite(loss)
    assert set(parts) == {"l1", "kl"}
    assert all(v.shape == () and not v.requires_grad for v in parts.values())
    pred = model.predict(batch["images"], batch["state"])
    assert pred.shape == (4, SHAPES.horizon, SHAPES.action_dim)
    assert torch.equal(pred, model.predict(batch["images"], batch["state"]))


def test_only_the_last_observation_step_is_seen() -> None:
    torch.manual_seed(0)
    model = ACTModel(tiny_config(), dataclasses.replace(SHAPES, obs_horizon=2)).eval()
    images, state = torch.randn(2, 2, 2, 3, 64, 80), torch.randn(2, 2, 10)
    pred = model.predict(images, state)
    images[:, 0], state[:, 0] = 5.0, 5.0
    assert torch.equal(pred, model.predict(images, state))


def test_only_image_encoder_is_backbone() -> None:
    model = build()
    groups = model.parameter_groups(lr=1e-4, lr_backbone=1e-5, weight_decay=1e-4)
    backbone = {id(p) for g in groups if g["lr"] == 1e-5 for p in g["params"]}
    assert backbone == {id(p) for p in model.image_encoder.parameters()}
    assert all(id(p) not in backbone for p in model.vae_encoder.parameters())
    assert all(id(p) not in backbone for p in model.encoder.parameters())
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_presets_registered() -> None:
    spec = get_policy("act")
    assert {"default", "sim", "bench"} <= set(spec.presets)
    assert spec.presets["default"].horizon_steps(50) == 100
    assert spec.presets["default"].n_decoder_layers == 7
    assert spec.presets["sim"].horizon_steps(10) == 20
    assert spec.presets["bench"].horizon_steps(50) == 100


def test_overfits_one_batch() -> None:
    """The L1 part itself must fall 10x (the KL part alone collapses in a few steps)."""
    model = build(kl_weight=1.0).train()
    batch = make_batch(b=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first_loss, first_l1 = None, None
    for _ in range(400):  # about 190 are needed
        loss, parts = model.compute_loss(**batch)
        if first_loss is None:
            first_loss, first_l1 = loss.item(), parts["l1"].item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if parts["l1"].item() < first_l1 / 10:
            break
    assert parts["l1"].item() < first_l1 / 10, (first_l1, parts["l1"].item())
    assert loss.item() < first_loss / 10, (first_loss, loss.item())


def test_every_decoder_layer_is_used() -> None:
    model = build(n_decoder_layers=3).train()
    batch = make_batch()
    loss, _ = model.compute_loss(**batch)
    loss.backward()
    for i, layer in enumerate(model.decoder.layers):
        for name, p in layer.named_parameters():
            if i == 0 and (name.startswith("self_attn.") or name == "norms.0.weight"):
                continue  # zero decoder input (DETR): the first self-attention adds a constant
            assert p.grad is not None and p.grad.abs().sum() > 0, f"layer {i} {name}"

    model.eval()
    before = model.predict(batch["images"], batch["state"])
    for index in (0, -1):
        with torch.no_grad():
            for p in model.decoder.layers[index].parameters():
                p.add_(0.05 * torch.randn_like(p))
        after = model.predict(batch["images"], batch["state"])
        assert not torch.allclose(before, after, atol=1e-5), f"decoder layer {index} unused"
        before = after


def test_padded_targets_do_not_matter() -> None:
    model = build().eval()
    batch = make_batch()
    batch["action_is_pad"][:, 6:] = True
    batch["action_is_pad"][0, 2:] = True
    loss, _ = model.compute_loss(**batch)

    changed = dict(batch, action=batch["action"].clone())
    changed["action"][batch["action_is_pad"]] = 100.0
    assert torch.allclose(model.compute_loss(**changed)[0], loss, rtol=0, atol=1e-6)

    changed["action"][1, 0] += 1.0  # a valid position does count
    assert not torch.allclose(model.compute_loss(**changed)[0], loss)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dim_model": 36, "n_heads": 8}, "dim_model=36"),
        ({"n_heads": 0}, "n_heads=0"),
        ({"n_encoder_layers": 0}, "n_encoder_layers=0"),
        ({"n_decoder_layers": 0}, "n_decoder_layers=0"),
        ({"n_vae_encoder_layers": 0}, "n_vae_encoder_layers=0"),
        ({"latent_dim": 0}, "latent_dim=0"),
        ({"kl_weight": -1.0}, "kl_weight=-1.0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"crop_size": (100, 80)}, "crop_size"),
    ],
)
def test_bad_config_names_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("(", r"\(")):
        tiny_config(**changes)


def test_vae_off_allows_zero_vae_layers() -> None:
    model = ACTModel(tiny_config(use_vae=False, n_vae_encoder_layers=0), SHAPES)
    loss, parts = model.compute_loss(**make_batch())
    assert torch.isfinite(loss) and parts["kl"] == 0


@pytest.mark.parametrize("pre_norm", [False, True])
def test_cvae_encoder_computes_only_the_cls_output_it_reads(pre_norm: bool) -> None:
    model = build(n_vae_encoder_layers=3, pre_norm=pre_norm).eval()
    g = torch.Generator().manual_seed(1)
    x, pos = torch.randn(3, 12, 32, generator=g), torch.randn(1, 12, 32, generator=g)
    pad = torch.zeros(3, 12, dtype=torch.bool)
    pad[:, -4:] = True
    full = model.vae_encoder(x, pos, pad)
    first = model.vae_encoder(x, pos, pad, first_only=True)
    assert first.shape == (3, 1, 32)
    torch.testing.assert_close(first[:, 0], full[:, 0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_first_decoder_layer_attends_its_zero_input_as_the_full_attention_would(
    pre_norm: bool,
) -> None:
    """The shortcut for the decoder's zero input: same outputs and gradients as attending
    B copies of zeros, and with dropout the same distribution."""
    model = build(pre_norm=pre_norm, dropout=0.3)
    layer = model.decoder.layers[0]
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():  # MHA starts with zero biases: give every term a value
        for p in layer.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    b, h, d = 3, 10, 32
    query_pos = torch.randn(1, h, d, generator=g, requires_grad=True)
    memory, memory_pos = torch.randn(b, 5, d, generator=g), torch.randn(1, 5, d, generator=g)

    def run(x: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = layer(x, query_pos, memory, memory_pos)
        grads = torch.autograd.grad((out * memory[:, :1]).sum(), [query_pos, *layer.parameters()])
        return out, list(grads)

    layer.eval()
    full, full_grads = run(torch.zeros(b, h, d))
    short, short_grads = run(None)
    torch.testing.assert_close(short, full, rtol=1e-5, atol=1e-5)
    for a, e in zip(short_grads, full_grads, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4)  # q, k: zero up to rounding

    layer.train()  # dropout: one mask per sample over the attention weights, as self_attn
    n = 4000
    with torch.no_grad():
        shortcut = layer._self_attend_zeros(n, query_pos)
        h_in = layer.norms[0](torch.zeros(n, h, d)) if pre_norm else torch.zeros(n, h, d)
        q = h_in + query_pos
        reference = layer.self_attn(q, q, h_in, need_weights=False)[0]
    assert shortcut.shape == reference.shape == (n, h, d)
    assert shortcut[0].ne(shortcut[1]).any()  # masks differ between samples
    spread = reference.std(0)
    assert ((shortcut.mean(0) - reference.mean(0)).abs() < 0.1 * spread + 1e-4).all()
    torch.testing.assert_close(shortcut.std(0), spread, rtol=0.1, atol=1e-4)
