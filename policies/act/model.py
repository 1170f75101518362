"""ACT: a conditional VAE whose decoder is a DETR-style transformer (Zhao et al. 2023).

Training: a small transformer (the CVAE encoder) reads [CLS, state, action chunk] and gives
the posterior of a style latent z. The main encoder reads [z, state, image feature tokens of
every camera]; the decoder's H learned queries cross-attend that memory and a linear head
turns each into an action. Inference: z = 0 (the prior's mean).

Positional embeddings are added to queries and keys inside every attention layer, never to
values, as in DETR and the original ACT. Every decoder layer feeds the next and the last
layer's output (after a final LayerNorm) produces the actions: the paper's depth, where the
original code silently used the first decoder layer only. As in DETR the decoder input is
zeros (the queries live in ``query_pos``), so the first layer's self-attention only ever
reads one value vector and, without dropout, adds a constant (its query and key weights then
get no gradient); every other weight learns. That layer computes its self-attention from one
set of attention weights for the whole batch instead of a full attention per sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from policies.act.config import ACTConfig
from policies.encoders import ImageEncoder
from policies.layers import FastDropout, fast_dropout
from policies.model import ChunkModel, ModelShapes, masked_mean


def sine_table_1d(length: int, dim: int) -> torch.Tensor:
    """(length, dim) fixed sinusoidal positions: sin in the first half, cos in the second."""
    half = (dim + 1) // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = torch.arange(length, dtype=torch.float32)[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)[:, :dim]


def sine_table_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """(height * width, dim) positions of a feature map, row-major: half encodes y, half x.

    Coordinates are normalized to (0, 2 pi] so the embedding does not depend on the map size.
    """
    quarter = dim // 4
    freqs = 10000.0 ** (-torch.arange(quarter, dtype=torch.float32) / quarter)
    ys = (torch.arange(height, dtype=torch.float32) + 1) / height * 2 * math.pi
    xs = (torch.arange(width, dtype=torch.float32) + 1) / width * 2 * math.pi
    ay = ys[:, None] * freqs[None]  # (height, quarter)
    ax = xs[:, None] * freqs[None]  # (width, quarter)
    y_part = torch.cat([ay.sin(), ay.cos()], dim=1)[:, None].expand(height, width, 2 * quarter)
    x_part = torch.cat([ax.sin(), ax.cos()], dim=1)[None].expand(height, width, 2 * quarter)
    return torch.cat([y_part, x_part], dim=-1).reshape(height * width, 4 * quarter)


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(dim, hidden), nn.ReLU(), FastDropout(dropout), nn.Linear(hidden, dim)
        )


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward; ``pos`` goes into queries and keys only."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = FeedForward(dim, hidden, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = FastDropout(dropout), FastDropout(dropout)
        self.pre_norm = pre_norm

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        n_out: int | None = None,
    ) -> torch.Tensor:
        """``n_out``: compute only the first ``n_out`` tokens' outputs (all tokens are still
        attended to); each token's output depends only on its own query, so they are exact."""
        h = self.norm1(x) if self.pre_norm else x
        qk = h + pos
        q = qk if n_out is None else qk[:, :n_out]
        x = x if n_out is None else x[:, :n_out]
        x = x + self.drop1(self.attn(q, qk, h, key_padding_mask=pad_mask, need_weights=False)[0])
        if not self.pre_norm:
            x = self.norm1(x)
        h = self.norm2(x) if self.pre_norm else x
        x = x + self.drop2(self.ff(h))
        return x if self.pre_norm else self.norm2(x)


