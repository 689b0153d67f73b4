"""Metric protocols: which BasicSR metric functions, on which channels, with which border, for a scale.

Every score in hatast goes through BasicSR's ``calculate_psnr`` / ``calculate_ssim`` (the functions the training
validation uses), on 8-bit images.

* ``y`` (the SR benchmarks' protocol, the default): PSNR/SSIM on the Y channel of YCbCr (ITU-R BT.601, as MATLAB's
  ``rgb2ycbcr``), ``ceil(scale)`` pixels cropped from every border;
* ``rgb`` (USRNet's protocol): on the RGB channels, ``ceil(scale)**2`` pixels cropped from every border.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricProtocol:
    name: str
    y_channel: bool
    border: Callable[[float], int]
    description: str


PROTOCOLS = {
    "y": MetricProtocol("y", True, lambda s: math.ceil(s), "Y channel, border = scale"),
    "rgb": MetricProtocol("rgb", False, lambda s: math.ceil(s) ** 2, "RGB, border = scale^2 (USRNet)"),
}


def option_metrics(scale: int, protocol: str = "y") -> dict:
    """The ``val.metrics`` section of a BasicSR option file for this protocol (validation during training and
    ``hatast test`` then score as ``hatast bench`` does)."""
    spec = PROTOCOLS[protocol]
    border = spec.border(scale)
    return {m: {"type": f"calculate_{m}", "crop_border": border, "test_y_channel": spec.y_channel}
            for m in ("psnr", "ssim")}


def crop_to(hr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The top-left part of ``hr`` of the SR result's height and width (BasicSR's rule)."""
    h, w = shape[:2]
    if hr.shape[0] < h or hr.shape[1] < w:
        raise ValueError(f"the result ({w}x{h}) is larger than the HR image ({hr.shape[1]}x{hr.shape[0]})")
    return hr[:h, :w]


def score(sr: np.ndarray, hr: np.ndarray, scale: float | tuple[float, float], protocol: str = "y") -> dict[str, float]:
    """PSNR and SSIM of an 8-bit ``[H, W, 3]`` BGR result against its HR image (cropped to the result's size)."""
    from basicsr.metrics import calculate_psnr, calculate_ssim

    spec = PROTOCOLS[protocol]
    border = spec.border(max(scale) if isinstance(scale, (tuple, list)) else scale)
    hr = crop_to(hr, sr.shape)
    return {"psnr": float(calculate_psnr(sr, hr, border, test_y_channel=spec.y_channel)),
            "ssim": float(calculate_ssim(sr, hr, border, test_y_channel=spec.y_channel))}
