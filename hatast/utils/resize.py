"""MATLAB ``imresize``'s interpolation kernels and the contributions of input pixels to each output pixel (numpy
only, so the LUT core uses them without the data pipeline): the weights behind :func:`hatast.data.degradations.
imresize`, its torch form ``resize_tensor`` and IM-LUT's fused mixing kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class ResizeKernel:
    """A 1-D interpolation kernel ``k(x)`` that is zero for ``|x| >= width / 2``."""

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    width: float


def _box(x: np.ndarray) -> np.ndarray:
    return ((-0.5 <= x) & (x < 0.5)).astype(np.float64)


def _triangle(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return (1 - ax) * (ax <= 1)


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((1 < ax) & (ax <= 2)))


def _lanczos(lobes: int) -> Callable[[np.ndarray], np.ndarray]:
    def kernel(x: np.ndarray) -> np.ndarray:
        # MATLAB's form: (sin(pi x) sin(pi x / a) + eps) / ((pi^2 x^2 / a) + eps), zero outside |x| < a
        num = np.sin(np.pi * x) * np.sin(np.pi * x / lobes) + np.finfo(np.float64).eps
        den = np.pi ** 2 * x * x / lobes + np.finfo(np.float64).eps
        return num / den * (np.abs(x) < lobes)

    return kernel


KERNELS = {
    "nearest": ResizeKernel("nearest", _box, 1.0),
    "bilinear": ResizeKernel("bilinear", _triangle, 2.0),
    "bicubic": ResizeKernel("bicubic", _cubic, 4.0),
    "lanczos2": ResizeKernel("lanczos2", _lanczos(2), 4.0),
    "lanczos3": ResizeKernel("lanczos3", _lanczos(3), 6.0),
}


@lru_cache(maxsize=64)
def contributions(in_length: int, out_length: int, scale: float, kernel: str = "bicubic",
                  antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Which input pixels each output pixel reads, and with what weights: ``(indices, weights)``, both
    ``[out_length, P]`` (0-based int64 indices, mirrored at the borders; float64 weights summing to one)."""
    spec = KERNELS[kernel]
    width = spec.width
    function = spec.function
    if scale < 1 and antialias:
        width = width / scale
        function = _stretched(spec.function, scale)
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None]  # 1-based, may lie outside the image
    weights = function(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)  # drop taps that are zero for every output pixel
    return np.ascontiguousarray(indices[:, keep]), np.ascontiguousarray(weights[:, keep])


def _stretched(function: Callable[[np.ndarray], np.ndarray], scale: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: scale * function(scale * x)
