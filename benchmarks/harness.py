"""Shared harness of the benchmark scripts: two implementations of each case, each run in its own process,
alternating for several rounds; medians of time, and of peak memory measured in separate processes.

Peak memory is the rise of the process's resident-set high-water mark (Linux ``VmHWM``, reset before each call)
over its size before the call, with glibc's malloc made to return large blocks at once so ``VmHWM`` follows live
tensors. That malloc setting slows allocation, so the timings come from processes that run without it.

A benchmark script defines ``worker(case, path, size, threads) -> callable`` and calls :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def time_and_peak(call: Callable[[], object], runs: int) -> dict:
    """Call once to warm up (lazy initialisation, caches), then ``runs`` times, recording each call's time and
    peak memory rise."""
    call()
    times, peaks = [], []
    for _ in range(runs):
        before = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
        start = time.perf_counter()
        out = call()
        times.append((time.perf_counter() - start) * 1000)
        peaks.append((_status_kib("VmHWM") - before) / 1024)
        del out
    return {"times_ms": times, "peaks_mib": peaks}


def _measure(script: str, case: str, path: str, args, memory: bool) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if memory:
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    cmd = [sys.executable, script, "--worker", case, path, str(args.runs), str(args.size), str(args.threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {case!r}/{path} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(script: str, title: str, cases: list[str], paths: tuple[str, str],
         worker: Callable[[str, str, int, int, int], dict], no_memory: tuple[str, ...] = (),
         input_label: str | None = None) -> None:
    """Command line of a benchmark script: the comparison table, or (``--worker``) one measurement."""
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both paths per case")
    parser.add_argument("--runs", type=int, default=3, help="timed calls per round")
    parser.add_argument("--size", type=int, default=64, help="input height and width (LR pixels)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=cases, help="a subset of: " + "; ".join(cases))
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        case, path, runs, size, threads = args.worker
        sys.path.insert(0, str(REPO))
        import torch

        torch.set_num_threads(int(threads))
        torch.manual_seed(0)
        print(json.dumps(worker(case, path, int(runs), int(size), int(threads))))
        return

    a, b = paths
    label = input_label or f"{args.size}x{args.size}"
    print(f"{title}: {label} input, {args.threads} threads, {args.rounds} rounds x {args.runs} runs (median)")
    width = max(len(c) for c in args.cases) + 2
    header = (f"{'case':<{width}}{a + ' ms':>14}{b + ' ms':>12}{'speed-up':>10}{a + ' MiB':>15}{b + ' MiB':>12}"
              f"{'memory':>8}")
    print(header)
    print("-" * len(header))
    for case in args.cases:
        times = {a: [], b: []}
        for _ in range(args.rounds):
            for path in paths:
                times[path] += _measure(script, case, path, args, memory=False)["times_ms"]
        ta, tb = statistics.median(times[a]), statistics.median(times[b])
        row = f"{case:<{width}}{ta:14.1f}{tb:12.1f}{ta / tb:9.2f}x"
        if case not in no_memory:
            ma, mb = (statistics.median(_measure(script, case, p, args, memory=True)["peaks_mib"]) for p in paths)
            row += f"{ma:15.1f}{mb:12.1f}{mb / ma:7.2f}x"
        print(row, flush=True)
