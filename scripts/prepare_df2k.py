"""Prepare DF2K (DIV2K train + Flickr2K) for the HAT training options: bicubic LR images and sub-images.

    python scripts/prepare_df2k.py --hr DIV2K_train_HR Flickr2K_HR --out datasets/DF2K [--scales 2 3 4] [--lmdb]

Writes ``DF2K_HR_sub/`` (480x480 crops, step 240) and ``DF2K_bicx{s}_sub/`` (the matching LR crops, cut from the
MATLAB-bicubic downsampling of the whole HR image so crop borders see real neighbours), as BasicSR's
``extract_subimages.py`` does; ``--lmdb`` also packs each folder into ``<folder>.lmdb``. Crops are named
``<image>_s<nnn>.png`` in both folders so ``PairedImageDataset`` pairs them by name.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CROP, STEP, MIN_REST = 480, 240, 24  # HR crop size, stride, and the smallest leftover that still gets a crop


def _starts(length: int) -> list[int]:
    starts = list(range(0, length - CROP + 1, STEP))
    if length - (starts[-1] + CROP) > MIN_REST:
        starts.append(length - CROP)
    return starts


def process(args: tuple[Path, Path, tuple[int, ...]]) -> int:
    from hatast.data.bicubic_dataset import bicubic_downsample
    from hatast.utils.image import imwrite_atomic

    path, out, scales = args
    hr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    lcm = int(np.lcm.reduce(scales))
    h, w = hr.shape[0] // lcm * lcm, hr.shape[1] // lcm * lcm
    hr = hr[:h, :w]
    lrs = {s: (bicubic_downsample(hr.astype(np.float32) / 255, s) * 255).round().astype(np.uint8) for s in scales}
    n = 0
    for top in _starts(h):
        for left in _starts(w):
            n += 1
            name = f"{path.stem}_s{n:03d}.png"
            imwrite_atomic(hr[top:top + CROP, left:left + CROP], out / "DF2K_HR_sub" / name)
            for s, lr in lrs.items():
                crop = lr[top // s:(top + CROP) // s, left // s:(left + CROP) // s]
                imwrite_atomic(crop, out / f"DF2K_bicx{s}_sub" / name)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hr", nargs="+", required=True, help="folders of HR images (DIV2K_train_HR, Flickr2K_HR)")
    parser.add_argument("--out", required=True, help="output folder, e.g. datasets/DF2K")
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--lmdb", action="store_true", help="also write <folder>.lmdb for io_backend: lmdb")
    args = parser.parse_args()
    out = Path(args.out)
    for folder in ["DF2K_HR_sub"] + [f"DF2K_bicx{s}_sub" for s in args.scales]:
        (out / folder).mkdir(parents=True, exist_ok=True)
    images = sorted(p for d in args.hr for p in Path(d).iterdir() if p.suffix.lower() in (".png", ".jpg"))
    if not images:
        sys.exit(f"no images in {args.hr}")
    with ProcessPoolExecutor(args.workers) as pool:
        crops = sum(pool.map(process, [(p, out, tuple(args.scales)) for p in images], chunksize=4))
    print(f"{len(images)} images -> {crops} sub-images in {out}")
    if args.lmdb:
        import hatast  # noqa: F401, I001  (first: installs the torchvision shim before basicsr loads)
        from basicsr.utils.lmdb_util import make_lmdb_from_imgs

        for folder in sorted(p for p in out.iterdir() if p.is_dir() and p.name.endswith("_sub")):
            names = sorted(p.name for p in folder.glob("*.png"))
            make_lmdb_from_imgs(str(folder), str(folder) + ".lmdb", names, [Path(n).stem for n in names])


if __name__ == "__main__":
    main()
