"""From a network to a look-up table: evaluate it at every sampled input of its receptive field and quantise.

A net whose output at a pixel depends only on that pixel's receptive field (SR-LUT's V/F/S nets, IM-LUT's weight
predictor and refiner) is a function of ``n`` values; :func:`transfer` samples it on the table's lattice (levels
``0, q, ..., 255``, the last one standing for 256 as in the SR-LUT authors' transfer) and stores
``round(clamp(output, -1, 1) * value_scale)`` as int8. :func:`field_patches` places the sampled values into the
smallest patch that holds the field, the input a convolutional net needs to produce exactly one output pixel.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .fields import OutputLayout, ReceptiveField
from .lattice import levels
from .table import VALUE_SCALE, LUTTable


def lattice_values(field: ReceptiveField, interval: int, device: torch.device | str = "cpu") -> Tensor:
    """``[L**n, n]`` int64: every sampled input in table-row order (first input = most significant digit)."""
    base = torch.arange(levels(interval), device=device) * (1 << interval)
    base[-1] = 255
    grids = torch.meshgrid(*([base] * field.size), indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], -1)


def field_patches(values: Tensor, field: ReceptiveField) -> Tensor:
    """``[N, n]`` values -> ``[N, 1, kh, kw]`` patches holding them at the field's offsets (zeros elsewhere)."""
    height, width = field.kernel_shape
    patches = values.new_zeros(values.shape[0], 1, height, width)
    for j, (dy, dx) in enumerate(field.offsets):
        patches[:, 0, dy, dx] = values[:, j]
    return patches


@torch.no_grad()
def transfer(
    function: Callable[[Tensor], Tensor],
    field: ReceptiveField,
    layout: OutputLayout,
    interval: int = 4,
    rotations: int = 4,
    value_scale: int = VALUE_SCALE,
    batch_size: int = 65536,
    device: torch.device | str = "cpu",
) -> LUTTable:
    """The int8 table of ``function``.

    Args:
        function: ``[N, n]`` float inputs in [0, 1] -> ``[N, m]`` outputs (``m = layout.count``), in table-value
            units (an entry stores ``round(clamp(output, -1, 1) * value_scale)``).
        field, layout, rotations: what the table is (see :class:`~hatast.lut.table.LUTTable`).
        interval: log2 of the sampling interval.
        batch_size: rows evaluated at once.
    """
    values = lattice_values(field, interval, device).float() / 255.0
    rows = []
    for chunk in values.split(batch_size):
        out = function(chunk).reshape(chunk.shape[0], -1)
        if out.shape[1] != layout.count:
            raise ValueError(f"the function gives {out.shape[1]} values per input, the layout has {layout.count}")
        rows.append(torch.round(out.clamp(-1, 1) * value_scale))
    entries = torch.cat(rows).to(torch.int8).cpu().numpy()
    return LUTTable(field, interval, entries, layout, rotations, value_scale)
