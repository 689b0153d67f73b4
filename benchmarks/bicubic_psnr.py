"""PSNR/SSIM of bicubic upsampling on benchmark sets, with the same metric code and settings as the test options.

    python benchmarks/bicubic_psnr.py --data ../shared/data/benchmark --sets Set5 Set14 --scale 4

Upsamples ``<set>/LR_bicubic/X<s>/<name>x<s>.png`` with MATLAB-compatible bicubic interpolation and compares with
``<set>/HR/<name>.png`` (cropped to the LR size times the scale) on the Y channel with ``crop_border`` = scale,
through BasicSR's ``calculate_psnr``/``calculate_ssim``: the baseline row for tables of trained models.
"""

# ruff: noqa: I001  (hatast must be imported before basicsr: it installs the torchvision shim)
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import hatast  # noqa: F401  (must come first: installs the torchvision shim before basicsr loads)
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils.matlab_functions import imresize


def bicubic_scores(folder: Path, scale: int) -> tuple[float, float, int]:
    psnr, ssim = [], []
    for hr_path in sorted((folder / "HR").glob("*.png")):
        lr = cv2.imread(str(folder / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png"))
        if lr is None:
            raise FileNotFoundError(f"no LR image for {hr_path}")
        hr = cv2.imread(str(hr_path))[: lr.shape[0] * scale, : lr.shape[1] * scale]
        up = (np.clip(imresize(lr.astype(np.float32) / 255, scale), 0, 1) * 255).round().astype(np.uint8)
        psnr.append(calculate_psnr(up, hr, scale, test_y_channel=True))
        ssim.append(calculate_ssim(up, hr, scale, test_y_channel=True))
    return float(np.mean(psnr)), float(np.mean(ssim)), len(psnr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder holding the benchmark sets")
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    parser.add_argument("--scale", type=int, default=4)
    args = parser.parse_args()
    print(f"bicubic x{args.scale} (Y channel, crop {args.scale})")
    for name in args.sets:
        psnr, ssim, n = bicubic_scores(Path(args.data) / name, args.scale)
        print(f"  {name:<10} {n:3d} images  PSNR {psnr:.2f} dB  SSIM {ssim:.4f}")


if __name__ == "__main__":
    main()
