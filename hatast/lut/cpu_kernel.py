"""Fused CPU kernels for look-up tables, compiled by numba (no C build step; parallel over image rows).

One helper walks the simplex of one pixel and one rotation (:func:`_simplex_walk`); three kernels use it:

* :func:`upscale_int8`: int8 table inference, neighbours, interpolation, the four rotations and the authors' rounding
  in one pass per LR pixel; tests hold it equal in every pixel to
  :func:`hatast.lut.simplex.rotation_ensemble` followed by :func:`hatast.lut.simplex.to_image`.
* :func:`ensemble_sum_float` and :func:`ensemble_sum_grad`: the float ensemble sum of LUT-aware fine-tuning and its
  gradient with respect to the table (a scatter of the output gradient onto the ``n + 1`` corners each pixel read),
  equal to what autograd computes through the torch path.
"""

from __future__ import annotations

import numpy as np

from ..utils.padding import reflect_indices
from .fields import ReceptiveField, padding, rotation_geometry
from .lattice import AUTHORS_S_ORDER, ensemble_bound, index_strides, rounding_map

try:
    import numba
except ImportError:  # the torch path is the fallback
    numba = None


def available() -> bool:
    """Whether numba is installed, so the fused kernels can run."""
    return numba is not None


def _jit(parallel: bool = False, inline: bool = False):
    """numba's lazy compilation (first call), cached on disk so later processes load it in well under a second."""

    def wrap(function):
        if numba is None:
            return function
        options = dict(parallel=parallel, nogil=True, inline="always" if inline else "never")
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # nowhere to cache (read-only install, no writable home): compile in each process
            return numba.njit(cache=False, **options)(function)

    return wrap


@_jit(inline=True)  # inlined into the kernels: about 3% faster than a call per pixel and rotation here
def _simplex_walk(padded, c, y, x, offsets, k, strides, interval, authors_order, remainder, order, corners, weights):
    """Corners (table rows) and integer weights (summing to ``q``) of the simplex holding the receptive field of
    rotation ``k`` at position ``(y, x)`` of padded plane ``c``; fills ``corners[:n + 1]`` and ``weights[:n + 1]``."""
    n = offsets.shape[1]
    q = np.int32(1 << interval)
    mask = q - 1
    corner = 0
    for j in range(n):
        v = np.int32(padded[c, y + offsets[k, j, 0], x + offsets[k, j, 1]])
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
    previous = q
    for j in range(n + 1):
        f = remainder[order[j]] if j < n else 0
        weights[j] = previous - f
        previous = f
        corners[j] = corner
        if j < n:
            corner += strides[order[j]]


@_jit(inline=True)
def _walk_scratch(n):
    """Per-thread scratch arrays of :func:`_simplex_walk`: remainders, their order, corners, weights."""
    return np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1, np.int32)


@_jit(parallel=True)
def _upscale_int8_kernel(padded, table, offsets, placement, strides, interval, pad, final, bound, authors_order, out):
    channels, padded_height, padded_width = padded.shape
    height = padded_height - 2 * pad
    width = padded_width - 2 * pad
    n = offsets.shape[1]
    m = table.shape[1]
    scale = out.shape[0] // height
    for y in numba.prange(height):
        patch = np.empty(m, dtype=np.int32)  # one rotation's entries, rotated frame (a linear MAC loop)
        acc = np.empty(m, dtype=np.int32)  # ensemble sum, original frame
        remainder, order, corners, weights = _walk_scratch(n)
        for x in range(width):
            for c in range(channels):
                acc[:] = 0
                for k in range(4):
                    _simplex_walk(
                        padded, c, y + pad, x + pad, offsets, k, strides, interval, authors_order, remainder, order,
                        corners, weights,
                    )
                    patch[:] = 0
                    for j in range(n + 1):
                        w = weights[j]  # locals: loads from arrays in the loop would not be hoisted
                        corner = corners[j]
                        if w != 0:  # ties and zero remainders are common in flat regions
                            for t in range(m):
                                patch[t] += w * np.int32(table[corner, t])
                    for t in range(m):
                        acc[placement[k, t]] += patch[t]
                t = 0
                for u in range(scale):
                    for v in range(scale):
                        out[y * scale + u, x * scale + v, c] = final[acc[t] + bound]
                        t += 1


@_jit(parallel=True)
def _sum_float_kernel(padded, table, offsets, placement, strides, interval, pad, authors_order, out):
    planes, padded_height, padded_width = padded.shape
    height = padded_height - 2 * pad
    width = padded_width - 2 * pad
    n = offsets.shape[1]
    m = table.shape[1]
    scale = out.shape[1] // height
    for row in numba.prange(planes * height):
        p = row // height
        y = row % height
        acc = np.empty(m, dtype=np.float32)
        remainder, order, corners, weights = _walk_scratch(n)
        for x in range(width):
            acc[:] = 0
            for k in range(4):
                _simplex_walk(
                    padded, p, y + pad, x + pad, offsets, k, strides, interval, authors_order, remainder, order,
                    corners, weights,
                )
                for j in range(n + 1):
                    w = np.float32(weights[j])
                    corner = corners[j]
                    if w != 0:
                        for t in range(m):
                            acc[placement[k, t]] += w * table[corner, t]
            t = 0
            for u in range(scale):
                for v in range(scale):
                    out[p, y * scale + u, x * scale + v] = acc[t]
                    t += 1


