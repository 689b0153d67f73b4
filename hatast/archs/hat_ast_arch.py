"""HAT-S + AST: HAT whose overlapping cross-attention blocks use Adaptive Sparse Self-Attention (ASSA) and a Feature
Refinement Feed-forward Network (FRFN), after Zhou et al., "Adapt or Perish: Adaptive Sparse Transformer with
Attentive Feature Refinement for Image Restoration" (CVPR 2024).

Everything but the OCAB is HAT's own code (``HATAST`` subclasses ``HAT`` and overrides one hook). Each change is a
switch, for ablations: ``ocab_attention`` in {softmax, assa}, ``ocab_ffn`` in {mlp, frfn}, any ``overlap_ratio``;
with softmax, mlp and 0.5 the network is HAT, key for key and output for output.

:func:`convert_hat_to_ast` turns a HAT checkpoint into an HATAST one that computes (almost) the same function, so
fine-tuning starts from the HAT model's quality instead of below it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..utils.arguments import check_range
from ..utils.errors import UsageError
from .attention import overlap_relative_position_index, window_attention
from .hat_arch import HAT, OCAB, ResiConnection, Upsampler, hat_config_from_state_dict, overlap_window_size

OcabAttention = Literal["softmax", "assa"]
OcabFfn = Literal["mlp", "frfn"]
AssaWeighting = Literal["sigmoid", "softmax2"]

# Sparse-branch logits are computed for at most this many elements at a time when no gradient is needed, so the
# one extra attention-sized tensor stays bounded on large images (~64 MiB in float32).
_SPARSE_CHUNK_ELEMENTS = 16 * 1024 * 1024


class FRFN(nn.Module):
    """Feature Refinement Feed-forward Network.

    ``x -> partial 3x3 conv on the first dim/4 channels -> Linear(dim, 2*hidden) + GELU -> split (a, b) ->
    (3x3 depthwise conv + GELU)(a) * b -> Linear(hidden, dim)``. Works on any ``H x W`` (not only squares).
    Keys as in the AST authors' code: ``partial_conv3``, ``linear1.0``, ``dwconv.0``, ``linear2.0``.
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.dim_conv = dim // 4
        self.hidden_dim = hidden_dim
        self.partial_conv3 = nn.Conv2d(self.dim_conv, self.dim_conv, 3, 1, 1, bias=False)
        self.linear1 = nn.Sequential(nn.Linear(dim, hidden_dim * 2), nn.GELU())
        self.dwconv = nn.Sequential(nn.Conv2d(hidden_dim, hidden_dim, 3, 1, 1, groups=hidden_dim), nn.GELU())
        self.linear2 = nn.Sequential(nn.Linear(hidden_dim, dim))

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """``[B, H*W, C]`` with ``size = (H, W)`` -> ``[B, H*W, C]``."""
        h, w = size
        b, n, c = x.shape
        x = x.view(b, h, w, c)
        refined = self.partial_conv3(x[..., : self.dim_conv].permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = torch.cat([refined, x[..., self.dim_conv:]], dim=-1).view(b, n, c)
        gate, value = self.linear1(x).chunk(2, dim=-1)
        gate = self.dwconv(gate.reshape(b, h, w, self.hidden_dim).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.linear2(gate.reshape(b, n, self.hidden_dim) * value)


class _ReluSquaredAttention(torch.autograd.Function):
    """``ReLU(q k^T * scale + bias)^2 v`` keeping one attention-sized tensor: ``P = ReLU(S)^2``, squared in place.

    Backward rebuilds ``ReLU(S) = sqrt(P)`` instead of storing it (it is exactly the non-negative root).
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, scale: float) -> Tensor:
        p = torch.matmul(q * scale, k.transpose(-2, -1)).add_(bias).relu_().square_()
        ctx.save_for_backward(q, k, v, p)
        ctx.scale = scale
        ctx.bias_shape = bias.shape
        return p @ v

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        q, k, v, p = ctx.saved_tensors
        grad_v = p.transpose(-2, -1) @ grad
        grad_s = (grad @ v.transpose(-2, -1)).mul_(p.sqrt_()).mul_(2.0)  # d(r^2)/ds = 2r where s > 0, else 0
        grad_q = (grad_s @ k) * ctx.scale
        grad_k = (grad_s.transpose(-2, -1) @ q) * ctx.scale
        grad_bias = _sum_to_shape(grad_s, ctx.bias_shape)
        return grad_q, grad_k, grad_v, grad_bias, None


def _sum_to_shape(t: Tensor, shape: torch.Size) -> Tensor:
    """Reduce a broadcast result back to ``shape`` (the bias's own, e.g. ``[1, nH, Nq, Nk]``)."""
    dims = [i for i, (a, b) in enumerate(zip(t.shape, shape)) if b == 1 and a != 1]
    return t.sum(dims, keepdim=True) if dims else t


def relu_squared_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, scale: float) -> Tensor:
    """``ReLU(q k^T * scale + bias)^2 v``; shapes as :func:`~hatast.archs.attention.window_attention`."""
    if torch.compiler.is_exporting():  # one graph for any number of windows: no custom autograd, no Python chunks
        return torch.matmul(q * scale, k.transpose(-2, -1)).add(bias).relu().square() @ v
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, bias)):
        return _ReluSquaredAttention.apply(q, k, v, bias, scale)
    # Inference: the same formula in window chunks, so the logits tensor stays bounded on large images.
    per_window = q.shape[1] * q.shape[2] * k.shape[2]
    step = max(1, _SPARSE_CHUNK_ELEMENTS // per_window)
    out = q.new_empty(q.shape[:-1] + v.shape[-1:])
    for start in range(0, q.shape[0], step):
        sl = slice(start, start + step)
        s = torch.matmul(q[sl] * scale, k[sl].transpose(-2, -1)).add_(bias).relu_().square_()
        torch.matmul(s, v[sl], out=out[sl])
    return out


class AdaptiveSparseMixing(nn.Module):
    """ASSA's mixing weight ``w`` between the dense (softmax) and sparse (squared-ReLU) attention maps.

    ``'sigmoid'``: one learnable logit ``a``, ``w = sigmoid(a)`` (key ``logit``). ``'softmax2'``: the AST paper's
    two weights ``(w1, w2) = softmax(params)`` (key ``weights``); ``w = w1`` is ``sigmoid(p1 - p2)``, the same
    family with one redundant parameter. ``init_logit`` sets the starting ``w = sigmoid(init_logit)``.
    """

    def __init__(self, weighting: AssaWeighting = "sigmoid", init_logit: float = 0.0) -> None:
        super().__init__()
        if weighting not in ("sigmoid", "softmax2"):
            raise ValueError(f"assa_weighting={weighting!r} is not supported; allowed values: sigmoid, softmax2")
        self.weighting = weighting
        if weighting == "sigmoid":
            self.logit = nn.Parameter(torch.tensor(float(init_logit)))
        else:
            self.weights = nn.Parameter(torch.tensor([float(init_logit), 0.0]))

    def dense_weight(self) -> Tensor:
        """``w``, the weight of the softmax map (a 0-d tensor)."""
        if self.weighting == "sigmoid":
            return torch.sigmoid(self.logit)
        return torch.softmax(self.weights, 0)[0]

    def set_logit(self, value: float) -> None:
        """Set ``w = sigmoid(value)`` in either parametrisation."""
        with torch.no_grad():
            if self.weighting == "sigmoid":
                self.logit.fill_(value)
            else:
                self.weights.copy_(torch.tensor([value, 0.0]))


class AdaptiveOCAB(OCAB):
    """OCAB with ASSA and/or FRFN and an optional learnable bias per key position of the overlapping window.

    Extra keys: ``assa.logit`` or ``assa.weights`` (ASSA), ``key_position_bias`` ``[nH, ows*ows]`` (optional),
    and FRFN's under ``mlp.``.
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
        attention: OcabAttention = "assa",
        ffn: OcabFfn = "frfn",
        assa_weighting: AssaWeighting = "sigmoid",
        assa_init_logit: float = 0.0,
        key_position_bias: bool = False,
    ) -> None:
        super().__init__(dim, window_size, overlap_ratio, num_heads, qkv_bias, qk_scale, mlp_ratio)
        if attention not in ("softmax", "assa"):
            raise ValueError(f"ocab_attention={attention!r} is not supported; allowed values: softmax, assa")
        if ffn not in ("mlp", "frfn"):
            raise ValueError(f"ocab_ffn={ffn!r} is not supported; allowed values: mlp, frfn")
        self.assa = AdaptiveSparseMixing(assa_weighting, assa_init_logit) if attention == "assa" else None
        if ffn == "frfn":
            self.mlp = FRFN(dim, int(dim * mlp_ratio))
        if key_position_bias:
            self.key_position_bias = nn.Parameter(torch.zeros(num_heads, self.overlap_win_size ** 2))
        else:
            self.key_position_bias = None

    def attend(self, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        if self.key_position_bias is not None:
            bias = bias + self.key_position_bias[None, :, None, :]
        dense = window_attention(q, k, v, bias, self.scale, self.impl)
        if self.assa is None:
            return dense
        w = self.assa.dense_weight()
        sparse = relu_squared_attention(q, k, v, bias, self.scale)
        return torch.lerp(sparse, dense, w)  # w * dense + (1 - w) * sparse


@ARCH_REGISTRY.register()
class HATAST(HAT):
    """HAT whose OCABs may use ASSA, FRFN and a wider overlap (HAT-S + AST: assa, frfn, overlap 0.75).

    Takes every :class:`~hatast.archs.hat_arch.HAT` argument (``overlap_ratio`` defaults to 0.75) plus:
        ocab_attention: ``'assa'`` or ``'softmax'``.
        ocab_ffn: ``'frfn'`` or ``'mlp'``.
        assa_weighting: ``'sigmoid'`` (one logit) or ``'softmax2'`` (the AST paper's two softmax weights).
        assa_init_logit: starting logit of the softmax weight, ``w = sigmoid(assa_init_logit)``; 0 gives the AST
            paper's even start, a large value starts close to plain softmax (see :func:`convert_hat_to_ast`).
        key_position_bias: add a learnable bias per key position of the overlapping window (used by converted
            checkpoints to silence the keys a wider overlap adds).
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
        overlap_ratio: float = 0.75,
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
        ocab_attention: OcabAttention = "assa",
        ocab_ffn: OcabFfn = "frfn",
        assa_weighting: AssaWeighting = "sigmoid",
        assa_init_logit: float = 0.0,
        key_position_bias: bool = False,
    ) -> None:
        # HAT's arguments, spelt out (with the AST default overlap of 0.75) so option checks and help read one
        # real signature; the OCAB options are read by build_overlap_block during HAT's construction.
        self._ocab_options = dict(attention=ocab_attention, ffn=ocab_ffn, assa_weighting=assa_weighting,
                                  assa_init_logit=assa_init_logit, key_position_bias=key_position_bias)
        self._plain_ocab = ocab_attention == "softmax" and ocab_ffn == "mlp" and not key_position_bias
        super().__init__(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, depths=depths,
            num_heads=num_heads, window_size=window_size, compress_ratio=compress_ratio,
            squeeze_factor=squeeze_factor, conv_scale=conv_scale, overlap_ratio=overlap_ratio, mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias, qk_scale=qk_scale, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate, ape=ape, patch_norm=patch_norm, use_checkpoint=use_checkpoint,
            upscale=upscale, img_range=img_range, upsampler=upsampler, resi_connection=resi_connection)

    def build_overlap_block(self, dim: int, window_size: int, overlap_ratio: float, num_heads: int, qkv_bias: bool,
                            qk_scale: float | None, mlp_ratio: float) -> nn.Module:
        if self._plain_ocab:
            return OCAB(dim, window_size, overlap_ratio, num_heads, qkv_bias, qk_scale, mlp_ratio)
        return AdaptiveOCAB(dim, window_size, overlap_ratio, num_heads, qkv_bias, qk_scale, mlp_ratio,
                            **self._ocab_options)


def gelu_inverse_of_one() -> float:
    """The ``b`` with ``GELU(b) = 1`` (exact-erf GELU), so a zero-kernel depthwise conv with bias ``b`` outputs 1."""
    b = torch.tensor(1.0, dtype=torch.float64)
    for _ in range(50):  # Newton on b * Phi(b) - 1
        phi = 0.5 * (1 + torch.erf(b / math.sqrt(2)))
        pdf = torch.exp(-0.5 * b * b) / math.sqrt(2 * math.pi)
        b = b - (b * phi - 1) / (phi + b * pdf)
    return float(b)


def _remap_overlap_table(old_table: Tensor, ws: int, old_ows: int, new_ows: int, new_table: Tensor) -> Tensor:
    """Copy every bias of ``old_table`` to the entry of ``new_table`` that encodes the same key-query offset.

    The old key window sits inside the new one, shifted by ``(new_ows - ws) // 2 - (old_ows - ws) // 2`` pixels;
    both indices are the authors' (with negative entries wrapping), so equal physical offsets are matched through
    them. Entries for offsets only the new border keys have keep ``new_table``'s values.
    """
    shift = (new_ows - ws) // 2 - (old_ows - ws) // 2
    old_index = overlap_relative_position_index(ws, old_ows) % old_table.shape[0]
    new_index = overlap_relative_position_index(ws, new_ows) % new_table.shape[0]
    rows = torch.arange(old_ows).repeat_interleave(old_ows) + shift
    cols = torch.arange(old_ows).repeat(old_ows) + shift
    inner = new_index[:, rows * new_ows + cols]  # [Nq, old_ows^2]: new entries of the old keys
    table = new_table.clone()
    table[inner.reshape(-1)] = old_table[old_index.reshape(-1)]
    return table


def _border_mask(ws: int, old_ows: int, new_ows: int) -> Tensor:
    """``[new_ows^2]`` True for key positions of the new window that lie outside the old one."""
    shift = (new_ows - ws) // 2 - (old_ows - ws) // 2
    inside = torch.zeros(new_ows, new_ows, dtype=torch.bool)
    inside[shift:shift + old_ows, shift:shift + old_ows] = True
    return ~inside.reshape(-1)


def convert_hat_to_ast(
    state: Mapping[str, Tensor],
    overlap_ratio: float = 0.75,
    ocab_attention: OcabAttention = "assa",
    ocab_ffn: OcabFfn = "frfn",
    assa_weighting: AssaWeighting = "sigmoid",
    assa_init_logit: float = 14.0,
    border_key_bias: float = -14.0,
) -> tuple[dict[str, Tensor], dict]:
    """Turn a HAT state dict into an HATAST one that computes (almost) the same function.

    * Every HAB, convolution and the OCAB's norms/qkv/projection are copied unchanged.
    * ASSA: ``w = sigmoid(assa_init_logit)`` starts near pure softmax. The squared-ReLU map is not normalised
      (its rows can sum to hundreds in a trained network), so ``1 - w`` must be tiny: 8.3e-7 at the default 14.
    * FRFN computes exactly the old MLP: identity partial conv, a zero depthwise kernel whose bias ``b`` has
      ``GELU(b) = 1`` (so the gate is 1), the value half of ``linear1`` and ``linear2`` copied from ``fc1``/``fc2``.
      The gate half of ``linear1`` keeps its random initialisation so the gate has a signal once the kernel learns.
    * Wider overlap: the relative-position table is copied where the old offsets existed, and the keys in the new
      border get a learnable per-position bias of ``border_key_bias`` (softmax weight ``exp(border_key_bias)`` of
      an interior key's, and exactly zero in the squared-ReLU branch while their logits are negative).

    Returns the new state dict and the HATAST constructor arguments it needs.
    """
    overlap_ratio = check_range("overlap_ratio", overlap_ratio, float, 0, 2)  # the command line's ranges
    assa_init_logit = check_range("assa_init_logit", assa_init_logit, float, -50, 50)
    border_key_bias = check_range("border_key_bias", border_key_bias, float, -100, 100)
    if is_hat_ast_state_dict(state):
        raise UsageError("the checkpoint is already HAT+AST (it has ASSA, FRFN or key-position-bias weights)")
    config = hat_config_from_state_dict(state)
    ws, old_ratio = config["window_size"], config["overlap_ratio"]
    old_ows, new_ows = overlap_window_size(ws, old_ratio), overlap_window_size(ws, overlap_ratio)
    if new_ows < old_ows or (new_ows - ws) % 2 != (old_ows - ws) % 2:  # a user's number: a UsageError, one line
        usable = ", ".join(f"{k / ws:g}" for k in range(old_ows - ws, 2 * ws + 1, 2))
        why = ("is narrower than the checkpoint's" if new_ows < old_ows else
               "would not keep the wider key window centred on the old one (it must grow by an even number of "
               "pixels) for")
        raise UsageError(f"overlap_ratio {overlap_ratio:g} {why} window {ws} and overlap {old_ratio:g}; this "
                         f"checkpoint takes {usable} (up to 2)")
    widened = new_ows > old_ows
    new_config = dict(config, overlap_ratio=overlap_ratio, ocab_attention=ocab_attention, ocab_ffn=ocab_ffn,
                      assa_weighting=assa_weighting, assa_init_logit=assa_init_logit, key_position_bias=widened)
    net = HATAST(**new_config)
    target = net.state_dict()
    out = {k: (state[k] if k in state and state[k].shape == v.shape else v).clone() for k, v in target.items()}
    out["relative_position_index_OCA"] = target["relative_position_index_OCA"]
    gelu_one = gelu_inverse_of_one()
    for i in range(len(config["depths"])):
        p = f"layers.{i}.residual_group.overlap_attn."
        key = p + "relative_position_bias_table"
        if widened:
            out[key] = _remap_overlap_table(state[key], ws, old_ows, new_ows, target[key])
            bias = torch.zeros_like(target[p + "key_position_bias"])
            bias[:, _border_mask(ws, old_ows, new_ows)] = border_key_bias
            out[p + "key_position_bias"] = bias
        if ocab_ffn == "frfn":
            fc1_w, fc1_b = state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"]
            hidden = fc1_w.shape[0]
            conv = torch.zeros_like(target[p + "mlp.partial_conv3.weight"])
            conv[torch.arange(conv.shape[0]), torch.arange(conv.shape[0]), 1, 1] = 1.0
            out[p + "mlp.partial_conv3.weight"] = conv
            out[p + "mlp.linear1.0.weight"][hidden:] = fc1_w
            out[p + "mlp.linear1.0.bias"][hidden:] = fc1_b
            out[p + "mlp.dwconv.0.weight"] = torch.zeros_like(target[p + "mlp.dwconv.0.weight"])
            out[p + "mlp.dwconv.0.bias"] = torch.full_like(target[p + "mlp.dwconv.0.bias"], gelu_one)
            out[p + "mlp.linear2.0.weight"] = state[p + "mlp.fc2.weight"].clone()
            out[p + "mlp.linear2.0.bias"] = state[p + "mlp.fc2.bias"].clone()
    net.load_state_dict(out, strict=True)  # proves the result fits
    return net.state_dict(), new_config


def hat_ast_config_from_state_dict(state: Mapping[str, Tensor]) -> dict:
    """HATAST constructor arguments from a state dict: HAT's, plus the OCAB options its keys reveal."""
    config = hat_config_from_state_dict(state)
    ocab = "layers.0.residual_group.overlap_attn."
    weighting = "softmax2" if ocab + "assa.weights" in state else "sigmoid"
    return dict(
        config,
        ocab_attention="assa" if any(k.startswith(ocab + "assa.") for k in state) else "softmax",
        ocab_ffn="frfn" if ocab + "mlp.linear1.0.weight" in state else "mlp",
        assa_weighting=weighting,
        key_position_bias=ocab + "key_position_bias" in state,
    )


def is_hat_ast_state_dict(state: Mapping[str, Tensor]) -> bool:
    ocab = "layers.0.residual_group.overlap_attn."
    return "relative_position_index_OCA" in state and any(
        k.startswith((ocab + "assa.", ocab + "mlp.linear1.", ocab + "key_position_bias")) for k in state)
