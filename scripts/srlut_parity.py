"""Compare hatast's LUT inference with the SR-LUT authors' outputs for their S x4 table on Set5.

For each image: whether ``authors_order=True`` reproduces the authors' PNG in every pixel, how many pixel values the
default (correct simplex order) changes, and PSNR/SSIM (Y, crop 4, BasicSR's metrics) of both.

Usage: ``python scripts/srlut_parity.py [--fixtures ../shared/fixtures/srlut]``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from hatast.lut import load_table, upscale  # noqa: E402  (importing hatast installs the shim basicsr needs)

NAMES = ["baby", "bird", "butterfly", "head", "woman"]


def main() -> int:
    from basicsr.metrics import calculate_psnr, calculate_ssim

    default = Path(os.environ.get("HATAST_SHARED", REPO.parent / "shared")) / "fixtures" / "srlut"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=default, help="folder with the table, LR_x4, HR, golden")
    args = parser.parse_args()
    if not (args.fixtures / "Model_S_x4_4bit_int8.npy").is_file():
        print(f"error: {args.fixtures}/Model_S_x4_4bit_int8.npy not found (--fixtures)", file=sys.stderr)
        return 2
    table = load_table(args.fixtures / "Model_S_x4_4bit_int8.npy")
    rows, totals = [], np.zeros(4)
    changed_all = values_all = 0
    for name in NAMES:
        lr = cv2.imread(str(args.fixtures / "LR_x4" / f"{name}.png"))
        hr = cv2.imread(str(args.fixtures / "HR" / f"{name}_GT.png"))
        golden = cv2.imread(str(args.fixtures / "golden_S_x4" / f"{name}_GT_LUT_interp_4bit.png"))
        compat, fixed = upscale(table, lr, authors_order=True), upscale(table, lr)
        scores = [f(out, hr, 4, test_y_channel=True) for out in (compat, fixed) for f in (calculate_psnr,
                                                                                          calculate_ssim)]
        totals += scores
        changed = int((fixed != golden).sum())
        changed_all += changed
        values_all += golden.size
        rows.append(f"{name:<10}{'yes' if np.array_equal(compat, golden) else 'NO':>12}{changed:>10}"
                    f"{scores[0]:>10.3f}{scores[1]:>8.4f}{scores[2]:>10.3f}{scores[3]:>8.4f}")
    print(f"{'image':<10}{'bit-exact':>12}{'changed':>10}{'PSNR auth':>10}{'SSIM':>8}{'PSNR ours':>10}{'SSIM':>8}")
    print("\n".join(rows))
    mean = totals / len(NAMES)
    print(f"{'Set5':<10}{'':>12}{changed_all:>10}{mean[0]:>10.3f}{mean[1]:>8.4f}{mean[2]:>10.3f}{mean[3]:>8.4f}")
    print(f"corrected order changes {changed_all} of {values_all} values ({100 * changed_all / values_all:.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