@_jit(parallel=True)
def _sum_grad_kernel(padded, grad_out, offsets, placement, strides, interval, pad, authors_order, grads):
    planes, padded_height, padded_width = padded.shape
    height = padded_height - 2 * pad
    width = padded_width - 2 * pad
    n = offsets.shape[1]
    m = grads.shape[2]
    scale = grad_out.shape[1] // height
    chunks = grads.shape[0]
    for chunk in numba.prange(chunks):  # each chunk scatters into its own copy of the gradient: no races
        patch = np.empty(m, dtype=np.float32)  # output gradient of one pixel, original frame
        remainder, order, corners, weights = _walk_scratch(n)
        for row in range(chunk, planes * height, chunks):
            p = row // height
            y = row % height
            for x in range(width):
                t = 0
                for u in range(scale):
                    for v in range(scale):
                        patch[t] = grad_out[p, y * scale + u, x * scale + v]
                        t += 1
                for k in range(4):
                    _simplex_walk(
                        padded, p, y + pad, x + pad, offsets, k, strides, interval, authors_order, remainder, order,
                        corners, weights,
                    )
                    for j in range(n + 1):
                        w = np.float32(weights[j])
                        corner = corners[j]
                        if w != 0:
                            for t in range(m):
                                grads[chunk, corner, t] += w * patch[placement[k, t]]


def _require_numba() -> None:
    if numba is None:
        raise RuntimeError("the fused LUT kernels need numba (pip install numba); use the torch path instead")


def _pad_planes(planes: np.ndarray, field: ReceptiveField) -> np.ndarray:
    """Reflection-pad ``[P, H, W]`` uint8 planes by the field's margin on every side."""
    pad = padding(field)
    height, width = planes.shape[-2:]
    padded = planes[:, reflect_indices(height, pad, pad)][:, :, reflect_indices(width, pad, pad)]
    return np.ascontiguousarray(padded)


def _geometry(field: ReceptiveField, scale: int, interval: int):
    offsets, placement = rotation_geometry(field, scale)
    return offsets, placement, np.array(index_strides(field.size, interval), dtype=np.int64)


def upscale_int8(
    image: np.ndarray,
    table: np.ndarray,
    field: ReceptiveField,
    scale: int,
    interval: int,
    authors_order: bool = False,
) -> np.ndarray:
    """Upscale ``[H, W, C]`` uint8 with an ``[L**n, scale**2]`` int8 table; returns ``[H*scale, W*scale, C]`` uint8."""
    _require_numba()
    height, width, channels = image.shape
    padded = _pad_planes(np.ascontiguousarray(image.transpose(2, 0, 1)), field)
    offsets, placement, strides = _geometry(field, scale, interval)
    bound = ensemble_bound(interval, authors_order)
    final = rounding_map(interval, bound)
    out = np.empty((height * scale, width * scale, channels), dtype=np.uint8)
    _upscale_int8_kernel(
        padded, np.ascontiguousarray(table), offsets, placement, strides, interval, padding(field), final, bound,
        authors_order, out,
    )
    return out


def ensemble_sum_float(
    planes: np.ndarray, table: np.ndarray, field: ReceptiveField, scale: int, interval: int, authors_order: bool
) -> np.ndarray:
    """Float ensemble sum (table units times ``q``) of ``[P, H, W]`` uint8 grey planes: ``[P, H*r, W*r]`` float32."""
    _require_numba()
    count, height, width = planes.shape
    offsets, placement, strides = _geometry(field, scale, interval)
    out = np.empty((count, height * scale, width * scale), dtype=np.float32)
    _sum_float_kernel(
        _pad_planes(planes, field), np.ascontiguousarray(table, dtype=np.float32), offsets, placement, strides,
        interval, padding(field), authors_order, out,
    )
    return out


def ensemble_sum_grad(
    planes: np.ndarray,
    grad_out: np.ndarray,
    rows: int,
    field: ReceptiveField,
    scale: int,
    interval: int,
    authors_order: bool,
) -> np.ndarray:
    """Gradient of ``(grad_out * ensemble_sum_float(planes, table)).sum()`` with respect to the table: ``[rows, r*r]``
    float32."""
    _require_numba()
    offsets, placement, strides = _geometry(field, scale, interval)
    chunks = min(numba.get_num_threads(), planes.shape[0] * planes.shape[1])
    grads = np.zeros((chunks, rows, scale * scale), dtype=np.float32)
    _sum_grad_kernel(
        _pad_planes(planes, field), np.ascontiguousarray(grad_out, dtype=np.float32), offsets, placement, strides,
        interval, padding(field), authors_order, grads,
    )
    return grads.sum(0)
