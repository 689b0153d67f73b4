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
    import torch
    from torch import Tensor


def reflect_indices(length: int, before: int, after: int) -> np.ndarray:
    """Source index of every position of an axis of ``length`` padded by ``before`` and ``after`` (int64)."""
    positions = np.arange(-before, length + after)
    if length == 1:
        return np.zeros_like(positions)
    period = 2 * (length - 1)
    folded = np.mod(positions, period)
    return np.where(folded < length, folded, period - folded)


def reflect_indices_tensor(length: int, before: int, after: int, device: torch.device | None = None) -> Tensor:
    """:func:`reflect_indices` in tensor operations, for lengths that are symbolic while a network is exported (an
    exported graph computes the indices from its input's size instead of holding one size's indices)."""
    import torch

    positions = torch.arange(-before, length + after, device=device)
    # the length as a 0-d tensor: ONNX converters take integer arguments of ops such as remainder as constants
    n = torch.full((), length, dtype=torch.long, device=device)
    period = 2 * (n - 1).clamp(min=1)
    folded = positions % period
    # a length of 1 folds to {0, 1} with the period of 2: the clamp sends 1 back to 0 (a no-op for longer axes)
    return torch.where(folded < n, folded, period - folded).minimum(n - 1)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad ``x`` ``[B, C, H, W]`` at the bottom and right to multiples of ``multiple`` by mirroring.

    Matches the reflect padding of the HAT authors' test code wherever theirs works, and also handles images
    smaller than the pad (a 3x5 image with a 16-pixel window), where ``F.pad(..., 'reflect')`` raises.
    While exporting (ONNX), the pad is computed in the graph from the runtime size.
    """
    import torch

    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if torch.compiler.is_exporting():  # the pads are symbolic: no branch on them
        x = x.index_select(-2, reflect_indices_tensor(h, 0, ph, x.device))
        return x.index_select(-1, reflect_indices_tensor(w, 0, pw, x.device))
    if ph:
        x = x.index_select(-2, torch.from_numpy(reflect_indices(h, 0, ph)).to(x.device))
    if pw:
        x = x.index_select(-1, torch.from_numpy(reflect_indices(w, 0, pw)).to(x.device))
    return x
