"""``hatast prepare``: benchmark sets and training data from folders of HR images.

    hatast prepare benchmark BSD100/HR -o datasets/BSD100 --scales 2 3 4
    hatast prepare train DIV2K_train_HR Flickr2K_HR -o datasets/DF2K --name DF2K --scales 2 3 4 --lmdb

``benchmark`` writes ``<out>/HR/<name>.png`` and ``<out>/LR_bicubic/X<s>/<name>x<s>.png``: MATLAB
``imresize(HR, 1/s, 'bicubic')`` on the 8-bit image after cropping HR to a multiple of ``s`` (for ``s = p/q``, a
multiple of ``p``); LR size ``ceil(size / s)``. On Set5 and Set14 the result equals the standard files in every value.
``train`` cuts ``--crop`` pixel sub-images every ``--step`` pixels (and one flush with the far edge when more than
``--min-rest`` would be left out) from each HR image and the matching LR crops from its whole-image downsampling;
``--lmdb`` also packs each folder into ``<folder>.lmdb`` for ``io_backend: {type: lmdb}``. Both resume after a kill
and never write onto their inputs.
"""

from __future__ import annotations

import sys

from ..eval.sets import scale_tag
from ..utils.arguments import OneLineParser, benchmark_scale, bounded
from ..utils.errors import command


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="hatast prepare", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True, parser_class=OneLineParser)
    bench = sub.add_parser("benchmark", help="HR folder -> benchmark set (HR + LR_bicubic/X<s>)")
    bench.add_argument("hr", help="folder of HR images")
    bench.add_argument("-o", "--output", required=True, help="the set's folder, e.g. datasets/BSD100")
    bench.add_argument("--scales", nargs="+", type=benchmark_scale, default=[2, 3, 4],
                       help="SR factors: 2 3 4 (default), also 1.5, 2.5, or 1.5_2 (rows_cols)")
    train = sub.add_parser("train", help="HR folders -> sub-images (+ LMDB) for training")
    train.add_argument("hr", nargs="+", help="folders of HR images")
    train.add_argument("-o", "--output", required=True, help="output folder, e.g. datasets/DF2K")
    train.add_argument("--name", default="DF2K", help="folder prefix: <name>_HR_sub, <name>_bicx<s>_sub")
    train.add_argument("--scales", nargs="+", type=bounded(int, 1, 8), default=[2, 3, 4],
                       help="integer SR factors, 1 to 8 (default: 2 3 4)")
    train.add_argument("--crop", type=bounded(int, 1, 65535), default=480, help="HR sub-image size (default: 480)")
    train.add_argument("--step", type=bounded(int, 1, 65535), default=240, help="stride (default: 240)")
    train.add_argument("--min-rest", type=bounded(int, 0, 65535), default=24,
                       help="edge left out below which no extra crop is cut (default: 24)")
    train.add_argument("--lmdb", action="store_true", help="also pack every folder into <folder>.lmdb")
    for p in (bench, train):
        p.add_argument("--overwrite", action="store_true", help="recompute files that exist")
        p.add_argument("--no-progress", action="store_true")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..data.prepare import prepare_benchmark, prepare_training, write_lmdb

    progress = not args.no_progress
    if args.what == "benchmark":
        report = prepare_benchmark(args.hr, args.output, args.scales, args.overwrite, progress)
        print(f"{args.output}: {report.written} file(s) written"
              + (f" ({report.replaced} replacing earlier ones: --overwrite)" if report.replaced else "")
              + f", {report.skipped} already there (x{', x'.join(scale_tag(s) for s in args.scales)})")
        return 0
    report = prepare_training(args.hr, args.output, args.name, args.scales, args.crop, args.step,
                              args.min_rest, args.overwrite, progress)
    print(f"{args.output}: {report.written} sub-image(s) written, {report.skipped} image(s) already done")
    if args.lmdb:
        from pathlib import Path

        folders = [f"{args.name}_HR_sub"] + [f"{args.name}_bicx{s}_sub" for s in args.scales]
        for folder in folders:
            print(f"wrote {write_lmdb(Path(args.output) / folder, progress=progress, overwrite=args.overwrite)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
