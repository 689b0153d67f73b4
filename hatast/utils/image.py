"""Reading and writing user images for the command-line tools (datasets read through BasicSR's FileClient)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor


class ImageError(ValueError):
    """An image that cannot be processed, with the file and the reason."""


@dataclass
class Image:
    """An image as the networks see it, plus what is needed to write it back in its own format.

    Attributes:
        rgb: ``[1, 3, H, W]`` float32 in [0, 1].
        alpha: ``[1, 1, H, W]`` float32 in [0, 1], or None.
        max_value: 255 for 8-bit files, 65535 for 16-bit ones.
    """

    rgb: Tensor
    alpha: Tensor | None
    max_value: int


def read_image(path: str | Path) -> Image:
    """Read an 8- or 16-bit grey, RGB or RGBA image. Grey becomes RGB; alpha is kept separately."""
    path = Path(path)
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ImageError(f"{path}: not a readable image")
    if data.dtype == np.uint8:
        max_value = 255
    elif data.dtype == np.uint16:
        max_value = 65535
    else:
        raise ImageError(f"{path}: {data.dtype} pixels are not supported (8- or 16-bit integers only)")
    if data.ndim == 2:
        data = data[..., None]
    channels = data.shape[2]
    if channels not in (1, 3, 4):
        raise ImageError(f"{path}: {channels} channels are not supported (grey, RGB or RGBA)")
    pixels = torch.from_numpy(data.astype(np.float32) / max_value).permute(2, 0, 1)[None]
    alpha = pixels[:, 3:4] if channels == 4 else None
    rgb = pixels[:, :1].expand(-1, 3, -1, -1) if channels == 1 else pixels[:, [2, 1, 0]]  # BGR -> RGB
    return Image(rgb.contiguous(), alpha, max_value)


def write_image(path: str | Path, rgb: Tensor, alpha: Tensor | None = None, max_value: int = 255) -> None:
    """Write ``[1, 3, H, W]`` RGB (and ``[1, 1, H, W]`` alpha) in [0, 1] with ``max_value`` levels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    planes = rgb[:, [2, 1, 0]] if alpha is None else torch.cat([rgb[:, [2, 1, 0]], alpha], 1)
    data = (planes[0].permute(1, 2, 0).clamp(0, 1) * max_value).round().cpu().numpy()
    data = data.astype(np.uint16 if max_value > 255 else np.uint8)
    if not cv2.imwrite(str(path), data):
        raise ImageError(f"{path}: could not write the image")
