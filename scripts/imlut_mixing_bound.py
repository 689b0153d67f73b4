"""How far can mixing interpolations go? The best mix of IM-LUT's interpolations with one weight set per LR pixel,
chosen knowing the ground truth, on a benchmark set: what the mixing step alone (no refiner) could reach if its
weights were constant over each LR pixel's block (IM-LUT resizes its weight maps, so its weights vary inside a block:
this is a reference point, not a strict bound).

    python scripts/imlut_mixing_bound.py --data ../shared/data [--set Set5] [--scales 2 3 4]

For every LR pixel, the ``s x s`` HR block it covers gets one weight per interpolation (``N`` nearest, ``L``
bilinear, ``C`` bicubic, ``Z`` Lanczos-2, all :func:`hatast.data.degradations.imresize`), chosen to minimise the
block's squared error on Y:

* ``convex``: weights >= 0 summing to one (what a softmax can express), searched on a 1/20 simplex grid;
* ``signed``: weights of any sign summing to one (the ``sum`` normalisation), exact least squares.

Y is BT.601 from BasicSR's ``bgr2ycbcr``; the bound is scored by BasicSR's PSNR on the 8-bit Y plane,
border = scale (the benchmark protocol). Integer scales only (each LR pixel then covers a whole block).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hatast.data.degradations import imresize  # noqa: E402  (importing hatast installs the shim basicsr needs)
from hatast.eval.sets import find_pairs  # noqa: E402
from hatast.lut.imlut import INTERPOLATIONS  # noqa: E402
from hatast.utils.image import read_image  # noqa: E402

LETTER_SETS = ("NL", "NLC", "NLCZ")
GRID_STEPS = 20


def blocks(image: np.ndarray, scale: int) -> np.ndarray:
    """``[..., h*s, w*s]`` -> ``[h*w, ..., s*s]``: the HR block of every LR pixel."""
    *lead, height, width = image.shape
    h, w = height // scale, width // scale
    split = image.reshape(*lead, h, scale, w, scale)
    moved = np.moveaxis(split, (len(lead), len(lead) + 2), (0, 1))  # h, w, *lead, s, s
    return moved.reshape(h * w, *lead, scale * scale)


def unblocks(values: np.ndarray, h: int, w: int, scale: int) -> np.ndarray:
    return values.reshape(h, w, scale, scale).transpose(0, 2, 1, 3).reshape(h * scale, w * scale)


def best_convex(candidates: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per block, the convex mix on the simplex grid closest to ``target``: ``[B, K, P]``, ``[B, P]`` -> ``[B, P]``."""
    count = candidates.shape[1]
    grid = np.array([c for c in itertools.product(range(GRID_STEPS + 1), repeat=count) if sum(c) == GRID_STEPS],
                    np.float64) / GRID_STEPS
    best_error = np.full(len(target), np.inf)
    best = np.zeros_like(target)
    for chunk in np.array_split(grid, max(1, len(grid) // 64)):
        mixes = np.einsum("gk,bkp->bgp", chunk, candidates)
        errors = ((mixes - target[:, None]) ** 2).sum(-1)
        pick = errors.argmin(1)
        error = errors[np.arange(len(pick)), pick]
        better = error < best_error
        best_error = np.where(better, error, best_error)
        best = np.where(better[:, None], mixes[np.arange(len(pick)), pick], best)
    return best


def best_signed(candidates: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per block, the least-squares mix with weights summing to one (any sign)."""
    base = candidates[:, -1]
    directions = candidates[:, :-1] - base[:, None]
    gram = np.einsum("bkp,bjp->bkj", directions, directions) + 1e-9 * np.eye(directions.shape[1])
    rhs = np.einsum("bkp,bp->bk", directions, target - base)
    coefficients = np.linalg.solve(gram, rhs[..., None])[..., 0]
    return base + np.einsum("bk,bkp->bp", coefficients, directions)


def main() -> None:
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import bgr2ycbcr

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="root holding benchmark/<set>")
    parser.add_argument("--set", default="Set5")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    args = parser.parse_args()

    def y_plane(path: Path) -> np.ndarray:
        return bgr2ycbcr(read_image(path).bgr.astype(np.float32) / 255, y_only=True).astype(np.float64)

    def psnr(y: np.ndarray, gt: np.ndarray, scale: int) -> float:
        as_pixels = lambda v: np.clip(np.round(v * 255), 0, 255)[..., None]  # noqa: E731
        return calculate_psnr(as_pixels(y), as_pixels(gt), scale, test_y_channel=True)

    print(f"{args.set}, PSNR-Y of the best per-LR-pixel mix (border = scale)")
    print(f"{'scale':>5} {'bicubic':>8} " + " ".join(f"{kind + ' ' + s:>12}" for s in LETTER_SETS
                                                       for kind in ("convex", "signed")))
    for scale in args.scales:
        scores: dict[str, list[float]] = {}
        for pair in find_pairs(args.data / "benchmark", args.set, scale):
            lr = y_plane(pair.lr)
            h, w = lr.shape
            gt = y_plane(pair.hr)[: h * scale, : w * scale]
            resized = {c: imresize(lr, scale, kernel=k) for c, k in INTERPOLATIONS.items()}
            scores.setdefault("bicubic", []).append(psnr(resized["C"], gt, scale))
            target = blocks(gt, scale)
            for letters in LETTER_SETS:
                candidates = blocks(np.stack([resized[c] for c in letters]), scale)
                for kind, solve in (("convex", best_convex), ("signed", best_signed)):
                    mixed = unblocks(solve(candidates, target), h, w, scale)
                    scores.setdefault(f"{kind} {letters}", []).append(psnr(mixed, gt, scale))
        means = {k: float(np.mean(v)) for k, v in scores.items()}
        print(f"{'x' + str(scale):>5} {means['bicubic']:8.2f} " + " ".join(
            f"{means[kind + ' ' + s]:12.2f}" for s in LETTER_SETS for kind in ("convex", "signed")))


if __name__ == "__main__":
    main()
