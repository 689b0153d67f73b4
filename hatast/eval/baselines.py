"""Interpolation baselines: the LR image resized by MATLAB's ``imresize`` (uint8 in, uint8 out, rounded after each
pass as MATLAB does), the rows every SR table starts with."""

from __future__ import annotations

import numpy as np

from ..data.degradations import imresize
from ..utils.errors import UsageError

BASELINES = {"bicubic": "bicubic", "lanczos2": "lanczos2", "lanczos3": "lanczos3", "bilinear": "bilinear",
             "nearest": "nearest"}
"""Baseline name -> :data:`hatast.data.degradations.KERNELS` entry."""


def interpolate(lr: np.ndarray, scale: float | tuple[float, float], method: str = "bicubic") -> np.ndarray:
    """``imresize(lr, scale, method)`` of an 8-bit image: the baseline SR result."""
    if method not in BASELINES:
        raise UsageError(f"unknown baseline {method!r}; expected one of {', '.join(BASELINES)}")
    return imresize(lr, scale, kernel=BASELINES[method])
