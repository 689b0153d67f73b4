"""Window-attention primitives shared by every transformer block in hatast.

Everything that HAB (shifted window self-attention), OCAB (overlapping cross-attention) and their variants need
lives here once: window partition/reverse, the relative-position indices in the HAT authors' conventions (their
checkpoints store the index tensors, so the conventions must match bit for bit), the shifted-window mask, the
relative-position bias lookup and the attention kernel itself.

The kernel has two implementations of the same formula ``softmax(q k^T * scale + B) v``:

* ``fused``: ``torch.nn.functional.scaled_dot_product_attention`` with the bias (and shift mask) passed as a 4-D
  ``attn_mask``. On CPU this selects the flash kernel, which never materialises the attention matrix. The bias is
  given with size-1 broadcast dimensions, which the kernel reads with zero strides: a 3-D mask or a 5-D query would
  make PyTorch fall back to the slow math path.
* ``reference``: the explicit matmul-softmax-matmul of the authors' code, kept for tests and benchmarks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AttentionImpl = Literal["fused", "reference"]

# Profiler label around every attention computation (bias lookup to attention output), so profiles and
# benchmarks can tell the time spent in attention from the projections, MLPs and convolutions around it.
ATTENTION_LABEL = "hatast::attention"

# The authors fill masked (cross-region) logits with -100 rather than -inf; exp(-100) is ~4e-44, and we keep
# their constant so shifted-window outputs match theirs to the last bit that float32 can show.
SHIFT_MASK_VALUE = -100.0


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """Split a feature map into non-overlapping windows.

    Args:
        x: ``[B, H, W, C]`` with H and W multiples of ``window_size``.
    Returns:
        ``[B * nW, window_size * window_size, C]``, windows in row-major order per image.
    """
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, c)


def window_reverse(windows: Tensor, window_size: int, height: int, width: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``[B * nW, ws * ws, C]`` -> ``[B, H, W, C]``."""
    c = windows.shape[-1]
    nh, nw = height // window_size, width // window_size
    x = windows.view(-1, nh, nw, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


def _grid(size: int) -> Tensor:
    """Row/column coordinates of a ``size x size`` window: ``[2, size * size]``."""
    coords = torch.arange(size)
    return torch.stack(torch.meshgrid(coords, coords, indexing="ij")).flatten(1)


def window_relative_position_index(window_size: int) -> Tensor:
    """Swin/HAT index into a ``(2ws-1)^2`` bias table for self-attention inside a window.

    Returns:
        ``[ws * ws, ws * ws]`` int64; entry (i, j) encodes the offset query_i - key_j.
    """
    coords = _grid(window_size)
    offset = coords[:, :, None] - coords[:, None, :] + (window_size - 1)  # [2, N, N], both >= 0
    return offset[0] * (2 * window_size - 1) + offset[1]


def overlap_relative_position_index(window_size: int, overlap_window_size: int) -> Tensor:
    """HAT's index into the ``(ws + ows - 1)^2`` OCA bias table, query window ws, key window ows.

    The authors' convention measures key - query in the coordinates of each window's own corner and shifts by
    ``ws - ows + 1``, which leaves some indices negative; PyTorch indexing wraps those around the table. The map
    from offsets to table rows is still one-to-one, and released checkpoints store exactly these values, so we
    reproduce them (negatives included) rather than normalise them.

    Returns:
        ``[ws * ws, ows * ows]`` int64.
    """
    q, k = _grid(window_size), _grid(overlap_window_size)
    offset = k[:, None, :] - q[:, :, None] + (window_size - overlap_window_size + 1)  # [2, Nq, Nk]
    return offset[0] * (window_size + overlap_window_size - 1) + offset[1]


@dataclass
class ShiftMask:
    """Additive mask of shifted-window attention, stored only for the windows that need it.

    After the cyclic shift, only the windows along the bottom and right edges mix pixels from regions that are not
    neighbours in the image (``nWh + nWw - 1`` of ``nWh * nWw`` windows); the rest attend freely. Keeping the mask
    for those windows alone saves memory proportional to the image area.

    Attributes:
        mask: ``[nB, 1, N, N]`` with 0 / ``SHIFT_MASK_VALUE`` for the masked windows.
        masked: ``[nB]`` indices of those windows; ``free``: ``[nW - nB]`` indices of the others.
        num_windows: nW.
    """

    mask: Tensor
    masked: Tensor
    free: Tensor
    num_windows: int

    def dense(self) -> Tensor:
        """The mask of every window, ``[nW, 1, N, N]``, as the authors' code builds it."""
        full = self.mask.new_zeros((self.num_windows, *self.mask.shape[1:]))
        return full.index_copy_(0, self.masked, self.mask)

    def to(self, device: torch.device, dtype: torch.dtype) -> ShiftMask:
        return ShiftMask(self.mask.to(device, dtype), self.masked.to(device), self.free.to(device), self.num_windows)


def _window_region_labels(height: int, width: int, window_size: int, shift_size: int,
                          device: torch.device | None = None) -> Tensor:
    """``[nW, N]``: which of the 3 x 3 regions of the cyclically shifted map (bands ``[0, -ws)``, ``[-ws, -shift)``,
    ``[-shift, end)`` of rows and of columns) every token of every window comes from.

    Built from comparisons with the size rather than slice assignments, so an exported graph computes it from its
    runtime size (``height`` and ``width`` may be symbolic)."""
    def band(length: int) -> Tensor:
        i = torch.arange(length, device=device)
        return (i >= length - window_size).long() + (i >= length - shift_size).long()

    region = 3 * band(height)[:, None] + band(width)[None, :]
    return window_partition(region[None, :, :, None], window_size).squeeze(-1)


def dense_shifted_window_mask(height: int, width: int, window_size: int, shift_size: int,
                              device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The shifted-window mask of every window, ``[nW, 1, N, N]`` (:meth:`ShiftMask.dense`), in tensor operations
    only: what an exported graph uses, since choosing the masked windows (``nonzero``) depends on data."""
    labels = _window_region_labels(height, width, window_size, shift_size, device)
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros((), device=device, dtype=dtype).masked_fill(different, SHIFT_MASK_VALUE).unsqueeze(1)


def shifted_window_mask(height: int, width: int, window_size: int, shift_size: int) -> ShiftMask:
    """Shifted-window attention mask for a ``height x width`` map (multiples of ``window_size``)."""
    windows = _window_region_labels(height, width, window_size, shift_size)  # [nW, N]
    needs_mask = (windows != windows[:, :1]).any(1)  # windows holding more than one region
    masked = needs_mask.nonzero().squeeze(1)
    labels = windows[masked]
    different = labels[:, None, :] != labels[:, :, None]  # [nB, N, N], only for the masked windows
    mask = torch.zeros(different.shape).masked_fill_(different, SHIFT_MASK_VALUE).unsqueeze(1)
    return ShiftMask(mask, masked, (~needs_mask).nonzero().squeeze(1), windows.shape[0])


class BoundedCache:
    """A tiny LRU dictionary: derived tensors keyed by input size/device, so varying tile sizes cannot grow it."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, object] = OrderedDict()

    def get(self, key: tuple, build):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = build()
        self._items[key] = value
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()


def new_bias_table(table_size: int, num_heads: int) -> nn.Parameter:
    """A relative-position bias table ``[table_size, nH]`` initialised as in Swin/HAT."""
    table = nn.Parameter(torch.zeros(table_size, num_heads))
    nn.init.trunc_normal_(table, std=0.02)
    return table


class BiasLookup:
    """Gathers ``table[index]`` into an attention bias ``[1, nH, Nq, Nk]``, cached when no gradient is needed.

    The cache is keyed by the table's storage and version counter, so loading new weights or moving devices
    invalidates it. During training the table needs its gradient and the gather runs every forward. A plain
    object (not a module) so it adds nothing to the state dict.
    """

    def __init__(self) -> None:
        self.enabled = True
        self._key: tuple | None = None
        self._bias: Tensor | None = None

    def __call__(self, table: Tensor, index: Tensor) -> Tensor:
        # exporting: fake tensors have no storage to key on, and the graph must gather from its own table
        if not self.enabled or (torch.is_grad_enabled() and table.requires_grad) or torch.compiler.is_exporting():
            return self._gather(table, index)
        key = (table.data_ptr(), table._version, table.dtype, table.device, index.data_ptr(), index._version)
        if key != self._key:
            self._key, self._bias = key, self._gather(table.detach(), index)
        return self._bias

    def clear(self) -> None:
        self._key = self._bias = None

    @staticmethod
    def _gather(table: Tensor, index: Tensor) -> Tensor:
        nq, nk = index.shape
        return table[index.reshape(-1)].view(nq, nk, -1).permute(2, 0, 1).unsqueeze(0).contiguous()


def window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    bias: Tensor,
    scale: float,
    impl: AttentionImpl = "fused",
    dropout_p: float = 0.0,
) -> Tensor:
    """``softmax(q k^T * scale + bias) v`` over a batch of windows.

    Args:
        q: ``[B * nW, nH, Nq, d]``; k, v: ``[B * nW, nH, Nk, d]``.
        bias: ``[1, nH, Nq, Nk]`` shared by all windows, or ``[nW, nH, Nq, Nk]`` per window (bias plus shift mask),
            where windows are ordered image by image as :func:`window_partition` returns them.
    Returns:
        ``[B * nW, nH, Nq, d]``.
    """
    # exporting: the explicit formula, because SDPA's decomposition for export lays its output out differently
    # from the kernel it was traced with, which breaks the views that follow it
    if impl == "reference" or torch.compiler.is_exporting():
        attn = (q * scale) @ k.transpose(-2, -1)
        if bias.shape[0] == 1:
            attn = attn + bias
        else:
            attn = (attn.view(-1, *bias.shape) + bias).flatten(0, 1)
        attn = attn.softmax(dim=-1)
        if dropout_p > 0:
            attn = F.dropout(attn, dropout_p)
        return attn @ v
    if bias.shape[0] == 1:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)
    # Per-window bias: fold windows into the head axis so the mask broadcasts over images through a size-1 batch
    # dimension instead of being copied once per image (a 5-D query would leave the fast kernel).
    n_win, n_head, nq, nk = bias.shape
    bw, _, _, d = q.shape
    b = bw // n_win
    out = F.scaled_dot_product_attention(
        q.reshape(b, n_win * n_head, nq, d),
        k.reshape(b, n_win * n_head, nk, d),
        v.reshape(b, n_win * n_head, nk, d),
        attn_mask=bias.reshape(1, n_win * n_head, nq, nk),
        dropout_p=dropout_p,
        scale=scale,
    )
    return out.view(bw, n_head, nq, d)


