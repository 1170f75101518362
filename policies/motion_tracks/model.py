"""MT-pi's network: one view's image and current keypoints -> a denoised chunk of future
keypoint motion (per-point deltas in the image), grasp and terminal flags.

The image goes through the ResNet-18 encoder (spatial-softmax keypoints) and MT-pi's feature
compressor (two layers to ``embed_dim``); with the current points and the view's one-hot it
conditions the Diffusion-Policy U-Net by FiLM. Shapes (B samples, each one view):

  images (B, 3, h, w) normalized   current (B, 2P) in [-1, 1]   view (B,) index
  target (B, H, 2P + 2) normalized deltas, grasp, terminal

The loss weights the track dimensions and the grasp/terminal dimensions equally (MT-pi's
balanced loss: 2 flags would otherwise drown in 2P coordinates); an optional alignment term
pulls the mean and variance of human and robot image embeddings together.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from policies.diffusion.sampling import ddim_sample, make_schedulers
from policies.diffusion.unet import ConditionalUnet1D
from policies.encoders import ImageEncoder
from policies.motion_tracks.config import MotionTrackConfig


def mean_variance_alignment(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance of the per-feature means and variances of two embedding sets."""
    return ((a.mean(0) - b.mean(0)) ** 2).mean() + ((a.var(0) - b.var(0)) ** 2).mean()


class MotionTrackModel(nn.Module):
    def __init__(
        self, config: MotionTrackConfig, *, num_views: int, num_points: int, horizon: int
    ) -> None:
        super().__init__()
        self.config, self.num_views = config, num_views
        self.num_points, self.horizon = num_points, horizon
        self.track_dim = 2 * num_points
        self.action_dim = self.track_dim + 2
        self.encoder = ImageEncoder(
            width=config.encoder_width,
            pooling="spatial_softmax",
            num_keypoints=config.num_keypoints,
            output_stride=config.encoder_output_stride,
            stages=config.encoder_stages,
        )
        pooled = self.encoder.out_dim
        self.compress = nn.Sequential(
            nn.Linear(pooled, max(pooled // 2, config.embed_dim)),
            nn.Mish(),
            nn.Linear(max(pooled // 2, config.embed_dim), config.embed_dim),
        )
        self.unet = ConditionalUnet1D(
            action_dim=self.action_dim,
            global_cond_dim=config.embed_dim + self.track_dim + num_views,
            down_dims=config.down_dims,
            kernel_size=config.kernel_size,
            n_groups=config.n_groups,
            step_embed_dim=config.diffusion_step_embed_dim,
        )
        self.train_scheduler, self.sample_scheduler = make_schedulers(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            clip_sample=config.clip_sample,
            prediction_type="epsilon",
        )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.compress(self.encoder(images))

    def condition(
        self, embedding: torch.Tensor, current: torch.Tensor, view: torch.Tensor
    ) -> torch.Tensor:
        one_hot = F.one_hot(view.long(), self.num_views).to(embedding.dtype)
        return torch.cat([embedding, current.flatten(1), one_hot], dim=-1)

    def compute_loss(
        self,
        images: torch.Tensor,
        current: torch.Tensor,
        view: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor,
        is_human: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``mask`` (B, H, 2P + 2): 1 where the target is known (not padding, point seen)."""
        embedding = self.embed(images)
        cond = self.condition(embedding, current, view)
        noise = torch.randn_like(target)
        steps = torch.randint(
            0, self.config.num_train_timesteps, (target.shape[0],), device=target.device
        )
        noisy = self.train_scheduler.add_noise(target, noise, steps)
        errors = F.mse_loss(self.unet(noisy, steps, cond), noise, reduction="none") * mask
        tracks = errors[..., : self.track_dim].sum() / mask[..., : self.track_dim].sum().clamp(
            min=1
        )
        flags = errors[..., self.track_dim :].sum() / mask[..., self.track_dim :].sum().clamp(min=1)
        loss = 0.5 * (tracks + flags)
        parts = {"track_mse": tracks.detach(), "flag_mse": flags.detach()}
        human = is_human.bool()
        if self.config.align_weight > 0 and 1 < int(human.sum()) < len(human) - 1:
            align = mean_variance_alignment(embedding[human], embedding[~human])
            loss = loss + self.config.align_weight * align
            parts["align"] = align.detach()
        return loss, parts

    @torch.no_grad()
    def predict(
        self,
        images: torch.Tensor,
        current: torch.Tensor,
        view: torch.Tensor,
        *,
        shared_noise: bool = False,
        samples: int = 1,
    ) -> torch.Tensor:
        """(B, H, 2P + 2) normalized targets, DDIM-denoised from Gaussian noise.
        ``shared_noise``: one draw for the whole batch (the views of one observation), so
        that the deterministic DDIM steps lead every view to the same mode of a
        multimodal future instead of each to its own. ``samples`` > 1 denoises that many
        draws in one batch and returns their mean: the pixel noise of one draw, which
        triangulation turns into centimetres, shrinks (``num_samples`` in the config)."""
        cond = self.condition(self.embed(images), current, view)
        b = cond.shape[0]
        sample = torch.randn(
            samples,
            1 if shared_noise else b,
            self.horizon,
            self.action_dim,
            device=cond.device,
            dtype=cond.dtype,
        ).expand(samples, b, -1, -1)
        sample = sample.reshape(samples * b, self.horizon, self.action_dim)
        cond = cond.repeat(samples, 1)
        sample = ddim_sample(
            self.unet, self.sample_scheduler, sample, cond, self.config.num_inference_steps
        )
        if self.config.clip_sample:
            sample = sample.clamp(-1.0, 1.0)
        return sample.reshape(samples, b, self.horizon, self.action_dim).mean(0)

    def parameter_groups(self, lr: float, lr_backbone: float, weight_decay: float) -> list[dict]:
        backbone = [p for n, p in self.named_parameters() if n.startswith("encoder.")]
        ids = {id(p) for p in backbone}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [
            {"params": rest, "lr": lr, "weight_decay": weight_decay},
            {"params": backbone, "lr": lr_backbone, "weight_decay": weight_decay},
        ]
