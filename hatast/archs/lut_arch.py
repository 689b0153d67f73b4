"""A look-up table as a network, so BasicSR's train and test runners use tables like any other model.

``LUTNet(lut_path=...)`` loads a table file (hatast ``.npz`` or the authors' ``.npy``). In evaluation it reproduces
table inference exactly (int8 entries, fused CPU kernel or torch on GPU, the authors' rounding); in training its
entries are float parameters optimised through the simplex interpolation and the rotation ensemble (LUT-aware
fine-tuning), with the rounding to int8 passed straight through so training sees the values the table will store.
"""

from __future__ import annotations

import numpy as np
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from ..lut.fields import receptive_field
from ..lut.inference import upscale_batch
from ..lut.simplex import levels, rotation_ensemble, to_intensity
from ..lut.table import VALUE_SCALE, LUTTable, load_table


@ARCH_REGISTRY.register()
class LUTNet(nn.Module):
    """``[B, C, H, W]`` in [0, 1] (8-bit values) -> ``[B, C, H*r, W*r]``.

    Args:
        lut_path: table file to start from; without it, ``kind``, ``upscale`` and ``interval`` give a zero table to be
            filled by a checkpoint.
        kind, upscale, interval: used only without ``lut_path`` (and checked against the file otherwise).
        authors_order: reproduce the SR-LUT authors' corner order for their one wrong 4-simplex ordering.
    """

    def __init__(
        self,
        lut_path: str | None = None,
        kind: str | None = None,
        upscale: int | None = None,
        interval: int | None = None,
        authors_order: bool = False,
    ) -> None:
        super().__init__()
        if lut_path:
            table = load_table(lut_path, kind, upscale)
            stated = {"kind": kind and receptive_field(kind).kind, "upscale": upscale, "interval": interval}
            found = {"kind": table.kind, "upscale": table.scale, "interval": table.interval}
            for key, value in stated.items():
                if value is not None and value != found[key]:
                    raise ValueError(f"{lut_path}: the table's {key} is {found[key]}, the options say {value}")
        else:
            if kind is None or upscale is None:
                raise ValueError("LUTNet needs lut_path, or kind and upscale (and interval, default 4)")
            interval = 4 if interval is None else interval
            size = levels(interval) ** receptive_field(kind).size
            table = LUTTable(kind, upscale, interval, np.zeros((size, upscale * upscale), np.int8))
        self.kind, self.upscale, self.interval = table.kind, table.scale, table.interval
        self.field = table.field
        self.authors_order = authors_order
        self.entries = nn.Parameter(torch.from_numpy(table.entries.astype(np.float32)))

    def table(self) -> LUTTable:
        """The int8 table these entries store."""
        entries = self.entries.detach().clamp(-VALUE_SCALE, VALUE_SCALE).round().to(torch.int8).cpu().numpy()
        return LUTTable(self.kind, self.upscale, self.interval, entries)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return upscale_batch(self.table(), x, self.authors_order)
        values = (x * 255.0).round().clamp(0, 255).long()
        clamped = self.entries.clamp(-VALUE_SCALE, VALUE_SCALE)
        quantised = clamped + (clamped.round() - clamped).detach()  # straight-through rounding
        total = rotation_ensemble(quantised, values, self.field, self.upscale, self.interval, self.authors_order)
        return to_intensity(total, self.interval)
