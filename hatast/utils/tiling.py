"""Tiled inference for images too large to process at once.

The input is cut into ``tile_size`` cores, each run with ``tile_pad`` pixels of context on every side. Outputs are
blended with linear ramps of half the pad's width centred on each seam (the weights of two neighbours sum to one),
so each output pixel comes from tiles in which it lies at least ``tile_pad / 2`` pixels inside the context, and
pixels more than ``tile_pad / 2`` from any seam come from one tile only: exactly what that tile computed.

Tile origins and sizes are kept at multiples of ``multiple`` (the network's window size) so windows fall on the
same pixels as in the whole-image pass. A tile that runs out of memory is retried as tiles of half the size; any
other failure raises :class:`TileError` naming the tile.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import Tensor

from .errors import UsageError

logger = logging.getLogger("basicsr")


class TileError(RuntimeError):
    """A tile failed; the message names the tile and its pixel ranges."""


def is_out_of_memory(err: BaseException) -> bool:
    """True for CUDA and CPU allocation failures."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(err, MemoryError))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _ramp(length: int, scale: int, start: int, stop: int, full: int, radius: int, device: torch.device) -> Tensor:
    """Weights along one axis, in output pixels, for a tile whose core is ``[start, stop)`` of ``full`` input pixels.

    1 inside the core, falling linearly to 0 across ``[start - radius, start + radius)`` and
    ``[stop - radius, stop + radius)`` (no fall at the image border). Returns ``[length * scale]``.
    """
    y = (torch.arange(length * scale, device=device, dtype=torch.float64) + 0.5) / scale  # input coordinates
    w = torch.ones_like(y)
    if radius > 0:
        if start > 0:
            w = torch.minimum(w, ((y - (start - radius)) / (2 * radius)).clamp(0, 1))
        if stop < full:
            w = torch.minimum(w, (((stop + radius) - y) / (2 * radius)).clamp(0, 1))
    else:
        w = ((y >= start) & (y < stop)).double()
    return w


