"""Mirror padding, one index rule for numpy and torch: HAT's window padding, the LUT kernels' borders and USRNet's
padding all fold indices with :func:`reflect_indices`.

The rule is ``np.pad(..., mode="reflect")`` (mirror without repeating the edge pixel), continued by bouncing between
the two edges when a pad is wider than the axis (where ``np.pad`` iterates and ``F.pad(mode="reflect")`` refuses),
and edge repetition for an axis of length 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # numpy only at import: the table path of `hatast upscale` runs without torch
    from torch import Tensor


def reflect_indices(length: int, before: int, after: int) -> np.ndarray:
    """Source index of every position of an axis of ``length`` padded by ``before`` and ``after`` (int64)."""
    positions = np.arange(-before, length + after)
    if length == 1:
        return np.zeros_like(positions)
    period = 2 * (length - 1)
    folded = np.mod(positions, period)
    return np.where(folded < length, folded, period - folded)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad ``x`` ``[B, C, H, W]`` at the bottom and right to multiples of ``multiple`` by mirroring.

    Matches the reflect padding of the HAT authors' test code wherever theirs works, and also handles images
    smaller than the pad (a 3x5 image with a 16-pixel window), where ``F.pad(..., 'reflect')`` raises.
    """
    import torch

    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph:
        x = x.index_select(-2, torch.from_numpy(reflect_indices(h, 0, ph)).to(x.device))
    if pw:
        x = x.index_select(-1, torch.from_numpy(reflect_indices(w, 0, pw)).to(x.device))
    return x
