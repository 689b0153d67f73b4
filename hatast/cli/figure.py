"""``hatast figure``: side-by-side crops of one benchmark image (HR | bicubic | each weights file), with the crop's
PSNR (Y) under each panel.

    hatast figure --data ../shared/data/benchmark --set Set14 --image barbara --scale 4 --box 200 300 96 96 \\
        -w hatast/weights/srlut/SRLUT-V_SRx4.npz -w hatast/weights/srlut/SRLUT-S_SRx4.npz -o docs/figures/srlut_x4.png
"""

from __future__ import annotations

import os
import sys

from ..eval.sets import BenchmarkError, find_pairs
from ..utils.arguments import CropBox, OneLineParser, benchmark_scale, bounded
from ..utils.errors import UsageError, command


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="hatast figure", description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--weights", action="append", default=[], help="checkpoint or table; repeat")
    parser.add_argument("--label", action="append", default=[], help="panel label of each -w, in order")
    parser.add_argument("--data", default=os.environ.get("HATAST_DATA", "datasets"))
    parser.add_argument("--set", required=True, help="benchmark set, e.g. Set14")
    parser.add_argument("--image", required=True, help="image name, e.g. barbara")
    parser.add_argument("--scale", type=benchmark_scale, required=True, help="SR factor: 4, 2.5, or 1.5_2 (rows_cols)")
    parser.add_argument("--box", type=bounded(int, 0, 65535), nargs=4, required=True, action=CropBox,
                        metavar=("TOP", "LEFT", "H", "W"), help="crop in HR pixels (inside the image; H, W >= 1)")
    parser.add_argument("--zoom", type=bounded(int, 1, 16), default=2, help="pixel repetition, 1 to 16 (default: 2)")
    parser.add_argument("--baselines", nargs="*", default=["bicubic"])
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace the file if it exists")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..eval.figure import side_by_side
    from ..eval.runner import baseline_method, weights_method
    from ..utils.image import imwrite_atomic, read_image
    from ..utils.paths import OutputFolder, shown

    if args.label and len(args.label) != len(args.weights):
        raise UsageError(f"{len(args.label)} --label for {len(args.weights)} -w; give one per weights file")
    pair = next((p for p in find_pairs(args.data, args.set, args.scale) if p.name == args.image), None)
    if pair is None:
        raise BenchmarkError(f"{args.set} has no image {args.image!r}")
    outputs, output = OutputFolder.for_file(args.output, "-o", inputs=[pair.hr, pair.lr, *args.weights],
                                            overwrite=args.overwrite)
    models = [weights_method(w, "cpu") for w in args.weights]
    for method, label in zip(models, args.label):
        method.name = label
    methods = [baseline_method(kind, args.scale) for kind in args.baselines] + models
    lr, hr = read_image(pair.lr), read_image(pair.hr)
    panels = [(method.name, method.run(lr)) for method in methods]
    figure = side_by_side(hr.bgr, panels, tuple(args.box), args.zoom)
    outputs.check_writable()
    imwrite_atomic(figure, output)
    print(f"wrote {shown(output)}" + (" replacing the earlier file (--overwrite)" if outputs.replaced else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