def shifted_window_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    bias: Tensor,
    shift: ShiftMask | Tensor,
    scale: float,
    impl: AttentionImpl = "fused",
    dropout_p: float = 0.0,
) -> Tensor:
    """:func:`window_attention` for shifted windows: the masked windows and the free ones are attended separately,
    so ``bias + mask`` is only formed for the ``nB`` masked windows. Shapes as in :func:`window_attention`.

    ``shift`` may also be the dense mask ``[nW, 1, N, N]`` (:func:`dense_shifted_window_mask`, used while exporting),
    which is added to the bias of every window."""
    if isinstance(shift, Tensor):
        return window_attention(q, k, v, bias + shift, scale, impl, dropout_p)
    if impl == "reference":
        return window_attention(q, k, v, bias + shift.dense(), scale, impl, dropout_p)
    bw, n_head, nq, d = q.shape
    b = bw // shift.num_windows

    def pick(t: Tensor, windows: Tensor) -> Tensor:
        t = t.view(b, shift.num_windows, *t.shape[1:]).index_select(1, windows)
        return t.flatten(0, 1)

    out = q.new_empty(b, shift.num_windows, n_head, nq, d)
    qkv = (q, k, v)
    if shift.free.numel():
        free = window_attention(*(pick(t, shift.free) for t in qkv), bias, scale, impl, dropout_p)
        out.index_copy_(1, shift.free, free.view(b, -1, n_head, nq, d))
    masked = window_attention(*(pick(t, shift.masked) for t in qkv), bias + shift.mask, scale, impl, dropout_p)
    out.index_copy_(1, shift.masked, masked.view(b, -1, n_head, nq, d))
    return out.flatten(0, 1)


