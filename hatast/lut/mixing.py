"""IM-LUT's mixing step fused for the CPU (numba): the ``K`` interpolations of the LR image and of the ``K``
modulated weight maps, the per-pixel normalisation across ``K`` and the mix, in two passes (columns at LR rows, then
rows), without the ``K`` interpolated images ever being stored at HR. The reference is the torch path of
:class:`hatast.archs.imlut_arch.InterpolationMixer` (:func:`hatast.data.degradations.resize_tensor`), which a test
holds it equal to.

Resize weights are :func:`hatast.utils.resize.contributions` (MATLAB's rules), padded to a common tap count
with zero weights so one kernel serves every interpolation.
"""

from __future__ import annotations

import numpy as np

from ..utils.resize import contributions
from .cpu_kernel import _jit, _require_numba, numba


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
def _to_pixel(value):
    """A float intensity in [0, 1] (clipped) -> uint8, half up: the rounding every IM-LUT output goes through."""
    level = min(max(value * np.float32(255), np.float32(0)), np.float32(255))
    return np.uint8(np.floor(level + np.float32(0.5)))


@_jit(parallel=True)
def _columns_kernel(image, maps, col_index, col_weight, out):
    """First pass: every LR row resized along columns, for the image and each map: ``out [P, K, 2, h, W]``."""
    planes, count, height, _ = maps.shape
    width = out.shape[-1]
    taps = col_index.shape[2]
    for row in numba.prange(planes * height):
        p = row // height
        y = row - p * height
        for k in range(count):
            for x in range(width):
                out[p, k, 0, y, x] = 0
                out[p, k, 1, y, x] = 0
            for t in range(taps):  # taps outer, no branch on padded zero weights: the x loop vectorises
                for x in range(width):
                    w = col_weight[k, x, t]
                    j = col_index[k, x, t]
                    out[p, k, 0, y, x] += w * image[p, y, j]
                    out[p, k, 1, y, x] += w * maps[p, k, y, j]


@_jit(parallel=True)
def _rows_kernel(columns, row_index, row_weight, softmax, mixed, pixels):
    """Second pass: resize along rows (a whole row at a time, so the tap loop runs over contiguous memory),
    normalise the ``K`` weights per pixel, mix; the mix as float (``mixed``) and as the 8-bit values the refiner
    table reads (``pixels``)."""
    planes, count, _, _, width = columns.shape
    height = mixed.shape[1]
    taps = row_index.shape[2]
    for row in numba.prange(planes * height):
        p = row // height
        y = row - p * height
        values = np.zeros((count, width), np.float32)
        weights = np.zeros((count, width), np.float32)
        for k in range(count):
            for t in range(taps):
                w = row_weight[k, y, t]
                if w != 0:
                    i = row_index[k, y, t]
                    for x in range(width):
                        values[k, x] += w * columns[p, k, 0, i, x]
                        weights[k, x] += w * columns[p, k, 1, i, x]
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
            mixed[p, y, x] = mix[x]
            pixels[p, y, x] = _to_pixel(mix[x])


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
    columns = np.empty((planes, count, 2, height, out_w), np.float32)
    _columns_kernel(np.ascontiguousarray(image, np.float32), np.ascontiguousarray(maps, np.float32), col_index,
                    col_weight, columns)
    mixed = np.empty((planes, out_h, out_w), np.float32)
    pixels = np.empty((planes, out_h, out_w), np.uint8)
    _rows_kernel(columns, row_index, row_weight, softmax, mixed, pixels)
    return mixed, pixels


@_jit(parallel=True)
def _refined_kernel(mixed, sums, step, out):
    planes, height, width = mixed.shape
    for y in numba.prange(height):
        for x in range(width):
            for p in range(planes):
                out[y, x, p] = _to_pixel(mixed[p, y, x] + np.float32(sums[p, y, x]) * step)


def refined_pixels(mixed: np.ndarray, sums: np.ndarray, step: float) -> np.ndarray:
    """The refiner's last step: ``mixed [P, H, W]`` float32 plus ``sums [P, H, W]`` (its table's integer sums)
    times ``step``, rounded half up to 8-bit pixels, as an ``[H, W, P]`` image."""
    _require_numba()
    out = np.empty((*mixed.shape[1:], mixed.shape[0]), np.uint8)
    _refined_kernel(np.ascontiguousarray(mixed, np.float32), np.ascontiguousarray(sums), np.float32(step), out)
    return out

