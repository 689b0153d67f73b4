"""The one timer: every speed and memory figure hatast prints (benchmark scripts, ``hatast bench``, model cards)
comes from :func:`time_and_peak`, and comparisons of two implementations from :func:`compare`, which runs each case
in its own process, alternating for several rounds, with a fixed thread count; medians of time, and of peak memory
measured in separate processes.

Peak memory is the rise of the process's resident-set high-water mark (Linux ``VmHWM``, reset before each call)
over its size before the call, with glibc's malloc made to return large blocks at once so ``VmHWM`` follows live
tensors. That malloc setting slows allocation, so the timings come from processes that run without it.

A benchmark script defines ``worker(case, path, runs, size, threads) -> dict`` and calls :func:`compare`.
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


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def timed(call: Callable[[], object]) -> tuple[object, float]:
    """``call()``'s result and its wall time in milliseconds (``time.perf_counter``)."""
    start = time.perf_counter()
    out = call()
    return out, (time.perf_counter() - start) * 1000


def time_and_peak(call: Callable[[], object], runs: int, warmup: bool = True) -> dict:
    """Call once to warm up (lazy initialisation, caches; ``warmup=False`` skips it for calls that take minutes,
    where the one-off set-up is a small share), then ``runs`` times, recording each call's time and peak memory
    rise."""
    if warmup:
        call()
    times, peaks = [], []
    for _ in range(runs):
        before = status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
        out, ms = timed(call)
        times.append(ms)
        peaks.append((status_kib("VmHWM") - before) / 1024)
        del out
    return {"times_ms": times, "peaks_mib": peaks}


def measure(script: str | Path, case: str, path: str, runs: int, size: int, threads: int, memory: bool = False,
            env: dict[str, str] | None = None) -> dict:
    """One measurement in a fresh process: ``script --worker case path runs size threads`` (a script built on
    :func:`compare`) with ``threads`` threads; ``{"times_ms": [...], "peaks_mib": [...]}``. ``memory`` makes glibc
    return large blocks at once so ``VmHWM`` follows live arrays (it slows allocation: time without it)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), **(env or {}))
    if memory:
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    cmd = [sys.executable, str(script), "--worker", case, path, str(runs), str(size), str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {case!r}/{path} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_ms(script: str | Path, case: str, path: str, rounds: int = 3, runs: int = 3, size: int = 64,
              threads: int = 2, env: dict[str, str] | None = None) -> float:
    """Median time of ``rounds`` x ``runs`` calls, each round in its own process (what :func:`compare` prints)."""
    return statistics.median(t for _ in range(rounds)
                             for t in measure(script, case, path, runs, size, threads, env=env)["times_ms"])


def compare(script: str, title: str, cases: list[str], paths: tuple[str, str],
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
                times[path] += measure(script, case, path, args.runs, args.size, args.threads)["times_ms"]
        ta, tb = statistics.median(times[a]), statistics.median(times[b])
        row = f"{case:<{width}}{ta:14.1f}{tb:12.1f}{ta / tb:9.2f}x"
        if case not in no_memory:
            ma, mb = (statistics.median(measure(script, case, p, args.runs, args.size, args.threads,
                                                memory=True)["peaks_mib"]) for p in paths)
            row += f"{ma:15.1f}{mb:12.1f}{mb / ma:7.2f}x"
        print(row, flush=True)
