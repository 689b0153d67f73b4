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


def upscale(
    table: LUTTable,
    image: np.ndarray,
    backend: str = "auto",
    authors_order: bool = False,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Super-resolve an 8-bit image with the rotation ensemble of ``table``.

    Args:
        table: the look-up table.
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
    grey = isinstance(image, np.ndarray) and image.ndim == 2
    image = check_image(image)
    on_cpu = _is_cpu(device)
    if backend == "numba" or (backend == "auto" and on_cpu and cpu_kernel.available()):
        out = cpu_kernel.upscale_int8(image, table.entries, table.field, table.scale, table.interval, authors_order)
    else:
        import torch

        from .simplex import rotation_ensemble, to_image

        entries = torch.from_numpy(table.entries).to(device)
        planes = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(device)
        total = rotation_ensemble(entries, planes, table.field, table.scale, table.interval, authors_order)
        out = to_image(total, table.interval, authors_order)[0].permute(1, 2, 0).cpu().numpy()
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

    images = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    device = "cpu" if x.device.type == "cpu" else x.device
    out = np.stack([upscale(table, image, authors_order=authors_order, device=device) for image in images])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device, torch.float32) / 255.0
