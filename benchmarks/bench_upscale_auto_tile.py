"""``hatast upscale`` of a large photograph with a large network and no ``--tile``: the tile size comes from the
free memory (:func:`hatast.utils.tiling.auto_tile_size`).

Case: HAT-S x4 (the authors' configuration, :data:`hatast.archs.hat_arch.HAT_VARIANTS`; seeded random weights, since
speed and memory do not depend on the values) on scikit-image's astronaut resized to ``--size`` (default 2000x2000,
an 8000x8000 output). The command runs in a fresh process, as a user runs it. Printed: the tile size it chose, the
number of tiles, the free memory it saw, its estimate of what the whole image would need, the process's peak
resident set (``ru_maxrss``), the wall time, and the exit status.

Usage: ``python benchmarks/bench_upscale_auto_tile.py [--size 2000] [--threads 2] [--variant HAT-S]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_inputs(folder: Path, size: int, variant: str) -> tuple[Path, Path]:
    import cv2
    import skimage.data
    import torch

    import hatast  # noqa: F401  (BasicSR's torchvision shim before any basicsr import)
    from hatast.archs.hat_arch import HAT, HAT_VARIANTS

    photo = folder / "astronaut.png"
    cv2.imwrite(str(photo), cv2.resize(skimage.data.astronaut()[..., ::-1], (size, size),
                                       interpolation=cv2.INTER_CUBIC))
    torch.manual_seed(0)
    weights = folder / f"{variant}_SRx4.pth"
    torch.save({"params_ema": HAT(**{**HAT_VARIANTS[variant], "upscale": 4}).state_dict()}, weights)
    return photo, weights


def estimate(weights: Path, photo: Path) -> str:
    """What auto_tile_size saw: free memory, bytes per pixel from its probe, the whole image's estimated need."""
    import torch

    from hatast.inference import Upscaler
    from hatast.utils import tiling
    from hatast.utils.image import read_image

    upscaler = Upscaler.load(str(weights), None, "cpu")
    lq = read_image(photo).tensor()
    side = tiling.PROBE_SIZE
    with torch.inference_mode():
        peak = tiling.peak_memory(upscaler.model, lq[..., :side, :side])
    free = tiling.free_memory("cpu")
    per_pixel = peak / side**2
    whole = per_pixel * lq.shape[-2] * lq.shape[-1]
    return (f"free memory {free / 2**30:.1f} GiB; probe {side}x{side}: {peak / 2**20:.0f} MiB "
            f"({per_pixel / 1024:.1f} KiB per input pixel); whole image estimated at {whole / 2**30:.1f} GiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variant", default="HAT-S")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo, weights = make_inputs(tmp, args.size, args.variant)
        print(f"{args.variant} x4, {args.size}x{args.size} RGB -> {4 * args.size}x{4 * args.size}, "
              f"{args.threads} threads, no --tile", flush=True)
        print(estimate(weights, photo), flush=True)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        cmd = [sys.executable, "-m", "hatast.cli.main", "upscale", str(photo), "--model", str(weights), "-o",
               str(tmp / "out"), "--no-progress"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
        print(proc.stdout.strip())
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
        print(f"exit {proc.returncode}; wall {seconds / 60:.1f} min; peak resident set of the command's process "
              f"{peak:.2f} GiB")
        return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
