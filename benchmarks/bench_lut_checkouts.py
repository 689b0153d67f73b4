"""The fused SR-LUT kernel of another checkout of hatast against this one: did a change to the LUT core slow it?

Each case runs ``benchmarks/bench_lut.py``'s fused measurement (x4, rotation ensemble, RGB 320x180 -> 1280x720) in a
fresh process per round, alternating the two checkouts (``PYTHONPATH`` selects which ``hatast`` is imported), and
prints the medians side by side with their ratio. Both checkouts need their numba caches warm (run each once).

Usage: ``python benchmarks/bench_lut_checkouts.py OTHER_CHECKOUT [--rounds 9] [--runs 5] [--cases "S x4" ...]``
(e.g. ``git worktree add /tmp/base <commit>`` for the other one).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from hatast.eval.timing import measure

HERE = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="another checkout of hatast (its repository root)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=["V x4", "F x4", "S x4"])
    args = parser.parse_args()
    trees = {"other": args.other.resolve(), "this": HERE}
    print(f"fused SR-LUT kernel, {args.threads} threads, {args.rounds} rounds x {args.runs} runs (median ms); other = "
          f"{trees['other']}")
    for case in args.cases:
        times = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                times[name] += measure(tree / "benchmarks" / "bench_lut.py", case, "fused", args.runs, 0, args.threads,
                                       env={"PYTHONPATH": str(tree)})["times_ms"]
        other, this = statistics.median(times["other"]), statistics.median(times["this"])
        print(f"{case}: other {other:.1f} ms, this {this:.1f} ms, this/other {this / other:.3f}", flush=True)


if __name__ == "__main__":
    main()
