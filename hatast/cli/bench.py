"""``hatast bench``: PSNR/SSIM, size and speed of a checkpoint or table on the SR benchmark sets, next to the
bicubic baseline and the published figures the package knows.

    hatast bench -w hatast/weights/srlut/SRLUT-S_SRx4.npz --data ../shared/data/benchmark --sets Set5 Set14 --scale 4

Writes ``<out>/<method>/<set>_x<s>.csv`` (one row per image: PSNR, SSIM, milliseconds, LR size) and
``<out>/summary.md``, and prints the table. A rerun with the same ``-o`` computes only the images the CSV files lack.
Sets are looked for as ``<data>/<set>/HR`` and ``<data>/<set>/LR_bicubic/X<s>`` (``hatast prepare benchmark`` makes
them); a missing set, or one whose LR images are not the size that goes with their HR images at the scale, is
reported on one line and skipped (exit status 1; 2 when no set is usable).

USRNet's Table 1 (blur kernels x scales x noise levels, LR made from HR by :mod:`hatast.eval.kernel_protocol`):

    hatast bench --protocol usrnet_table1 -w usrnet_tiny.pth --kernels kernels_12.mat --sets Set5 Set14 \
        --scale 2 3 4 --noise 0 2.55 7.65
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..eval.sets import BENCHMARK_SETS, BenchmarkError, find_pairs, scale_tag
from ..utils.arguments import OneLineParser, benchmark_scale, bounded, resolve_device
from ..utils.errors import command
from ..utils.files import write_bytes_atomic
from ..utils.paths import OutputFolder, shown


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="hatast bench", description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--weights", action="append", default=[],
                        help="checkpoint (.pth, .safetensors) or table (.npz, .npy); repeat to compare several")
    parser.add_argument("--data", default=os.environ.get("HATAST_DATA", "datasets"),
                        help="folder holding the sets (default: $HATAST_DATA, else ./datasets)")
    parser.add_argument("--sets", nargs="+", default=list(BENCHMARK_SETS), help="default: all five")
    parser.add_argument("--scale", type=benchmark_scale, nargs="+", default=None,
                        help="SR factor: 4, 2.5, or 1.5_2 (rows_cols); usrnet_table1: any of 2 3 4 (default all)")
    parser.add_argument("--baselines", nargs="*", default=["bicubic"],
                        help="interpolation rows (bicubic always; also lanczos2, lanczos3, bilinear, nearest)")
    parser.add_argument("--protocol", choices=["y", "rgb", "usrnet_table1"], default="y",
                        help="y: PSNR/SSIM on Y, border = scale (SR benchmarks); rgb: RGB, border = scale^2; "
                             "usrnet_table1: USRNet's kernel x scale x noise table (LR made from HR)")
    parser.add_argument("--kernels", default=os.environ.get("HATAST_KERNELS"),
                        help="usrnet_table1: the kernel bank (.mat cell array; default $HATAST_KERNELS)")
    parser.add_argument("--noise", type=bounded(float, 0, 255), nargs="+", default=None,
                        help="usrnet_table1: noise levels on the 0-255 scale, 0 to 255 (default 0 2.55 7.65)")
    parser.add_argument("--self-ensemble", action="store_true", help="networks: x8 flips/rotations averaged")
    parser.add_argument("--tile", type=bounded(int, 0, 65535), default=0,
                        help="networks: tile size (default: whole images, tiles of 256 then 128 when out of memory)")
    parser.add_argument("--threads", type=bounded(int, 0, 1024), default=0,
                        help="CPU threads for torch and the table kernel (default: all cores)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps, or auto")
    parser.add_argument("-o", "--output", default=None, help="results folder (default: results/bench/x<scale>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _set_threads(threads: int) -> int:
    count = threads or os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(count))
    try:
        import numba

        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    import torch

    torch.set_num_threads(count)
    return count


def _find_sets(names: list[str], find) -> tuple[dict, list[str]]:
    """``{name: find(name)}`` for the usable sets; each missing or unusable one (LR of the wrong size) reported on
    one ``skipped:`` line, or, when no set is usable (nothing runs), on one ``error:`` line."""
    found, missing = {}, []
    for name in names:
        try:
            found[name] = find(name)
        except BenchmarkError as err:
            missing.append(str(err))
    for line in missing:
        print(f"{'skipped' if found else 'error'}: {line}", file=sys.stderr)
    return found, missing


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.protocol == "usrnet_table1":
        return _table1(args, parser)
    if args.scale is None or len(args.scale) != 1:
        parser.error("--scale: give one scale (several only with --protocol usrnet_table1)")
    args.scale = args.scale[0]
    from ..eval.runner import baseline_method, distinct_labels, evaluate, markdown_table, weights_method

    found, missing = _find_sets(args.sets, lambda name: find_pairs(args.data, name, args.scale))
    if not found:
        return 2
    args.weights = list({str(Path(w).resolve()): w for w in args.weights}.values())  # each file once
    inputs = [*args.weights, *(p for pairs in found.values() for pair in pairs for p in (pair.hr, pair.lr))]
    outputs = OutputFolder(args.output or f"results/bench/x{scale_tag(args.scale)}", "-o", inputs=inputs)
    summary = outputs.path("summary.md", what="summary", source="summary")
    threads = _set_threads(args.threads)
    device = resolve_device(args.device)
    methods = [baseline_method(kind, args.scale) for kind in dict.fromkeys(["bicubic", *args.baselines])]
    for weights in args.weights:
        methods.append(weights_method(weights, device, args.tile, self_ensemble=args.self_ensemble, scale=args.scale))
    loaded = methods[len(methods) - len(args.weights):]
    names = [m.name for m in methods]
    for method, label in zip(loaded, distinct_labels(args.weights)):
        if names.count(method.name) > 1:  # files of one kind: their rows (and results folders) need the file
            method.name = f"{method.name} ({label})"
    outputs.check_writable()
    print(f"hatast bench x{scale_tag(args.scale)} on {', '.join(f'{n} ({len(p)})' for n, p in found.items())}; "
          f"{threads} threads on {device}; results in {shown(outputs.root)}", flush=True)
    warmed: set[str] = set()
    results = []
    for method in methods:
        results.append((method, [evaluate(method, name, pairs, args.scale, outputs, args.protocol,
                                          progress=not args.no_progress, warmed=warmed)
                                 for name, pairs in found.items()]))
    table = markdown_table(results, args.scale, threads)
    write_bytes_atomic(summary, table.encode())
    print(table)
    return 1 if missing else 0


def _table1(args, parser) -> int:
    from ..data.degradations import benchmark_kernels
    from ..eval import kernel_protocol as table1
    from ..eval.runner import distinct_labels

    scales = args.scale or list(table1.SCALES)
    if any(s != int(s) or s < 1 for s in scales):
        parser.error("--scale: usrnet_table1 takes integer scales")
    noises = args.noise if args.noise is not None else list(table1.NOISE_LEVELS)
    if not args.kernels:
        parser.error("--kernels: give the kernel bank (e.g. kernels_12.mat) or set HATAST_KERNELS")
    sets, missing = _find_sets(args.sets, lambda name: table1.hr_images(args.data, name))
    if not sets:
        return 2
    threads = _set_threads(args.threads)
    inputs = [*args.weights, args.kernels, *(p for images in sets.values() for p in images)]
    outputs = OutputFolder(args.output or "results/bench/usrnet_table1", "-o", inputs=inputs)
    summary = outputs.path("summary.md", what="summary", source="summary")
    n_kernels = len(benchmark_kernels(args.kernels))
    device = resolve_device(args.device)
    methods = [table1.bicubic_method()] + [table1.network_method(w, device) for w in args.weights]
    names = [m.name for m in methods]
    for method, label in zip(methods[1:], distinct_labels(args.weights)):
        if names.count(method.name) > 1:
            method.name = f"{method.name} ({label})"
    outputs.check_writable()
    print(f"hatast bench usrnet_table1: {n_kernels} kernels from {args.kernels}; scales "
          f"{', '.join(str(int(s)) for s in scales)}; noise {', '.join(f'{n:g}' for n in noises)}; "
          f"{', '.join(f'{n} ({len(p)})' for n, p in sets.items())}; {threads} threads on {device}; results in "
          f"{shown(outputs.root)}", flush=True)
    results = table1.run_protocol(methods, sets, args.kernels, [int(s) for s in scales], noises, outputs,
                                  progress=not args.no_progress)
    table = table1.markdown(results, methods, n_kernels)
    write_bytes_atomic(summary, table.encode())
    print(table)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