class WindowSelfAttention(nn.Module):
    """Multi-head self-attention inside (shifted) windows with relative-position bias (W-MSA / SW-MSA).

    Checkpoint keys: ``relative_position_bias_table``, ``qkv.{weight,bias}``, ``proj.{weight,bias}``.
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = new_bias_table((2 * window_size - 1) ** 2, num_heads)
        self.bias_lookup = BiasLookup()
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = attn_drop
        self.proj_drop = nn.Dropout(proj_drop)
        self.impl: AttentionImpl = "fused"

    def forward(self, x: Tensor, index: Tensor, shift: ShiftMask | Tensor | None = None) -> Tensor:
        """
        Args:
            x: ``[B * nW, N, C]`` tokens of each window (N = ws * ws).
            index: ``[N, N]`` relative-position index.
            shift: the shift mask for shifted windows (a dense ``[nW, 1, N, N]`` one while exporting), or None.
        Returns:
            ``[B * nW, N, C]``.
        """
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        dropout_p = self.attn_drop if self.training else 0.0
        with torch.profiler.record_function(ATTENTION_LABEL):
            bias = self.bias_lookup(self.relative_position_bias_table, index)
            if shift is None:
                out = window_attention(q, k, v, bias, self.scale, self.impl, dropout_p)
            else:
                out = shifted_window_attention(q, k, v, bias, shift, self.scale, self.impl, dropout_p)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(bw, n, c)))
