"""Look-up tables as networks, so BasicSR's train and test runners use tables like any other model.

:class:`LUTLayer` holds one table's entries as float parameters: optimised through the simplex interpolation and
the rotation ensemble (LUT-aware fine-tuning), with the rounding to int8 passed straight through so training sees
the values the table will store; on CPU the fused kernels compute it (a small autograd Function), elsewhere the
torch path. Any table (SR-LUT's patches, IM-LUT's weights and refiner) trains the same way.

``LUTNet(lut_path=...)`` is an SR-LUT table file as a network. In evaluation it reproduces table inference exactly
(int8 entries, fused CPU kernel or torch on GPU, the authors' rounding); in training it is a :class:`LUTLayer`.
"""

from __future__ import annotations

import numpy as np
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from ..lut import cpu_kernel
from ..lut.fields import OutputLayout, ReceptiveField, receptive_field
from ..lut.inference import upscale_batch
from ..lut.lattice import levels
from ..lut.simplex import ensemble_sum, place
from ..lut.table import LUTTable, load_table


class _FusedEnsemble(torch.autograd.Function):
    """A float table's placed ensemble sum through the fused CPU kernels: forward and the gradient with respect to
    the table without materialising the gathered corners (the torch path's memory and time sink)."""

    @staticmethod
    def forward(ctx, table: Tensor, values: Tensor, field: ReceptiveField, layout: OutputLayout, interval: int,
                rotations: int, authors_order: bool) -> Tensor:
        batch, channels, height, width = values.shape
        planes = values.reshape(batch * channels, height, width).numpy()
        ctx.setup = (planes, table.shape[0], field, layout, interval, rotations, authors_order)
        total = cpu_kernel.ensemble(planes, table.detach().numpy(), field, layout, interval, rotations,
                                    authors_order)
        return torch.from_numpy(total).reshape(batch, channels, *total.shape[1:])

    @staticmethod
    def backward(ctx, grad: Tensor):
        planes, rows, field, layout, interval, rotations, authors_order = ctx.setup
        table_grad = cpu_kernel.ensemble_grad(planes, grad.contiguous().numpy(), rows, field, layout, interval,
                                              rotations, authors_order)
        return torch.from_numpy(table_grad), None, None, None, None, None, None


class LUTLayer(nn.Module):
    """One table with trainable entries: ``[B, C, H, W]`` integer values 0..255 -> the placed ensemble sum in value
    units (entries / ``value_scale``, summed over rotations), ``[B, C, H*r, W*r]`` or ``[B, C, m, H, W]``.

    Args:
        table: the table to start from (its structure is kept; :meth:`table` gives the int8 table of the entries).
        authors_order: the SR-LUT authors' corner order for their one wrong 4-simplex ordering.
        fused: the fused CPU kernels when on CPU with numba (else, and on GPU, the torch path).
    """

    def __init__(self, table: LUTTable, authors_order: bool = False, fused: bool = True) -> None:
        super().__init__()
        self.field, self.layout, self.interval = table.field, table.layout, table.interval
        self.rotations, self.value_scale = table.rotations, table.value_scale
        self.authors_order, self.fused = authors_order, fused
        self.entries = nn.Parameter(torch.from_numpy(table.entries.astype(np.float32)))

    def table(self) -> LUTTable:
        """The int8 table these entries store."""
        entries = self.entries.detach().clamp(-self.value_scale, self.value_scale).round().to(torch.int8)
        entries = entries.cpu().numpy()
        return LUTTable(self.field, self.interval, entries, self.layout, self.rotations, self.value_scale)

    def forward(self, values: Tensor) -> Tensor:
        clamped = self.entries.clamp(-self.value_scale, self.value_scale)
        quantised = clamped + (clamped.round() - clamped).detach()  # straight-through rounding
        setup = (self.field, self.layout, self.interval, self.rotations, self.authors_order)
        if self.fused and values.device.type == "cpu" and cpu_kernel.available():
            total = _FusedEnsemble.apply(quantised, values.to(torch.uint8).contiguous(), *setup)
        else:
            total = place(ensemble_sum(quantised, values.long(), self.field, self.layout, self.interval,
                                       self.rotations, self.authors_order), self.layout)
        return total / ((1 << self.interval) * self.value_scale)


@ARCH_REGISTRY.register()
class LUTNet(LUTLayer):
    """An SR-LUT table: ``[B, C, H, W]`` in [0, 1] (8-bit values) -> ``[B, C, H*r, W*r]``.

    Args:
        lut_path: table file to start from; without it, ``kind``, ``upscale`` and ``interval`` give a zero table to be
            filled by a checkpoint.
        kind, upscale, interval: used only without ``lut_path`` (and checked against the file otherwise).
        authors_order: reproduce the SR-LUT authors' corner order for their one wrong 4-simplex ordering.
        fused: train through the fused CPU kernels when on CPU with numba (else, and on GPU, the torch path).
    """

    def __init__(
        self,
        lut_path: str | None = None,
        kind: str | None = None,
        upscale: int | None = None,
        interval: int | None = None,
        authors_order: bool = False,
        fused: bool = True,
    ) -> None:
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
            table = LUTTable.srlut(kind, upscale, interval, np.zeros((size, upscale * upscale), np.int8))
        super().__init__(table, authors_order, fused)
        self.kind, self.upscale = table.kind, table.scale

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return upscale_batch(self.table(), x, self.authors_order)
        values = (x.detach() * 255.0).round().clamp(0, 255)
        return super().forward(values) * (self.value_scale / 255.0)  # sum / q / 255, the table's pixel units
