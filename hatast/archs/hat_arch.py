"""HAT: Hybrid Attention Transformer (Chen et al., "Activating More Pixels in Image Super-Resolution Transformer").

One implementation for HAT-S, HAT and HAT-L (see :data:`HAT_VARIANTS`). Constructor arguments carry the authors'
names so their option files work unchanged, and the state dict has their keys and shapes, so released checkpoints
load with ``strict=True``. Unlike the authors' code, unknown options raise instead of being swallowed, the
network pads any input size itself, attention runs through ``scaled_dot_product_attention``, and the bias lookups
and shift masks are built once per input size instead of every forward.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..utils.checkpoint import tensor_shape
from ..utils.padding import pad_to_multiple
from .attention import (
    ATTENTION_LABEL,
    AttentionImpl,
    BiasLookup,
    BoundedCache,
    ShiftMask,
    WindowSelfAttention,
    dense_shifted_window_mask,
    new_bias_table,
    overlap_relative_position_index,
    shifted_window_mask,
    window_attention,
    window_partition,
    window_relative_position_index,
    window_reverse,
)

Upsampler = Literal["pixelshuffle"]
ResiConnection = Literal["1conv", "identity"]
UPSAMPLERS = ("pixelshuffle",)
RESI_CONNECTIONS = ("1conv", "identity")
RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean, subtracted before the network as in the authors' code

_COMMON = dict(img_size=64, window_size=16, overlap_ratio=0.5, mlp_ratio=2.0, conv_scale=0.01,
               upsampler="pixelshuffle", resi_connection="1conv")
HAT_VARIANTS: dict[str, dict] = {
    "HAT-S": dict(_COMMON, embed_dim=144, depths=(6,) * 6, num_heads=(6,) * 6, compress_ratio=24, squeeze_factor=24),
    "HAT": dict(_COMMON, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, compress_ratio=3, squeeze_factor=30),
    "HAT-L": dict(_COMMON, embed_dim=180, depths=(6,) * 12, num_heads=(6,) * 12, compress_ratio=3, squeeze_factor=30),
}


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` during training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention (RCAN). Keys: ``attention.{1,3}``."""

    def __init__(self, num_feat: int, squeeze_factor: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(num_feat, num_feat // squeeze_factor, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_feat // squeeze_factor, num_feat, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> ``[B, C, H, W]``."""
        return x * self.attention(x)


class CAB(nn.Module):
    """Channel attention block: conv-GELU-conv then channel attention. Keys: ``cab.{0,2,3}``."""

    def __init__(self, num_feat: int, compress_ratio: int, squeeze_factor: int) -> None:
        super().__init__()
        hidden = num_feat // compress_ratio
        self.cab = nn.Sequential(
            nn.Conv2d(num_feat, hidden, 3, 1, 1),
            nn.GELU(),
            nn.Conv2d(hidden, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> ``[B, C, H, W]``."""
        return self.cab(x)


class Mlp(nn.Module):
    """Two-layer feed-forward network with GELU. Keys: ``fc1``, ``fc2``."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """``[B, L, C]`` -> ``[B, L, C]`` (``size`` is accepted for interface parity with spatial FFNs)."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


@dataclass
class WindowContext:
    """What every block of one forward pass shares: the feature size and the index/mask tensors."""

    size: tuple[int, int]
    index_sa: Tensor  # [ws*ws, ws*ws]
    index_oca: Tensor  # [ws*ws, ows*ows]
    shift_mask: ShiftMask | Tensor  # dense [nW, 1, N, N] while exporting


class HAB(nn.Module):
    """Hybrid attention block: (shifted) window self-attention + scaled channel-attention branch, then an MLP."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        compress_ratio: int,
        squeeze_factor: int,
        conv_scale: float,
        mlp_ratio: float,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.conv_scale = conv_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowSelfAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.conv_block = CAB(dim, compress_ratio, squeeze_factor)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor, ctx: WindowContext) -> Tensor:
        """``[B, H*W, C]`` -> ``[B, H*W, C]``."""
        h, w = ctx.size
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        conv_x = self.conv_block(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(b, h * w, c)

        ws, shift = self.window_size, self.shift_size
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        windows = self.attn(window_partition(x, ws), ctx.index_sa, ctx.shift_mask if shift else None)
        x = window_reverse(windows, ws, h, w)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))

        x = shortcut + self.drop_path(x.reshape(b, h * w, c)) + conv_x * self.conv_scale
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OCAB(nn.Module):
    """Overlapping cross-attention block: queries from ``ws x ws`` windows attend to keys/values of the enclosing
    ``ows x ows`` window, ``ows = ws + int(ws * overlap_ratio)``, zero-padded at the image border.

    Keys: ``relative_position_bias_table``, ``norm1``, ``qkv``, ``proj``, ``norm2``, ``mlp.*``.
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        overlap_ratio: float,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim = dim
        self.num_heads = num_heads
        self.window_size = window_size
        self.overlap_win_size = overlap_window_size(window_size, overlap_ratio)
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.relative_position_bias_table = new_bias_table((window_size + self.overlap_win_size - 1) ** 2, num_heads)
        self.bias_lookup = BiasLookup()
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.impl: AttentionImpl = "fused"

    def overlapping_windows(self, kv: Tensor) -> Tensor:
        """``[B, H, W, C']`` -> ``[B * nW, ows * ows, C']``: one enlarged window around each query window.

        The border is zero-padded by ``(ows - ws) // 2`` (the rest, if odd, on the bottom/right), which is what the
        authors' ``nn.Unfold`` does for the even extensions every released model uses.
        """
        ws, ows = self.window_size, self.overlap_win_size
        before = (ows - ws) // 2
        after = ows - ws - before
        kv = F.pad(kv, (0, 0, before, after, before, after))
        patches = kv.unfold(1, ows, ws).unfold(2, ows, ws)  # [B, nWh, nWw, C', ows, ows]
        return patches.permute(0, 1, 2, 4, 5, 3).reshape(-1, ows * ows, kv.shape[-1])

    def attend(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        """Attention kernel: ``[B*nW, nH, Nq, d]``, ``[B*nW, nH, Nk, d]`` x2, bias ``[1, nH, Nq, Nk]``."""
        return window_attention(q, k, v, bias, self.scale, self.impl)

    def forward(self, x: Tensor, ctx: WindowContext) -> Tensor:
        """``[B, H*W, C]`` -> ``[B, H*W, C]``."""
        h, w = ctx.size
        b, _, c = x.shape
        nh, d = self.num_heads, c // self.num_heads
        shortcut = x
        qkv = self.qkv(self.norm1(x)).view(b, h, w, 3 * c)
        q = window_partition(qkv[..., :c], self.window_size)  # [B*nW, Nq, C]
        kv = self.overlapping_windows(qkv[..., c:])  # [B*nW, Nk, 2C]
        bw, nq, _ = q.shape
        nk = kv.shape[1]
        q = q.view(bw, nq, nh, d).transpose(1, 2)
        kv = kv.view(bw, nk, 2, nh, d).permute(2, 0, 3, 1, 4)
        with torch.profiler.record_function(ATTENTION_LABEL):
            bias = self.bias_lookup(self.relative_position_bias_table, ctx.index_oca)
            out = self.attend(q, kv[0], kv[1], bias)
        out = out.transpose(1, 2).reshape(bw, nq, c)
        x = self.proj(window_reverse(out, self.window_size, h, w).view(b, h * w, c)) + shortcut
        return x + self.mlp(self.norm2(x), ctx.size)


def overlap_window_size(window_size: int, overlap_ratio: float) -> int:
    """Key/value window of the OCAB: ``ws + int(ws * overlap_ratio)`` (16 -> 24 at 0.5, 28 at 0.75)."""
    return window_size + int(window_size * overlap_ratio)


class AttentionBlocks(nn.Module):
    """The attention part of one RHAG: ``depth`` HABs (every second one shifted) followed by one OCAB.

    Keys: ``blocks.{i}.*``, ``overlap_attn.*``.
    """

    def __init__(self, blocks: Sequence[HAB], overlap_attn: nn.Module, use_checkpoint: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.overlap_attn = overlap_attn
        self.use_checkpoint = use_checkpoint

    def forward(self, x: Tensor, ctx: WindowContext) -> Tensor:
        """``[B, H*W, C]`` -> ``[B, H*W, C]``."""
        for block in [*self.blocks, self.overlap_attn]:
            if self.use_checkpoint and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, ctx, use_reentrant=False)
            else:
                x = block(x, ctx)
        return x


class RHAG(nn.Module):
    """Residual hybrid attention group: attention blocks, a 3x3 conv (``resi_connection``), and a skip."""

    def __init__(self, residual_group: AttentionBlocks, dim: int, resi_connection: ResiConnection) -> None:
        super().__init__()
        self.residual_group = residual_group
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1) if resi_connection == "1conv" else nn.Identity()

    def forward(self, x: Tensor, ctx: WindowContext) -> Tensor:
        """``[B, H*W, C]`` -> ``[B, H*W, C]``."""
        h, w = ctx.size
        b, _, c = x.shape
        y = self.residual_group(x, ctx).transpose(1, 2).reshape(b, c, h, w)
        return self.conv(y).flatten(2).transpose(1, 2) + x


class PatchEmbed(nn.Module):
    """Feature map to token sequence, with the optional LayerNorm of ``patch_norm``. Key: ``norm``."""

    def __init__(self, dim: int, patch_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if patch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` -> ``[B, H*W, C]``."""
        x = x.flatten(2).transpose(1, 2)
        return self.norm(x) if self.norm is not None else x


class Upsample(nn.Sequential):
    """Pixel-shuffle upsampler for scales 2^n and 3. Keys: ``0``, ``2``, ... (the convs)."""

    def __init__(self, scale: int, num_feat: int) -> None:
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        super().__init__(*layers)


def check_upscale(upscale: int) -> None:
    if not (upscale == 3 or (upscale >= 1 and upscale & (upscale - 1) == 0)):
        raise ValueError(f"upscale={upscale} is not supported; use 1, 3 or a power of two (2, 4, 8, ...)")


@ARCH_REGISTRY.register()
class HAT(nn.Module):
    """Hybrid Attention Transformer for image super-resolution.

    Args (the authors' names and defaults):
        img_size: training patch size; only checked against ``window_size`` (any input size works).
        patch_size: must be 1 (HAT embeds pixels, not patches).
        in_chans: image channels (3 subtracts the DIV2K mean, others subtract 0).
        embed_dim: feature channels C.
        depths / num_heads: HABs per RHAG and heads per RHAG; one entry per RHAG.
        window_size: attention window ws; the input is padded to a multiple of it.
        compress_ratio / squeeze_factor: channel-attention branch widths ``C // compress_ratio``, ``C // squeeze``.
        conv_scale: weight of the channel-attention branch.
        overlap_ratio: OCAB key window ``ws + int(ws * overlap_ratio)``.
        mlp_ratio: MLP hidden width ``C * mlp_ratio``.
        qkv_bias / qk_scale: query-key-value bias and the attention scale (default ``d ** -0.5``).
        drop_rate / attn_drop_rate / drop_path_rate: dropout, attention dropout, stochastic depth (linear in depth).
        ape: absolute position embedding; not supported (it ties the network to one input size).
        patch_norm: LayerNorm after the embedding.
        use_checkpoint: gradient checkpointing of every block while training.
        upscale: 1, 3 or 2^n.
        img_range: pixel range the network works in.
        upsampler: ``'pixelshuffle'``.
        resi_connection: ``'1conv'`` or ``'identity'``.

    Shapes: ``forward`` maps ``[B, in_chans, H, W]`` to ``[B, in_chans, H * upscale, W * upscale]`` for any H, W.
    """

    def __init__(
        self,
        img_size: int = 64,
        patch_size: int = 1,
        in_chans: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (6, 6, 6, 6),
        num_heads: Sequence[int] = (6, 6, 6, 6),
        window_size: int = 7,
        compress_ratio: int = 3,
        squeeze_factor: int = 30,
        conv_scale: float = 0.01,
        overlap_ratio: float = 0.5,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        ape: bool = False,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        upscale: int = 2,
        img_range: float = 1.0,
        upsampler: Upsampler = "pixelshuffle",
        resi_connection: ResiConnection = "1conv",
    ) -> None:
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler={upsampler!r} is not supported; allowed values: {', '.join(UPSAMPLERS)}")
        if resi_connection not in RESI_CONNECTIONS:
            raise ValueError(
                f"resi_connection={resi_connection!r} is not supported; allowed values: {', '.join(RESI_CONNECTIONS)}")
        check_upscale(upscale)
        if len(depths) != len(num_heads):
            raise ValueError(f"depths ({len(depths)} groups) and num_heads ({len(num_heads)}) must have equal length")
        if ape:
            raise ValueError("ape=True (absolute position embedding) is not supported: it fixes the input size")
        if patch_size != 1:
            raise ValueError(f"patch_size={patch_size} is not supported; HAT uses patch_size=1")
        if img_size <= window_size:
            # The authors' code silently shrinks the window to img_size here, building a different network.
            raise ValueError(f"img_size ({img_size}) must be larger than window_size ({window_size})")
        if not 0 <= overlap_ratio:
            raise ValueError(f"overlap_ratio must be >= 0, got {overlap_ratio}")

        self.window_size = window_size
        self.shift_size = window_size // 2
        self.overlap_ratio = overlap_ratio
        self.upscale = upscale
        self.img_range = img_range
        self.upsampler = upsampler
        self.in_chans = in_chans
        mean = RGB_MEAN if in_chans == 3 else (0.0,) * in_chans
        self.register_buffer("mean", torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)
        # Persistent because the authors' checkpoints hold them (strict loading needs the keys).
        self.register_buffer("relative_position_index_SA", window_relative_position_index(window_size))
        self.register_buffer(
            "relative_position_index_OCA",
            overlap_relative_position_index(window_size, overlap_window_size(window_size, overlap_ratio)))
        self._mask_cache = BoundedCache()
        self.attention_impl: AttentionImpl = "fused"

        num_feat = 64
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim, patch_norm)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            rates = dpr[sum(depths[:i]):sum(depths[:i + 1])]
            blocks = [
                HAB(embed_dim, heads, window_size, 0 if j % 2 == 0 else window_size // 2, compress_ratio,
                    squeeze_factor, conv_scale, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, rates[j])
                for j in range(depth)
            ]
            ocab = self.build_overlap_block(embed_dim, window_size, overlap_ratio, heads, qkv_bias, qk_scale, mlp_ratio)
            self.layers.append(RHAG(AttentionBlocks(blocks, ocab, use_checkpoint), embed_dim, resi_connection))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1) if resi_connection == "1conv" else nn.Identity()
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        self.apply(self._init_weights)

    def build_overlap_block(self, dim: int, window_size: int, overlap_ratio: float, num_heads: int, qkv_bias: bool,
                            qk_scale: float | None, mlp_ratio: float) -> nn.Module:
        """The block that closes each RHAG; variants override this one hook."""
        return OCAB(dim, window_size, overlap_ratio, num_heads, qkv_bias, qk_scale, mlp_ratio)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def set_attention_impl(self, impl: AttentionImpl) -> None:
        """Switch every attention kernel between ``'fused'`` (SDPA, cached bias/masks) and ``'reference'``
        (explicit softmax, everything rebuilt per forward like the authors' code); used by tests and benchmarks."""
        if impl not in ("fused", "reference"):
            raise ValueError(f"impl must be 'fused' or 'reference', got {impl!r}")
        for module in self.modules():
            if hasattr(module, "impl"):
                module.impl = impl
            if isinstance(getattr(module, "bias_lookup", None), BiasLookup):
                module.bias_lookup.enabled = impl == "fused"
                module.bias_lookup.clear()
        self.attention_impl = impl
        self._mask_cache.clear()

    def shift_mask(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> ShiftMask | Tensor:
        """Shifted-window mask for an ``h x w`` feature map, cached per size, device and dtype.

        While exporting, the dense mask ``[nW, 1, N, N]`` computed in the graph from the (symbolic) size instead."""
        if torch.compiler.is_exporting():
            return dense_shifted_window_mask(h, w, self.window_size, self.shift_size, device, dtype)

        def build() -> ShiftMask:
            return shifted_window_mask(h, w, self.window_size, self.shift_size).to(device, dtype)

        if self.attention_impl == "reference":
            return build()
        return self._mask_cache.get((h, w, device, dtype), build)

    def forward_features(self, x: Tensor) -> Tensor:
        """Deep features: ``[B, C, H, W]`` -> ``[B, C, H, W]`` (H, W multiples of the window)."""
        b, c, h, w = x.shape
        ctx = WindowContext((h, w), self.relative_position_index_SA, self.relative_position_index_OCA,
                            self.shift_mask(h, w, x.device, x.dtype))
        x = self.pos_drop(self.patch_embed(x))
        for layer in self.layers:
            x = layer(x, ctx)
        return self.norm(x).transpose(1, 2).reshape(b, c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, in_chans, H, W]`` in [0, 1] -> ``[B, in_chans, H * upscale, W * upscale]``; any H, W >= 1."""
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, self.window_size)
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        x = x / self.img_range + mean
        return x[..., : h * self.upscale, : w * self.upscale]


def hat_variant(config: Mapping) -> str | None:
    """The paper variant (HAT-S, HAT, HAT-L) whose size ``config`` has, or None for another size."""
    keys = ("embed_dim", "depths", "num_heads", "compress_ratio", "squeeze_factor")

    def same(a, b) -> bool:
        return tuple(a) == tuple(b) if isinstance(b, (tuple, list)) else a == b

    return next((name for name, v in HAT_VARIANTS.items() if all(same(config.get(k), v[k]) for k in keys)), None)


def build_hat(variant: str, upscale: int, **overrides) -> HAT:
    """Build a paper variant: ``build_hat('HAT-S', 4)``; ``overrides`` replace any constructor argument."""
    if variant not in HAT_VARIANTS:
        raise ValueError(f"unknown HAT variant {variant!r}; choose from {', '.join(HAT_VARIANTS)}")
    return HAT(**{**HAT_VARIANTS[variant], "upscale": upscale, **overrides})


def hat_config_from_state_dict(state_dict: Mapping[str, Tensor]) -> dict:
    """Infer HAT constructor arguments from a state dict in the authors' key names (spandrel-style).

    Reads every hyper-parameter that changes a shape; ``conv_scale``, ``img_range`` and ``qk_scale`` do not and keep
    their usual values. Raises ValueError when the dict is not a HAT state dict.
    """
    required = ("conv_first.weight", "relative_position_index_SA", "relative_position_index_OCA")
    missing = [k for k in required if k not in state_dict]
    if missing:
        raise ValueError(f"not a HAT state dict: missing {', '.join(missing)}")
    embed_dim, in_chans = tensor_shape(state_dict, "conv_first.weight", 4)[:2]
    window_size = math.isqrt(tensor_shape(state_dict, "relative_position_index_SA", 2)[0])
    overlap_win = math.isqrt(tensor_shape(state_dict, "relative_position_index_OCA", 2)[1])
    layer_ids = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"layers\.(\d+)\.", k))})
    depths, heads = [], []
    for i in layer_ids:
        prefix = f"layers.{i}.residual_group."
        blocks = {int(m.group(1)) for k in state_dict if (m := re.match(re.escape(prefix) + r"blocks\.(\d+)\.", k))}
        depths.append(len(blocks))
        heads.append(tensor_shape(state_dict, prefix + "overlap_attn.relative_position_bias_table", 2)[1])
    block0 = "layers.0.residual_group.blocks.0."
    upsample_convs = sorted(int(m.group(1)) for k in state_dict if (m := re.match(r"upsample\.(\d+)\.weight$", k)))
    if upsample_convs and tensor_shape(state_dict, f"upsample.{upsample_convs[0]}.weight", 4)[0] == 9 * 64:
        upscale = 3
    else:
        upscale = 2 ** len(upsample_convs)
    return dict(
        in_chans=in_chans,
        embed_dim=embed_dim,
        depths=depths,
        num_heads=heads,
        window_size=window_size,
        overlap_ratio=(overlap_win - window_size) / window_size,
        compress_ratio=embed_dim // tensor_shape(state_dict, block0 + "conv_block.cab.0.weight", 4)[0],
        squeeze_factor=embed_dim // tensor_shape(state_dict, block0 + "conv_block.cab.3.attention.1.weight", 4)[0],
        mlp_ratio=tensor_shape(state_dict, block0 + "mlp.fc1.weight", 2)[0] / embed_dim,
        qkv_bias=block0 + "attn.qkv.bias" in state_dict,
        patch_norm="patch_embed.norm.weight" in state_dict,
        resi_connection="1conv" if "conv_after_body.weight" in state_dict else "identity",
        upscale=upscale,
        upsampler="pixelshuffle",
        img_size=max(64, 2 * window_size),
    )
