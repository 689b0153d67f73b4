"""Padding an image to a multiple of a window size, for any image size."""

from __future__ import annotations

import torch
from torch import Tensor


def _reflect_indices(size: int, padded: int, device: torch.device) -> Tensor:
    """Indices ``0..padded-1`` folded back into ``0..size-1`` by repeated mirroring (no edge repeat).

    For ``padded - size < size`` this is exactly ``torch.nn.functional.pad(mode='reflect')``; beyond that, where
    reflect padding refuses to work, the mirror keeps bouncing between the two edges (period ``2 * (size - 1)``).
    """
    idx = torch.arange(padded, device=device)
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx % period
    return torch.where(idx >= size, period - idx, idx)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad ``x`` ``[B, C, H, W]`` at the bottom and right to multiples of ``multiple`` by mirroring.

    Matches the reflect padding of the HAT authors' test code wherever theirs works, and also handles images
    smaller than the pad (a 3x5 image with a 16-pixel window), where ``F.pad(..., 'reflect')`` raises.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    if ph:
        x = x.index_select(-2, _reflect_indices(h, h + ph, x.device))
    if pw:
        x = x.index_select(-1, _reflect_indices(w, w + pw, x.device))
    return x