class DecoderLayer(nn.Module):
    """Self-attention among queries, cross-attention to the memory, feed-forward."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = FeedForward(dim, hidden, dropout)
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(3)])
        self.drops = nn.ModuleList([FastDropout(dropout) for _ in range(3)])
        self.pre_norm = pre_norm

    def _residual(
        self, i: int, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        if self.pre_norm:
            return x + self.drops[i](fn(self.norms[i](x)))
        return self.norms[i](x + self.drops[i](fn(x)))

    def forward(
        self,
        x: torch.Tensor | None,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
    ) -> torch.Tensor:
        """``x`` None: the decoder's input, zeros as in DETR (see ``_self_attend_zeros``)."""
        keys = memory + memory_pos

        def self_attend(h: torch.Tensor) -> torch.Tensor:
            q = h + query_pos
            return self.self_attn(q, q, h, need_weights=False)[0]

        def cross_attend(h: torch.Tensor) -> torch.Tensor:
            return self.cross_attn(h + query_pos, keys, memory, need_weights=False)[0]

        if x is None:
            out = self.drops[0](self._self_attend_zeros(memory.shape[0], query_pos))
            x = out if self.pre_norm else self.norms[0](out)
        else:
            x = self._residual(0, x, self_attend)
        x = self._residual(1, x, cross_attend)
        return self._residual(2, x, self.ff)

    def _self_attend_zeros(self, batch: int, query_pos: torch.Tensor) -> torch.Tensor:
        """Self-attention of all-zero inputs, (batch, H, D): what ``self_attn`` gives, cheaper.

        Every token's value is the same vector v, so query i's output is out_proj(s_i * v)
        per head, s_i the row sum of its (dropped-out) attention weights: 1 in eval mode.
        Queries and keys depend on ``query_pos`` only, so one (heads, H, H) softmax serves
        the whole batch; dropout then draws a mask per sample as ``self_attn`` would. Saves
        the batch's four (B * H, D) x (D, D) projections and their gradients.
        """
        attn = self.self_attn
        d, heads = attn.embed_dim, attn.num_heads
        zeros = query_pos.new_zeros(d)
        h = self.norms[0](zeros) if self.pre_norm else zeros  # the layer's (constant) input
        w_q, w_k, w_v = attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = attn.in_proj_bias.chunk(3)
        qk = h + query_pos.reshape(-1, d)  # (H, D)
        q = F.linear(qk, w_q, b_q).unflatten(-1, (heads, -1)).transpose(0, 1)  # (heads, H, hd)
        k = F.linear(qk, w_k, b_k).unflatten(-1, (heads, -1)).transpose(0, 1)
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d // heads), dim=-1)
        if self.training and attn.dropout > 0:
            weights = fast_dropout(weights.expand(batch, -1, -1, -1), attn.dropout)
        row_sums = weights.sum(-1).transpose(-1, -2)  # (..., H, heads)
        value = F.linear(h, w_v, b_v).unflatten(-1, (heads, -1))  # (heads, hd)
        # out_proj(concat_h s_h v_h) = sum_h s_h (W_o[:, h] v_h) + b_o
        per_head = torch.einsum("dhk,hk->hd", attn.out_proj.weight.unflatten(1, (heads, -1)), value)
        out = row_sums @ per_head + attn.out_proj.bias  # (..., H, D)
        return out.expand(batch, -1, -1)


class TransformerEncoder(nn.Module):
    def __init__(self, config: ACTConfig, num_layers: int) -> None:
        super().__init__()
        c = config
        self.layers = nn.ModuleList(
            EncoderLayer(c.dim_model, c.n_heads, c.dim_feedforward, c.dropout, c.pre_norm)
            for _ in range(num_layers)
        )
        # post-norm layers end normalized already; pre-norm needs a last LayerNorm
        self.norm = nn.LayerNorm(c.dim_model) if c.pre_norm else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        first_only: bool = False,
    ) -> torch.Tensor:
        """(B, T, D) outputs, or (B, 1, D) with ``first_only``: the CVAE encoder reads only
        its CLS output, so its last layer skips the other tokens' projections and
        feed-forward (a quarter of the CVAE encoder's work at 4 layers), same numbers."""
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, pos, pad_mask, n_out=1 if first_only and i == last else None)
        return self.norm(x)


class TransformerDecoder(nn.Module):
    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        c = config
        self.layers = nn.ModuleList(
            DecoderLayer(c.dim_model, c.n_heads, c.dim_feedforward, c.dropout, c.pre_norm)
            for _ in range(c.n_decoder_layers)
        )
        self.norm = nn.LayerNorm(c.dim_model)

    def forward(
        self,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
    ) -> torch.Tensor:
        """The decoder's input is zeros (DETR): the queries live in ``query_pos``."""
        x = None
        for layer in self.layers:  # each layer's output is the next one's input
            x = layer(x, query_pos, memory, memory_pos)
        return self.norm(x)


