"""Upscaling an 8-bit image with a table: input checks and the choice between the fused CPU kernel and torch.

Defined behaviour for awkward inputs (each has a test):
  * only uint8 arrays are accepted: tables are indexed by 8-bit values, so a 16-bit or float image is an error that
    says how to convert it (``hatast upscale`` converts 16-bit files itself and says so);
  * ``[H, W]`` grey or ``[H, W, C]`` with any number of channels; every channel, alpha included, is upscaled by the
    table as its own grey image, exactly as the authors treat R, G and B;
  * images down to 1x1: the border is extended by reflection, and by repetition along an axis of length 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import cpu_kernel
from .table import LUTError, LUTTable

if TYPE_CHECKING:  # the fused CPU kernel needs numpy only; torch is imported for the torch backend
    import torch

BACKENDS = ("auto", "numba", "torch")


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as ``[H, W, C]`` uint8, or raise :class:`LUTError` naming the problem."""
    if not isinstance(image, np.ndarray):
        raise LUTError(f"expected a numpy uint8 image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise LUTError(
            f"LUT models read 8-bit images; got {image.dtype} pixels (convert first, e.g. a 16-bit image with "
            "(image / 257).round().astype(np.uint8))"
        )
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or min(image.shape) < 1:
        raise LUTError(f"expected an [H, W] or [H, W, C] image, got shape {image.shape}")
    return image


def apply_table(
    table: LUTTable,
    image: torch.Tensor,
    to_pixels: bool = False,
    authors_order: bool = False,
    backend: str = "auto",
) -> torch.Tensor:
    """A table on a batch, torch first: ``[B, C, H, W]`` integer values 0..255 on any device -> the placed ensemble
    sums on the same device (no trip through the CPU for a GPU batch; on CPU the fused kernel reads the tensor's
    memory directly).

    Returns:
        ``[B, C, H*r, W*r]`` (patch layout) or ``[B, C, m, H, W]`` (channels): int32 sums in table units times
        ``q``, or with ``to_pixels`` (patch layouts) uint8 pixels with the SR-LUT authors' rounding.
    """
    import torch

    if backend not in BACKENDS:
        raise LUTError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if image.ndim != 4 or min(image.shape) < 1:
        raise LUTError(f"expected a [B, C, H, W] batch, got shape {tuple(image.shape)}")
    if image.is_floating_point():
        raise LUTError("tables read 8-bit values: give integer pixels 0..255 (e.g. (x * 255).round().byte())")
    if to_pixels and table.layout.kind != "patch":
        raise LUTError(f"to_pixels rounds SR patches to pixels; this table's outputs are {table.layout.kind}")
    batch, channels, height, width = image.shape
    on_cpu = image.device.type == "cpu"
    if backend == "numba" or (backend == "auto" and on_cpu and cpu_kernel.available()):
        if not on_cpu:
            raise LUTError("the numba backend runs on CPU tensors; use backend='torch' on other devices")
        planes = image.to(torch.uint8).reshape(batch * channels, height, width).contiguous().numpy()
        out = cpu_kernel.ensemble(planes, table.entries, table.field, table.layout, table.interval, table.rotations,
                                  authors_order, to_pixels)
        return torch.from_numpy(out).reshape(batch, channels, *out.shape[1:])
    from .simplex import ensemble_sum, place, to_image

    entries = torch.from_numpy(table.entries).to(image.device)
    total = place(ensemble_sum(entries, image.long(), table.field, table.layout, table.interval, table.rotations,
                               authors_order), table.layout)
    return to_image(total, table.interval, authors_order) if to_pixels else total


def upscale(
    table: LUTTable,
    image: np.ndarray,
    backend: str = "auto",
    authors_order: bool = False,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Super-resolve an 8-bit image with an SR-LUT table (the numpy adapter of :func:`apply_table`).

    Args:
        table: the look-up table (a patch layout).
        image: ``[H, W]`` or ``[H, W, C]`` uint8.
        backend: "numba" (fused CPU kernel), "torch" (vectorised, runs on ``device``), or "auto" (numba on CPU when
            installed, else torch).
        authors_order: reproduce the SR-LUT authors' output bit for bit, including their corner order for the
            ordering ``f_c > f_d > f_a > f_b`` of the S model (see :data:`hatast.lut.lattice.AUTHORS_S_ORDER`).

    Returns:
        ``[H*r, W*r]`` or ``[H*r, W*r, C]`` uint8, matching the input's layout.
    """
    if backend not in BACKENDS:
        raise LUTError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if not isinstance(table, LUTTable):
        raise LUTError(f"expected a LUTTable (hatast.lut.load_table(path)), got {type(table).__name__}")
    if table.layout.kind != "patch":
        raise LUTError(f"upscale runs SR-LUT tables (patch outputs); this table's outputs are {table.layout.kind}")
    grey = isinstance(image, np.ndarray) and image.ndim == 2
    image = check_image(image)
    on_cpu = _is_cpu(device)
    if backend == "numba" or (backend == "auto" and on_cpu and cpu_kernel.available()):
        # straight into the HWC result: the fused kernel places channels last itself
        out = cpu_kernel.upscale_int8(image, table.entries, table.field, table.scale, table.interval, authors_order)
    else:
        import torch

        batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(device)
        out = apply_table(table, batch, True, authors_order, "torch")[0].permute(1, 2, 0).cpu().numpy()
    return out[..., 0] if grey else out


def _is_cpu(device: str | torch.device) -> bool:
    if device == "cpu":  # the common case, answered without importing torch
        return True
    import torch

    try:
        return torch.device(device).type == "cpu"
    except (RuntimeError, TypeError, ValueError):
        raise LUTError(f"device {device!r} is not a torch device") from None


def upscale_batch(table: LUTTable, x: torch.Tensor, authors_order: bool = False) -> torch.Tensor:
    """Table inference on a network-style batch: ``[B, C, H, W]`` in [0, 1] (rounded to 8-bit values) ->
    ``[B, C, H*r, W*r]`` float in [0, 1] on ``x``'s device (fused kernel on CPU, torch on other devices)."""
    import torch

    pixels = apply_table(table, (x * 255).round().clamp(0, 255).to(torch.uint8), True, authors_order)
    return pixels.to(torch.float32) / 255.0
