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

from ..lut import cpu_kernel
from ..lut.fields import ReceptiveField, receptive_field
from ..lut.inference import upscale_batch
from ..lut.lattice import levels
from ..lut.simplex import rotation_ensemble, to_intensity
from ..lut.table import VALUE_SCALE, LUTTable, load_table


class _FusedEnsembleSum(torch.autograd.Function):
    """The rotation-ensemble sum of a float table through the fused CPU kernels: forward and the gradient with respect
    to the table without materialising the gathered corners (the torch path's memory and time sink)."""

    @staticmethod
    def forward(
        ctx, table: Tensor, values: Tensor, field: ReceptiveField, scale: int, interval: int, authors_order: bool
    ) -> Tensor:
        batch, channels, height, width = values.shape
        planes = values.reshape(batch * channels, height, width).numpy()
        ctx.setup = (planes, table.shape[0], field, scale, interval, authors_order)
        total = cpu_kernel.ensemble_sum_float(planes, table.detach().numpy(), field, scale, interval, authors_order)
        return torch.from_numpy(total).reshape(batch, channels, height * scale, width * scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        planes, rows, field, scale, interval, authors_order = ctx.setup
        grad_planes = grad.reshape(-1, *grad.shape[-2:]).contiguous().numpy()
        table_grad = cpu_kernel.ensemble_sum_grad(planes, grad_planes, rows, field, scale, interval, authors_order)
        return torch.from_numpy(table_grad), None, None, None, None, None


@ARCH_REGISTRY.register()
class LUTNet(nn.Module):
    """``[B, C, H, W]`` in [0, 1] (8-bit values) -> ``[B, C, H*r, W*r]``.

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
        self.fused = fused
        self.entries = nn.Parameter(torch.from_numpy(table.entries.astype(np.float32)))

    def table(self) -> LUTTable:
        """The int8 table these entries store."""
        entries = self.entries.detach().clamp(-VALUE_SCALE, VALUE_SCALE).round().to(torch.int8).cpu().numpy()
        return LUTTable(self.kind, self.upscale, self.interval, entries)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return upscale_batch(self.table(), x, self.authors_order)
        clamped = self.entries.clamp(-VALUE_SCALE, VALUE_SCALE)
        quantised = clamped + (clamped.round() - clamped).detach()  # straight-through rounding
        setup = (self.field, self.upscale, self.interval, self.authors_order)
        if self.fused and x.device.type == "cpu" and cpu_kernel.available():
            values = (x.detach() * 255.0).round().clamp(0, 255).to(torch.uint8).contiguous()
            total = _FusedEnsembleSum.apply(quantised, values, *setup)
        else:
            total = rotation_ensemble(quantised, (x * 255.0).round().clamp(0, 255).long(), *setup)
        return to_intensity(total, self.interval)
