"""Side-by-side crops for READMEs and papers: HR | bicubic | method A | method B ..., each panel enlarged with
nearest-neighbour zoom and labelled with its name and the PSNR (Y, BasicSR's metric) of the crop."""

from __future__ import annotations

import cv2
import numpy as np

from ..utils.errors import UsageError

LABEL_HEIGHT = 34


def crop_psnr(crop: np.ndarray, reference: np.ndarray) -> float:
    from basicsr.metrics import calculate_psnr

    return float(calculate_psnr(crop, reference, 0, test_y_channel=True))


def side_by_side(hr: np.ndarray, panels: list[tuple[str, np.ndarray]], box: tuple[int, int, int, int],
                 zoom: int = 2) -> np.ndarray:
    """One row of labelled panels: ``hr`` and each ``(label, result)`` cropped to ``box`` = (top, left, height,
    width) in HR pixels. Results are 8-bit ``[H, W, 3]`` BGR of the HR image's size (or larger)."""
    top, left, height, width = box
    if top + height > hr.shape[0] or left + width > hr.shape[1]:
        raise UsageError(f"crop {box} (top, left, height, width) does not fit the {hr.shape[1]}x{hr.shape[0]} image")
    reference = hr[top:top + height, left:left + width]
    tiles = []
    for label, image in [("HR", hr), *panels]:
        crop = image[top:top + height, left:left + width]
        caption = "PSNR" if label == "HR" else f"{crop_psnr(crop, reference):.2f} dB"
        tile = cv2.resize(crop, (width * zoom, height * zoom), interpolation=cv2.INTER_NEAREST)
        tile = cv2.copyMakeBorder(tile, 0, LABEL_HEIGHT, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        for line, text in enumerate((label, "" if label == "HR" else caption)):
            cv2.putText(tile, text, (4, height * zoom + 14 + 15 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                        cv2.LINE_AA)
        tiles.append(tile)
    return np.hstack(tiles)
