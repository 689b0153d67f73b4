"""Speed of IM-LUT table inference on this CPU, beside bicubic (OpenCV) and SR-LUT S in the same run.

Cases: RGB 320x180 -> 1280x720 (x4) and 1280x720 -> 1920x1080 (x1.5) of a photograph. Methods: ``bicubic``
(``cv2.resize`` INTER_CUBIC), ``SR-LUT S`` (the fused SR-LUT kernel, x4 only), ``IM-LUT NL/NLC/NLCZ`` (the fused CPU
path: weight table, scale table, mixing, refiner table; :func:`hatast.lut.imlut.upscale`). Tables come from freshly
initialised nets with the CPU recipe's settings (``scripts/make_imlut_options.py``), so the figures do not depend on
a trained model; ``$HATAST_IMLUT_TABLES`` (a folder holding ``IMLUT-<V>.npz``) times released tables instead. Each
method runs in its own process, methods alternate for several rounds, and medians are printed with the thread
count (``hatast/eval/timing.py``). ``--stages`` adds NLC's three stages timed alone (weight and scale tables, mixing,
refiner; :mod:`hatast.lut.imlut`), each on the previous stage's output.

Usage: ``python benchmarks/bench_imlut.py [--rounds 3] [--runs 5] [--threads 2] [--stages]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from hatast.eval.timing import measure, time_and_peak

CASES = {"x4": ((180, 320), 4.0), "x1.5": ((720, 1280), 1.5)}
METHODS = ("bicubic", "SR-LUT S", "IM-LUT NL", "IM-LUT NLC", "IM-LUT NLCZ")
STAGES = ("NLC weight", "NLC mixing", "NLC refiner")


def tables(variant: str):
    import os

    from hatast.lut.table import load_file

    folder = os.environ.get("HATAST_IMLUT_TABLES")
    if folder:
        return load_file(Path(folder) / f"IMLUT-{variant}.npz")
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_imlut_options import NETWORK

    from hatast.archs.imlut_arch import IMNet

    torch.manual_seed(0)
    return IMNet(variant, **NETWORK).to_tables(4)


def photograph(size: tuple[int, int]):
    import cv2
    import skimage.data

    return cv2.resize(skimage.data.astronaut(), size[::-1], interpolation=cv2.INTER_AREA)


def worker(case: str, method: str, runs: int, threads: int) -> dict:
    import numba

    numba.set_num_threads(threads)
    size, scale = CASES[case]
    image = photograph(size)
    out_size = (round(size[0] * scale), round(size[1] * scale))
    if method == "bicubic":
        import cv2

        cv2.setNumThreads(threads)
        return time_and_peak(lambda: cv2.resize(image, out_size[::-1], interpolation=cv2.INTER_CUBIC), runs)
    if method == "SR-LUT S":
        import torch

        from hatast.archs.srlut_arch import SRLUTNet
        from hatast.lut import upscale

        torch.manual_seed(0)
        table = SRLUTNet("S", int(scale)).to_table(4)
        return time_and_peak(lambda: upscale(table, image, backend="numba"), runs)
    from hatast.lut import imlut

    if method in STAGES:
        return time_stage(method, image, scale, runs)
    model = tables(method.split()[-1])
    return time_and_peak(lambda: imlut.upscale(model, image, scale), runs)


def time_stage(method: str, image, scale: float, runs: int) -> dict:
    """One stage of :func:`hatast.lut.imlut.upscale`, on the previous stages' output."""
    import numpy as np

    from hatast.lut import imlut

    model = tables(method.split()[0])
    planes = np.ascontiguousarray(image.transpose(2, 0, 1))
    size, factors = imlut.output_geometry(*planes.shape[1:], scale)
    maps = imlut.weight_maps(model, planes, factors)
    mixed, pixels = imlut.mix(model, planes, maps, size, factors)
    call = {
        "weight": lambda: imlut.weight_maps(model, planes, factors),
        "mixing": lambda: imlut.mix(model, planes, maps, size, factors),
        "refiner": lambda: imlut.refine(model, mixed, pixels),
    }[method.split()[-1]]
    return time_and_peak(call, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stages", action="store_true", help="also time NLC's three stages alone")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, method, runs, _, threads = args.worker
        print(json.dumps(worker(case, method, int(runs), int(threads))))
        return
    print(f"IM-LUT table inference, RGB, {args.threads} threads, {args.rounds} rounds x {args.runs} runs (median ms)")
    header = f"{'method':<14}" + "".join(f"{f'{c} ({s[0][1]}x{s[0][0]})':>22}" for c, s in CASES.items())
    print(header)
    print("-" * len(header))
    methods = METHODS + (STAGES if args.stages else ())
    runs = [(m, c) for m in methods for c, (_, s) in CASES.items() if not (m == "SR-LUT S" and s != int(s))]
    times: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    for _ in range(args.rounds):  # every method once per round, so a slow spell of the machine hits all of them
        for method, case in runs:
            times[method, case] += measure(__file__, case, method, args.runs, 0, args.threads)["times_ms"]
    for method in methods:
        row = f"{method:<14}"
        for case in CASES:
            row += f"{statistics.median(times[method, case]):22.1f}" if (method, case) in times else f"{'-':>22}"
        print(row)


if __name__ == "__main__":
    main()