def tiled_forward(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    scale: int,
    tile_size: int,
    tile_pad: int = 32,
    multiple: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> Tensor:
    """Run ``fn`` (``[B, C, h, w]`` -> ``[B, C', h * scale, w * scale]``) over ``x`` tile by tile.

    Args:
        x: ``[B, C, H, W]``.
        tile_size: core size in input pixels (rounded up to ``multiple``).
        tile_pad: context on each side in input pixels (rounded up to ``multiple``).
        progress: called as ``progress(done, total)`` after each tile.
    Returns:
        ``[B, C', H * scale, W * scale]``, equal to ``fn(x)`` wherever tiles see enough context.
    """
    if tile_size <= 0 or tile_pad < 0:
        raise UsageError(f"tile_size must be > 0 and tile_pad >= 0, got {tile_size} and {tile_pad}")
    tile = _round_up(tile_size, multiple)
    pad = _round_up(tile_pad, multiple)
    b, _, h, w = x.shape
    if tile >= h and tile >= w:
        result = _run_tile(fn, x, scale, tile, pad, multiple, "the only tile")
        if progress is not None:
            progress(1, 1)
        return result
    radius = pad // 2
    rows, cols = math.ceil(h / tile), math.ceil(w / tile)
    out = weight = None
    for i in range(rows):
        for j in range(cols):
            y0, x0 = i * tile, j * tile
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            iy0, ix0 = max(y0 - pad, 0), max(x0 - pad, 0)
            iy1, ix1 = min(y1 + pad, h), min(x1 + pad, w)
            name = f"tile ({i}, {j}) of {rows}x{cols} (input rows {iy0}:{iy1}, cols {ix0}:{ix1})"
            result = _run_tile(fn, x[..., iy0:iy1, ix0:ix1], scale, tile, pad, multiple, name)
            if out is None:
                out = result.new_zeros(b, result.shape[1], h * scale, w * scale)
                weight = result.new_zeros(1, 1, h * scale, w * scale)
            wy = _ramp(iy1 - iy0, scale, y0 - iy0, y1 - iy0, h - iy0, radius, x.device)
            wx = _ramp(ix1 - ix0, scale, x0 - ix0, x1 - ix0, w - ix0, radius, x.device)
            # Keep only the part of the tile whose weight is non-zero (at most radius beyond the core).
            wt = (wy[:, None] * wx[None, :]).to(result.dtype)
            region = (slice(iy0 * scale, iy1 * scale), slice(ix0 * scale, ix1 * scale))
            out[..., region[0], region[1]] += result * wt
            weight[..., region[0], region[1]] += wt
            if progress is not None:
                progress(i * cols + j + 1, rows * cols)
    return out.div_(weight)


def _run_tile(fn: Callable[[Tensor], Tensor], x: Tensor, scale: int, tile: int, pad: int, multiple: int,
              name: str) -> Tensor:
    try:
        result = fn(x)
    except Exception as err:  # noqa: BLE001  (re-raised with the tile named)
        if not is_out_of_memory(err):
            raise TileError(f"{name} failed: {err.__class__.__name__}: {err}") from err
        smaller = _round_up(tile // 2, multiple)
        if smaller >= tile or smaller < multiple or tile // 2 < 1:
            raise TileError(f"{name} ran out of memory even at tile size {tile}") from err
        if x.is_cuda:
            torch.cuda.empty_cache()
        logger.warning(f"{name} ran out of memory; retrying it as tiles of {smaller}")
        return tiled_forward(fn, x, scale, smaller, pad, multiple)
    expected = (x.shape[-2] * scale, x.shape[-1] * scale)
    if tuple(result.shape[-2:]) != expected:
        raise TileError(f"{name}: the network returned {tuple(result.shape[-2:])}, expected {expected}")
    return result


def tile_count(height: int, width: int, tile_size: int, multiple: int = 1) -> int:
    """How many tiles :func:`tiled_forward` cuts an ``height x width`` input into."""
    tile = _round_up(tile_size, multiple)
    return math.ceil(height / tile) * math.ceil(width / tile)


def free_memory(device: torch.device | str) -> int | None:
    """Bytes the process can still allocate on ``device`` (CUDA: free device memory; CPU: the kernel's
    ``MemAvailable``), or None where it cannot be known."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "mps":
        return torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_memory(fn: Callable[[Tensor], Tensor], x: Tensor) -> int | None:
    """The rise in memory while ``fn(x)`` runs, in bytes (CUDA: the allocator's peak; CPU on Linux: the rise of the
    resident-set high-water mark, reset just before), or None where it cannot be measured."""
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
        before = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        fn(x)
        return torch.cuda.max_memory_allocated(x.device) - before
    if x.device.type != "cpu":
        return None
    from ..eval.timing import status_kib  # the one reader of /proc/self/status

    try:
        before = status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
        fn(x)
        return max(status_kib("VmHWM") - before, 0) * 1024
    except (OSError, RuntimeError):  # no /proc (not Linux), or no such field
        return None


PROBE_SIZE = 64
"""Side of the crop whose peak memory gives the bytes per input pixel."""
MEMORY_FRACTION = 0.5
"""Share of the free memory a tile may use: the rest is headroom (other processes, allocator slack)."""
FALLBACK_TILE = 256
"""Tile size where memory cannot be measured (not Linux, MPS)."""


def bytes_per_pixel(fn: Callable[[Tensor], Tensor], x: Tensor, multiple: int = 1) -> float | None:
    """Peak memory of ``fn`` on a ``PROBE_SIZE`` crop of ``x`` per input pixel (fixed costs included, so the
    estimate errs large), or None where memory cannot be measured."""
    side = _round_up(PROBE_SIZE, multiple)
    crop = x[..., :side, :side]
    peak = peak_memory(fn, crop)
    return None if peak is None else max(peak, 1) / (crop.shape[-2] * crop.shape[-1])


def auto_tile_size(fn: Callable[[Tensor], Tensor], x: Tensor, scale: int, tile_pad: int, multiple: int = 1,
                   per_pixel: float | None = None) -> tuple[int, float | None]:
    """A tile size for ``fn`` on ``x`` ``[B, C, H, W]`` that fits in memory: 0 (the whole image) when that fits;
    and the bytes per pixel it used (for the next image: the probe runs once per network).

    ``per_pixel`` (bytes per input pixel; measured by :func:`bytes_per_pixel` when not given) times the image
    must fit in ``MEMORY_FRACTION`` of the free memory, less the whole-image output and blending buffers; if it
    does not, the largest tile (plus its context) that does is chosen. Tiles that still run out of memory are
    halved by :func:`tiled_forward`.
    """
    b, c, h, w = x.shape
    side = _round_up(PROBE_SIZE, multiple)
    if h <= side and w <= side:
        return 0, per_pixel
    free = free_memory(x.device)
    if free is not None and per_pixel is None:
        per_pixel = bytes_per_pixel(fn, x, multiple)
    if free is None or per_pixel is None:
        return FALLBACK_TILE, per_pixel
    # the result, its weights and the division's output are whole-image sized, in the input's dtype
    buffers = (2 * c + 1) * b * h * w * scale * scale * x.element_size()
    budget = MEMORY_FRACTION * free - buffers
    if per_pixel * h * w <= budget:
        return 0, per_pixel
    if budget <= 0:
        return multiple, per_pixel  # smallest tile; tiled_forward reports the failure if even that does not fit
    pad = _round_up(tile_pad, multiple)
    side = int(math.sqrt(budget / per_pixel)) - 2 * pad
    return max(side // multiple * multiple, multiple), per_pixel