class ACTModel(ChunkModel):
    """ACT over K cameras and a state vector; sees only the last observation step."""

    def __init__(self, config: ACTConfig, shapes: ModelShapes) -> None:
        super().__init__()
        if shapes.num_cameras < 1:
            raise ValueError(f"ACT needs at least one camera, got num_cameras={shapes.num_cameras}")
        self.config, self.shapes = config, shapes
        d, h = config.dim_model, shapes.horizon
        self.has_state = shapes.state_dim > 0

        # CVAE encoder: [CLS, state, a_1..a_H] -> posterior of z
        if config.use_vae:
            self.vae_cls = nn.Parameter(torch.zeros(1, 1, d))
            self.vae_state_proj = nn.Linear(shapes.state_dim, d) if self.has_state else None
            self.vae_action_proj = nn.Linear(shapes.action_dim, d)
            self.vae_encoder = TransformerEncoder(config, config.n_vae_encoder_layers)
            self.vae_latent_head = nn.Linear(d, 2 * config.latent_dim)
            n_prefix = 1 + int(self.has_state)
            self.register_buffer("vae_pos", sine_table_1d(n_prefix + h, d)[None], persistent=False)

        # main encoder: [z, state, image tokens]
        self.image_encoder = ImageEncoder(
            width=config.encoder_width,
            pooling="avg",
            output_stride=config.encoder_output_stride,
            stages=config.encoder_stages,
        )
        self.image_proj = nn.Conv2d(self.image_encoder.trunk.out_channels, d, 1)
        self.camera_embed = nn.Parameter(torch.zeros(shapes.num_cameras, d))
        self.latent_proj = nn.Linear(config.latent_dim, d)
        self.state_proj = nn.Linear(shapes.state_dim, d) if self.has_state else None
        self.token_pos = nn.Parameter(torch.zeros(1 + int(self.has_state), d))
        self.encoder = TransformerEncoder(config, config.n_encoder_layers)

        # decoder: H learned queries
        self.query_pos = nn.Parameter(torch.zeros(h, d))
        self.decoder = TransformerDecoder(config)
        self.action_head = nn.Linear(d, shapes.action_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        """Xavier for the transformers (as DETR); small normal for learned embeddings."""
        for module in (self.encoder, self.decoder, getattr(self, "vae_encoder", None)):
            if module is None:
                continue
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        for p in (
            self.camera_embed,
            self.token_pos,
            self.query_pos,
            getattr(self, "vae_cls", None),
        ):
            if p is not None:
                nn.init.normal_(p, std=0.02)

    # -- pieces ---------------------------------------------------------------------------

    def _posterior(
        self, state: torch.Tensor, action: torch.Tensor, action_is_pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, latent_dim), from the current state and the target chunk."""
        b = action.shape[0]
        tokens = [self.vae_cls.expand(b, -1, -1)]
        if self.vae_state_proj is not None:
            tokens.append(self.vae_state_proj(state)[:, None])
        n_prefix = len(tokens)
        tokens.append(self.vae_action_proj(action))
        x = torch.cat(tokens, dim=1)
        prefix_valid = action_is_pad.new_zeros(b, n_prefix)
        pad_mask = torch.cat([prefix_valid, action_is_pad.bool()], dim=1)
        out = self.vae_encoder(x, self.vae_pos, pad_mask, first_only=True)
        mu, logvar = self.vae_latent_head(out[:, 0]).chunk(2, dim=-1)
        return mu, logvar

    def _memory(
        self, images: torch.Tensor, state: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output (B, T, D) and its positions (1, T, D); images (B, K, 3, h, w)."""
        b, k = images.shape[:2]
        fmap = self.image_proj(self.image_encoder.feature_map(images.flatten(0, 1)))
        d, fh, fw = fmap.shape[1:]
        img_tokens = fmap.reshape(b, k, d, fh * fw).transpose(2, 3).reshape(b, k * fh * fw, d)
        img_pos = sine_table_2d(fh, fw, d).to(fmap)[None] + self.camera_embed[:, None]
        tokens = [self.latent_proj(z)[:, None]]
        if self.state_proj is not None:
            tokens.append(self.state_proj(state)[:, None])
        tokens.append(img_tokens)
        x = torch.cat(tokens, dim=1)
        pos = torch.cat([self.token_pos, img_pos.reshape(k * fh * fw, d)], dim=0)[None]
        return self.encoder(x, pos), pos

    def _decode(self, images: torch.Tensor, state: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        memory, memory_pos = self._memory(images[:, -1], state[:, -1], z)
        out = self.decoder(self.query_pos[None], memory, memory_pos)
        return self.action_head(out)

    # -- ChunkModel -----------------------------------------------------------------------

    def compute_loss(
        self,
        images: torch.Tensor,
        state: torch.Tensor,
        action: torch.Tensor,
        action_is_pad: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Masked L1 + kl_weight * KL. z comes from the posterior whenever targets are given
        (sampled in training mode, its mean in eval mode, so validation is deterministic)."""
        b = action.shape[0]
        if self.config.use_vae:
            mu, logvar = self._posterior(state[:, -1], action, action_is_pad)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()
        else:
            z = action.new_zeros(b, self.config.latent_dim)
            kl = action.new_zeros(())
        pred = self._decode(images, state, z)
        l1 = masked_mean(F.l1_loss(pred, action, reduction="none"), action_is_pad)
        loss = l1 + self.config.kl_weight * kl
        return loss, {"l1": l1.detach(), "kl": kl.detach()}

    def predict(self, images: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """(B, H, Da) with z = 0, the prior's mean."""
        z = state.new_zeros(state.shape[0], self.config.latent_dim)
        return self._decode(images, state, z)

    def parameter_groups(self, lr: float, lr_backbone: float, weight_decay: float) -> list[dict]:
        """Only the ResNet is the backbone; the CVAE and transformer encoders learn at ``lr``."""
        backbone = [p for p in self.image_encoder.parameters() if p.requires_grad]
        ids = {id(p) for p in backbone}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [
            {"params": rest, "lr": lr, "weight_decay": weight_decay},
            {"params": backbone, "lr": lr_backbone, "weight_decay": weight_decay},
        ]
