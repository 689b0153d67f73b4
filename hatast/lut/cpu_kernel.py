"""Fused CPU kernel for int8 tables: neighbours, simplex interpolation, the four rotations and the authors' rounding
in one pass per LR pixel, compiled by numba (no C build step; parallel over image rows).

The kernel computes exactly what :func:`hatast.lut.simplex.rotation_ensemble` followed by
:func:`hatast.lut.simplex.to_image` computes; tests hold the two to equality in every pixel.
"""

from __future__ import annotations

import numpy as np

from .fields import ReceptiveField, padding, reflect_indices, rotation_geometry
from .simplex import AUTHORS_S_ORDER, ensemble_bound, index_strides, rounding_map

try:
    import numba
except ImportError:  # the torch path is the fallback
    numba = None


def available() -> bool:
    """Whether numba is installed, so the fused kernel can run."""
    return numba is not None


def _kernel(padded, table, offsets, placement, strides, interval, pad, final, bound, authors_order, out):
    channels, padded_height, padded_width = padded.shape
    height = padded_height - 2 * pad
    width = padded_width - 2 * pad
    n = offsets.shape[1]
    m = table.shape[1]
    scale = out.shape[0] // height
    q = np.int32(1 << interval)
    mask = q - 1
    for y in numba.prange(height):
        patch = np.empty(m, dtype=np.int32)  # one rotation's entries, rotated frame (a linear MAC loop)
        acc = np.empty(m, dtype=np.int32)  # ensemble sum, original frame
        remainder = np.empty(n, dtype=np.int32)
        order = np.empty(n, dtype=np.int64)
        for x in range(width):
            for c in range(channels):
                acc[:] = 0
                for k in range(4):
                    corner = 0
                    for j in range(n):
                        v = np.int32(padded[c, y + pad + offsets[k, j, 0], x + pad + offsets[k, j, 1]])
                        corner += (v >> interval) * strides[j]
                        remainder[j] = v & mask
                        order[j] = j
                    for j in range(1, n):  # stable insertion sort, decreasing remainders
                        t = order[j]
                        i = j - 1
                        while i >= 0 and remainder[order[i]] < remainder[t]:
                            order[i + 1] = order[i]
                            i -= 1
                        order[i + 1] = t
                    if n == 4 and authors_order:
                        if remainder[2] > remainder[3] > remainder[0] > remainder[1]:
                            for j in range(4):
                                order[j] = AUTHORS_S_ORDER[j]
                    patch[:] = 0
                    previous = q
                    for j in range(n + 1):
                        f = remainder[order[j]] if j < n else 0
                        weight = previous - f
                        previous = f
                        if weight != 0:  # ties and zero remainders are common in flat regions
                            for t in range(m):
                                patch[t] += weight * np.int32(table[corner, t])
                        if j < n:
                            corner += strides[order[j]]
                    for t in range(m):
                        acc[placement[k, t]] += patch[t]
                t = 0
                for u in range(scale):
                    for v in range(scale):
                        out[y * scale + u, x * scale + v, c] = final[acc[t] + bound]
                        t += 1


_compiled = None


def _compiled_kernel():
    """Compile on first use (cached on disk by numba, so later processes load it in well under a second)."""
    global _compiled
    if _compiled is None:
        _compiled = numba.njit(parallel=True, nogil=True, cache=True)(_kernel)
    return _compiled


def upscale_int8(
    image: np.ndarray,
    table: np.ndarray,
    field: ReceptiveField,
    scale: int,
    interval: int,
    authors_order: bool = False,
) -> np.ndarray:
    """Upscale ``[H, W, C]`` uint8 with an ``[L**n, scale**2]`` int8 table; returns ``[H*scale, W*scale, C]`` uint8."""
    if numba is None:
        raise RuntimeError("the fused LUT kernel needs numba (pip install numba); use backend='torch' instead")
    height, width, channels = image.shape
    pad = padding(field)
    planes = np.ascontiguousarray(image.transpose(2, 0, 1))
    padded = planes[:, reflect_indices(height, pad, pad)][:, :, reflect_indices(width, pad, pad)]
    offsets, placement = rotation_geometry(field, scale)
    strides = np.array(index_strides(field.size, interval), dtype=np.int64)
    bound = ensemble_bound(interval, authors_order)
    final = rounding_map(interval, bound)
    out = np.empty((height * scale, width * scale, channels), dtype=np.uint8)
    _compiled_kernel()(
        np.ascontiguousarray(padded),
        np.ascontiguousarray(table),
        offsets,
        placement,
        strides,
        interval,
        pad,
        final,
        bound,
        authors_order,
        out,
    )
    return out
