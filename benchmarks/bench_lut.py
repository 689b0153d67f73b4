"""Speed of look-up-table inference: the fused CPU kernel against a plain vectorised numpy implementation.

Case: x4 with the rotation ensemble on an RGB 320x180 photograph (-> 1280x720), for the V (full 257^2 table), F and
S (4-bit, 17^3 and 17^4 rows) receptive fields. The numpy baseline is the straightforward array program (rotate,
pad, gather the corners, weight, rotate back), which is what the authors' per-pixel loop becomes once vectorised;
both produce identical pixels (checked before timing). Tables come from freshly initialised nets, so the figures do
not depend on a trained model being present. Table sizes are printed first.

Usage: ``python benchmarks/bench_lut.py [--rounds 3] [--runs 5] [--threads 2]`` (see ``hatast/eval/timing.py``).
"""

from __future__ import annotations

from hatast.eval.timing import compare, time_and_peak

CASES = ["V x4", "F x4", "S x4"]
INTERVAL = {"V": 0, "F": 4, "S": 4}
SIZE = (180, 320)  # LR height, width


def make_table(kind: str, scale: int = 4):
    """A table from a freshly initialised net, or the table file ``$HATAST_LUT_TABLE`` names (how
    ``scripts/release_srlut.py`` times the released tables with this same measurement)."""
    import os

    if os.environ.get("HATAST_LUT_TABLE"):
        from hatast.lut import load_table

        return load_table(os.environ["HATAST_LUT_TABLE"])
    import torch

    from hatast.archs.srlut_arch import SRLUTNet

    torch.manual_seed(0)
    return SRLUTNet(kind, scale).to_table(INTERVAL[kind])


def test_image():
    import cv2
    import skimage.data

    return cv2.resize(skimage.data.astronaut(), SIZE[::-1], interpolation=cv2.INTER_AREA)


def numpy_upscale(table, image):
    """Plain vectorised numpy: the four rotations done by rotating the image, all pixels at once."""
    import numpy as np

    r, interval = table.scale, table.interval
    q, count = 1 << interval, (256 >> interval) + 1
    height, width = table.field.kernel_shape
    n = table.field.size
    strides = count ** np.arange(n - 1, -1, -1)
    total = 0
    for k in range(4):
        rotated = np.rot90(image, k)
        h, w = rotated.shape[:2]
        padded = np.pad(rotated, ((0, height - 1), (0, width - 1), (0, 0)), mode="reflect").astype(np.int64)
        values = np.stack([padded[dy:dy + h, dx:dx + w] for dy, dx in table.field.offsets], -1)
        msb, lsb = values >> interval, values & (q - 1)
        order = np.argsort(-lsb, axis=-1, kind="stable")
        ordered = np.take_along_axis(lsb, order, -1)
        weights = np.concatenate([q - ordered[..., :1], ordered[..., :-1] - ordered[..., 1:], ordered[..., -1:]], -1)
        base = (msb * strides).sum(-1, keepdims=True)
        corners = np.concatenate([base, base + np.cumsum(strides[order], -1)], -1)
        patches = (weights[..., None] * table.entries[corners].astype(np.int64)).sum(-2)  # [h, w, C, r*r]
        patches = patches.reshape(h, w, -1, r, r).transpose(0, 3, 1, 4, 2).reshape(h * r, w * r, -1)
        total = total + np.rot90(patches, -k)
    return np.round(np.clip(total / q / 255.0, 0, 1) * 255).astype(np.uint8)


def worker(case: str, path: str, runs: int, size: int, threads: int) -> dict:
    import numba
    import numpy as np

    from hatast.lut import upscale

    numba.set_num_threads(threads)
    kind, scale = case.split(" x")
    table, image = make_table(kind, int(scale)), test_image()
    if path == "numpy":
        def call():
            return numpy_upscale(table, image)
    else:
        def call():
            return upscale(table, image, backend="numba")
    if not np.array_equal(numpy_upscale(table, image), upscale(table, image, backend="numba")):
        raise AssertionError(f"{case}: numpy and fused outputs differ")
    return time_and_peak(call, runs)


if __name__ == "__main__":
    import sys

    if "--worker" not in sys.argv:
        for kind in "VFS":
            t = make_table(kind)
            print(f"{kind} x4 table: {t.entries.shape[0]} rows x {t.entries.shape[1]} int8 = "
                  f"{t.nbytes / 1024:.1f} KiB (interval 2^{t.interval})")
    compare(__file__, "SR-LUT x4 inference with rotation ensemble, RGB", CASES, ("numpy", "fused"), worker,
            input_label=f"{SIZE[1]}x{SIZE[0]} -> {SIZE[1] * 4}x{SIZE[0] * 4}")
