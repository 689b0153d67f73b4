"""Peak memory of ``hatast upscale`` with a look-up table on a large photograph, this checkout against another
revision (``--baseline REV``, checked out in a temporary git worktree), in the same run.

Case: the released S x4 table (``hatast/weights/srlut/SRLUT-S_SRx4.npz``) on an RGB photograph resized to ``--size``
(default 2000x2000, giving an 8000x8000 output of 183 MiB as 8-bit RGB). Each run is a fresh process that imports
the command's module, then calls its ``main`` with the usual arguments. Two figures per run:

* peak: the process's whole peak resident set (``ru_maxrss`` from ``wait4``), which includes what the imports map
  (numpy, OpenCV and numba for the table path since it stopped importing PyTorch; before that PyTorch's CUDA
  build, torchvision and BasicSR too, 0.8-1.1 GiB whatever the image);
* command: the rise of the resident high-water mark (``VmHWM``, reset just before the call) over the resident size
  before the call: what the command itself holds (table, kernels, image, result, encoding). The same call on an
  8x8 image gives the part that does not depend on the image.

A warm-up run of each version fills numba's on-disk cache first, so compilation is not counted.

Usage: ``python benchmarks/bench_upscale_memory.py --baseline <rev> [--size 2000] [--rounds 3] [--threads 2]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hatast.eval.timing import status_kib

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "hatast" / "weights" / "srlut" / "SRLUT-S_SRx4.npz"


def make_photo(path: Path, size: int) -> None:
    import cv2
    import skimage.data

    photo = cv2.resize(skimage.data.astronaut()[..., ::-1], (size, size), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), photo)


def worker(image: str, out: str) -> None:
    """In the measured process: import the command, reset the high-water mark, run it, report the rise."""
    from hatast.cli.upscale import main as upscale

    before = status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
    code = upscale([image, "-w", str(TABLE), "-o", out, "--overwrite"])  # every round computes and writes
    print(f"{code} {(status_kib('VmHWM') - before) / 1024:.1f}")


def run(checkout: Path, image: Path, out: Path, threads: int) -> tuple[float, float, float]:
    """Peak resident MiB, the command's rise in MiB and seconds of one process running ``checkout``'s code."""
    env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(image), str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    report = proc.stdout.read().decode().split()
    if proc.returncode != 0 or report[-2:-1] != ["0"]:
        raise RuntimeError(f"{checkout}: upscale failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, float(report[-1]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git revision to compare with (e.g. the commit before a fix)")
    parser.add_argument("--size", type=int, default=2000, help="input height and width (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        large, tiny = tmp / "photo.png", tmp / "tiny.png"
        make_photo(large, args.size)
        make_photo(tiny, 8)
        versions = {"this checkout": REPO}
        if args.baseline:
            worktree = tmp / "baseline"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.baseline],
                           check=True, capture_output=True)
            versions = {f"baseline {args.baseline}": worktree, **versions}
        try:
            for checkout in versions.values():  # warm-up: numba compiles into this checkout's cache
                run(checkout, tiny, tmp / "warm", args.threads)
            results = {name: {"peak": [], "command": [], "tiny": [], "seconds": []} for name in versions}
            for _ in range(args.rounds):
                for name, checkout in versions.items():
                    peak, rise, seconds = run(checkout, large, tmp / "out", args.threads)
                    for key, value in (("peak", peak), ("command", rise), ("seconds", seconds)):
                        results[name][key].append(value)
                    results[name]["tiny"].append(run(checkout, tiny, tmp / "out_tiny", args.threads)[1])
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / "baseline")],
                               capture_output=True)
    output_mib = (args.size * 4) ** 2 * 3 / 2**20
    print(f"hatast upscale, S x4 table, {args.size}x{args.size} RGB -> {args.size * 4}x{args.size * 4} "
          f"({output_mib:.0f} MiB as 8-bit RGB), {args.threads} threads, median of {args.rounds} runs")
    print(f"{'version':<22}{'peak MiB':>10}{'command MiB':>13}{'x output':>10}{'8x8 image MiB':>15}{'seconds':>9}")
    for name, values in results.items():
        med = {key: statistics.median(v) for key, v in values.items()}
        print(f"{name:<22}{med['peak']:10.0f}{med['command']:13.0f}{med['command'] / output_mib:10.2f}"
              f"{med['tiny']:15.0f}{med['seconds']:9.1f}")


if __name__ == "__main__":
    main()
