"""IM-LUT's mixing step fused for the CPU (numba): the ``K`` interpolations of the LR image and of the ``K``
modulated weight maps, the per-pixel normalisation across ``K`` and the mix, in two passes (columns at LR rows, then
rows) run per chunk of HR rows, without the ``K`` interpolated images ever being stored at HR. The reference is the
torch path of :class:`hatast.archs.imlut_arch.InterpolationMixer` (:func:`hatast.data.degradations.resize_tensor`),
which a test holds it equal to.

Resize weights are :func:`hatast.utils.resize.contributions` (MATLAB's rules), padded to a common tap count
with zero weights so one kernel serves every interpolation.
"""

from __future__ import annotations

import numpy as np

from ..utils.resize import contributions
from .cpu_kernel import _jit, _require_numba, _unit_to_pixel, numba


def axis_weights(kernels: tuple[str, ...], in_length: int, out_length: int,
                 scale: float) -> tuple[np.ndarray, np.ndarray]:
    """``(indices [K, out, T] int64, weights [K, out, T] float32)``: each interpolation's taps along one axis."""
    pairs = [contributions(in_length, out_length, scale, kernel, True) for kernel in kernels]
    taps = max(i.shape[1] for i, _ in pairs)
    indices = np.zeros((len(kernels), out_length, taps), np.int64)
    weights = np.zeros((len(kernels), out_length, taps), np.float32)
    for k, (i, w) in enumerate(pairs):
        indices[k, :, : i.shape[1]] = i
        weights[k, :, : w.shape[1]] = w
    return indices, weights


@_jit(inline=True)
def _resize_columns(image, maps, p, y, col_index, col_weight, out, row):
    """First pass for LR row ``y`` of plane ``p``: the row resized along columns, the image and each map, into
    ``out[k, 0 | 1, row]``."""
    count, _, _, width = out.shape
    taps = col_index.shape[2]
    for k in range(count):
        for x in range(width):
            out[k, 0, row, x] = 0
            out[k, 1, row, x] = 0
        for t in range(taps):  # taps outer, no branch on padded zero weights: the x loop vectorises
            for x in range(width):
                w = col_weight[k, x, t]
                j = col_index[k, x, t]
                out[k, 0, row, x] += w * image[p, y, j]
                out[k, 1, row, x] += w * maps[p, k, y, j]


@_jit(inline=True)
def _mix_row(columns, first, row_index, row_weight, y, softmax, mixed, pixels):
    """Second pass for HR row ``y``: resize along rows from the column-resized LR rows (``columns[:, :, i - first]``
    holds LR row ``i``), normalise the ``K`` weights per pixel, mix; the mix as float (``mixed``) and as the 8-bit
    values the refiner table reads (``pixels``)."""
    count, _, _, width = columns.shape
    taps = row_index.shape[2]
    values = np.zeros((count, width), np.float32)
    weights = np.zeros((count, width), np.float32)
    for k in range(count):
        for t in range(taps):
            w = row_weight[k, y, t]
            if w != 0:
                i = row_index[k, y, t] - first
                for x in range(width):
                    values[k, x] += w * columns[k, 0, i, x]
                    weights[k, x] += w * columns[k, 1, i, x]
    mix = np.zeros(width, np.float32)
    total = np.zeros(width, np.float32)
    if softmax:
        top = weights[0].copy()
        for k in range(1, count):
            for x in range(width):
                top[x] = max(top[x], weights[k, x])
        for k in range(count):
            for x in range(width):
                e = np.exp(weights[k, x] - top[x])
                total[x] += e
                mix[x] += e * values[k, x]
        for x in range(width):
            mix[x] /= total[x]
    else:  # signed weights shifted equally to sum to one: sum_k w_k v_k + (1 - sum_k w_k) / K * sum_k v_k
        plain = np.zeros(width, np.float32)
        for k in range(count):
            for x in range(width):
                total[x] += weights[k, x]
                mix[x] += weights[k, x] * values[k, x]
                plain[x] += values[k, x]
        for x in range(width):
            mix[x] += (np.float32(1) - total[x]) / np.float32(count) * plain[x]
    for x in range(width):
        mixed[y, x] = mix[x]
        pixels[y, x] = _unit_to_pixel(mix[x])


@_jit(parallel=True)
def _mix_kernel(image, maps, col_index, col_weight, row_index, row_weight, softmax, chunk_rows, mixed, pixels):
    """Both passes, parallel over chunks of ``chunk_rows`` HR rows of each plane: a chunk resizes along columns only
    the LR rows its HR rows read (its neighbours redo the few rows they share), so the column-resized image is never
    stored whole (at x1.5 to 1920x1080 it would be 100 MB)."""
    planes, count, height, _ = maps.shape
    out_h, out_w = mixed.shape[1:]
    taps = row_index.shape[2]
    chunks = (out_h + chunk_rows - 1) // chunk_rows
    for job in numba.prange(planes * chunks):
        p = job // chunks
        y0 = (job - p * chunks) * chunk_rows
        y1 = min(out_h, y0 + chunk_rows)
        first, last = height - 1, 0
        for k in range(count):
            for y in range(y0, y1):
                for t in range(taps):
                    if row_weight[k, y, t] != 0:
                        first = min(first, row_index[k, y, t])
                        last = max(last, row_index[k, y, t])
        last = max(first, last)
        columns = np.empty((count, 2, last - first + 1, out_w), np.float32)
        for i in range(first, last + 1):
            _resize_columns(image, maps, p, i, col_index, col_weight, columns, i - first)
        for y in range(y0, y1):
            _mix_row(columns, first, row_index, row_weight, y, softmax, mixed[p], pixels[p])


def mix(image: np.ndarray, maps: np.ndarray, kernels: tuple[str, ...], size: tuple[int, int],
        scales: tuple[float, float], softmax: bool) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate, normalise and mix.

    Args:
        image: ``[P, h, w]`` float32 LR planes in [0, 1].
        maps: ``[P, K, h, w]`` float32 modulated weight maps.
        kernels: the ``K`` resize kernels.
        size: HR ``(H, W)``; ``scales``: the per-axis factors the resize weights use.
        softmax: softmax across ``K``, else the signed weights shifted equally to sum to one.

    Returns:
        ``(mixed [P, H, W] float32, pixels [P, H, W] uint8)``.
    """
    _require_numba()
    planes, count, height, width = maps.shape
    out_h, out_w = size
    col_index, col_weight = axis_weights(kernels, width, out_w, scales[1])
    row_index, row_weight = axis_weights(kernels, height, out_h, scales[0])
    mixed = np.empty((planes, out_h, out_w), np.float32)
    pixels = np.empty((planes, out_h, out_w), np.uint8)
    chunk_rows = max(8, -(-out_h * planes // (8 * numba.get_num_threads())))  # ~8 jobs a thread, for balance
    _mix_kernel(np.ascontiguousarray(image, np.float32), np.ascontiguousarray(maps, np.float32), col_index,
                col_weight, row_index, row_weight, softmax, chunk_rows, mixed, pixels)
    return mixed, pixels
