"""Simplex interpolation of a look-up table and the rotation ensemble, vectorised in torch (any device, and
differentiable with respect to a float table, which LUT-aware fine-tuning needs). The steps are the fused kernel's
(:mod:`.cpu_kernel`): (a) gather and interpolate, (b) sum the rotations (:func:`ensemble_sum`), (c) place
(:func:`place`), (d) round (:func:`to_image`) or scale (:func:`to_intensity`).

A table samples every input pixel at ``L = 2**(8 - interval) + 1`` levels ``0, q, 2q, ..., 255`` (``q = 2**interval``;
the last level stands for 256, as in the authors' transfer). An input value ``v`` splits into the lattice index
``v >> interval`` and the remainder ``v & (q - 1)``. n-dimensional simplex interpolation sorts the remainders in
decreasing order and walks from the lower corner of the lattice cell to the upper one, adding one dimension at a time
in that order; the ``n + 1`` visited corners get the weights ``q - f(1), f(1) - f(2), ..., f(n)``. This is the same
formula for every ``n`` (triangular for 2, tetrahedral for 3, the authors' 4-simplex for 4) and correct for all
``n!`` orderings. Results are returned multiplied by ``q`` so integer tables give exact integers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..utils.padding import reflect_indices
from .fields import OutputLayout, ReceptiveField, padding, rotated_offsets
from .lattice import AUTHORS_S_ORDER, ensemble_bound, index_strides, rounding_map


def authors_defect_mask(remainders: Tensor) -> Tensor:
    """Where the authors' 4-simplex code picks the wrong corners: ``f_c > f_d > f_a > f_b``.

    ``[..., 4]`` remainders -> ``[...]`` bool."""
    fa, fb, fc, fd = remainders.unbind(-1)
    return (fc > fd) & (fd > fa) & (fa > fb)


def simplex_interpolate(table: Tensor, values: Tensor, interval: int, authors_order: bool = False) -> Tensor:
    """Interpolate table rows at integer input values.

    Args:
        table: ``[L**n, m]`` entries, int8 (exact integer arithmetic) or float (differentiable).
        values: ``[..., n]`` integer pixel values in 0..255, first input most significant.
        interval: log2 of the sampling interval.
        authors_order: reproduce the SR-LUT authors' corner order for the one 4-simplex ordering they get wrong.

    Returns:
        ``[..., m]`` interpolated entries times ``q``: int32 for an integer table, the table's dtype otherwise.
    """
    n = values.shape[-1]
    q = 1 << interval
    values = values.long()
    strides = torch.tensor(index_strides(n, interval), device=values.device)
    base = ((values >> interval) * strides).sum(-1, keepdim=True)
    remainders = values & (q - 1)
    order = torch.argsort(remainders, dim=-1, descending=True, stable=True)
    if authors_order and n == 4:
        forced = torch.tensor(AUTHORS_S_ORDER, device=values.device).expand_as(order)
        order = torch.where(authors_defect_mask(remainders)[..., None], forced, order)
    ordered = remainders.gather(-1, order)
    weights = torch.cat([q - ordered[..., :1], ordered[..., :-1] - ordered[..., 1:], ordered[..., -1:]], -1)
    corners = torch.cat([base, base + strides[order].cumsum(-1)], -1)  # [..., n + 1]
    rows = table[corners]  # [..., n + 1, m]
    if table.is_floating_point():
        return (weights.to(table.dtype)[..., None] * rows).sum(-2)
    return (weights.int()[..., None] * rows.int()).sum(-2, dtype=torch.int32)


def gather_neighbours(image: Tensor, field: ReceptiveField, rotations: int = 4) -> list[Tensor]:
    """(a) For each rotation, the receptive-field values of every pixel, ``[B, C, H, W, n]``."""
    height, width = image.shape[-2:]
    pad = padding(field)
    rows = torch.from_numpy(reflect_indices(height, pad, pad)).to(image.device)
    cols = torch.from_numpy(reflect_indices(width, pad, pad)).to(image.device)
    padded = image.index_select(-2, rows).index_select(-1, cols)
    offsets = rotated_offsets(field)
    return [
        torch.stack(
            [padded[..., pad + dy : pad + dy + height, pad + dx : pad + dx + width] for dy, dx in offsets[k].tolist()],
            -1,
        )
        for k in range(rotations)
    ]


def ensemble_sum(
    table: Tensor, image: Tensor, field: ReceptiveField, layout: OutputLayout, interval: int, rotations: int = 4,
    authors_order: bool = False,
) -> Tensor:
    """(a) + (b): the table interpolated at every pixel in each rotation, summed in the original frame.

    Args:
        table: ``[L**n, m]`` int8 or float.
        image: ``[B, C, H, W]`` integer values 0..255 (each channel is its own grey image).

    Returns:
        ``[B, C, H, W, m]`` in table units times ``q`` (int32 for an int8 table), before placing (:func:`place`).
    """
    placement = layout.placement()
    total = None
    for k, values in enumerate(gather_neighbours(image, field, rotations)):
        values = simplex_interpolate(table, values, interval, authors_order)
        # placement[k] sends rotated-frame value t to original-frame value placement[k, t]; invert to gather.
        values = values[..., torch.from_numpy(np.argsort(placement[k])).to(values.device)]
        total = values if total is None else total + values
    return total


def place(total: Tensor, layout: OutputLayout) -> Tensor:
    """(c) ``[B, C, H, W, m]`` sums -> ``[B, C, H*r, W*r]`` (patch) or ``[B, C, m, H, W]`` (channels)."""
    batch, channels, height, width, _ = total.shape
    if layout.kind == "channels":
        return total.permute(0, 1, 4, 2, 3)
    r = layout.scale
    total = total.reshape(batch, channels, height, width, r, r).permute(0, 1, 2, 4, 3, 5)
    return total.reshape(batch, channels, height * r, width * r)


def rotation_ensemble(
    table: Tensor, image: Tensor, field: ReceptiveField, scale: int, interval: int, authors_order: bool = False
) -> Tensor:
    """SR-LUT's table on ``[B, C, H, W]`` integer images: the four-rotation sum of ``[L**n, scale**2]`` patches
    assembled into the HR grid, ``[B, C, H*scale, W*scale]`` (int32 for an int8 table)."""
    layout = OutputLayout.patch(scale)
    return place(ensemble_sum(table, image, field, layout, interval, 4, authors_order), layout)


def to_image(ensemble_sum: Tensor, interval: int, authors_order: bool = False) -> Tensor:
    """Exact uint8 image from the int32 ensemble sum of an int8 table (the authors' rounding)."""
    bound = ensemble_bound(interval, authors_order)
    lookup = torch.from_numpy(rounding_map(interval, bound)).to(ensemble_sum.device)
    return lookup[(ensemble_sum.long() + bound).clamp_(0, 2 * bound)]


def to_intensity(ensemble_sum: Tensor, interval: int) -> Tensor:
    """Float image in [0, 1] units (not clipped) from a float ensemble sum: ``s / q / 255``."""
    return ensemble_sum / ((1 << interval) * 255.0)
