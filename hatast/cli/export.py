"""``hatast export``: a checkpoint -> an ONNX file with dynamic batch, height and width, checked by onnxruntime.

The architecture and its hyper-parameters are read from the checkpoint (HAT, HAT+AST, USRNet). Before the file is
written, onnxruntime runs it at sizes that are not multiples of the attention window and its outputs are compared
with PyTorch's (one line per size); the file is written atomically, and never onto the weights. USRNet's scale is
fixed at export (``--scale``); its kernel (any size) and noise level stay inputs. Needs the optional packages
``onnx``, ``onnxscript`` and ``onnxruntime``.
"""

from __future__ import annotations

import sys

from ..utils.arguments import OneLineParser, bounded, image_size, non_negative_float
from ..utils.errors import command


def build_parser() -> OneLineParser:
    from ..export import DEFAULT_CHECK_SIZES, DEFAULT_OPSET, DEFAULT_TOLERANCE

    parser = OneLineParser(prog="hatast export", description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a released model's name (hatast models) or a checkpoint (.pth, .safetensors) "
                                        "of a HAT, HAT+AST or USRNet network")
    parser.add_argument("--weights-dir", default=None,
                        help="folder of released files not shipped in the wheel (default: $HATAST_WEIGHTS)")
    parser.add_argument("-o", "--output", required=True, help="the ONNX file to write (e.g. model.onnx)")
    parser.add_argument("--opset", type=bounded(int, 1, 99), default=DEFAULT_OPSET,
                        help="ONNX opset (default: %(default)s, the exporter's own; newer ones are converted from "
                             "it where the exporter can: up to 24 with PyTorch 2.14)")
    parser.add_argument("--param-key", default=None,
                        help="checkpoint entry to use (default: params_ema, then params, then a bare state dict)")
    parser.add_argument("--scale", type=bounded(int, 1, 16), default=None,
                        help="USRNet: the scale (1-4) the graph is fixed to; its kernel and noise stay inputs")
    sizes = " ".join(f"{w}x{h}" for h, w in DEFAULT_CHECK_SIZES)
    parser.add_argument("--check-sizes", type=image_size, nargs="+", default=list(DEFAULT_CHECK_SIZES),
                        metavar="WxH",
                        help=f"input sizes WIDTHxHEIGHT (as --size in hatast upscale) at which onnxruntime is "
                             f"compared with PyTorch (default: {sizes}; the last one with a batch of two)")
    parser.add_argument("--overwrite", action="store_true", help="replace the ONNX file if it exists")
    parser.add_argument("--tolerance", type=non_negative_float, default=DEFAULT_TOLERANCE,
                        help="largest absolute difference from PyTorch that passes (default: %(default)g)")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..export import ExportError, check_opset, export_onnx, export_scale, require_onnx
    from ..inference import is_table, load_network
    from ..release import resolve
    from ..utils.files import remove_stale_temporaries
    from ..utils.paths import OutputFolder, shown

    weights, _ = resolve(args.weights, args.weights_dir)
    outputs, output = OutputFolder.for_file(args.output, "-o", inputs=[weights], overwrite=args.overwrite)
    if is_table(str(weights)):
        raise ExportError(f"{weights} is a look-up table file: tables are not exported to ONNX; run the table "
                          f"directly (hatast upscale IMAGE... --model {weights})")
    check_opset(args.opset)
    require_onnx()
    model, entry = load_network(str(weights), args.param_key, "cpu")
    scale = export_scale(model, args.scale)
    outputs.check_writable()
    print(f"{model.name} x{scale} from {weights} [{entry}] -> {shown(output)} (opset {args.opset})", flush=True)
    remove_stale_temporaries(output.parent, [output.name])
    report = export_onnx(model, output, args.opset, scale, args.check_sizes, args.tolerance)
    for check in report.checks:
        batch = f", batch {check.batch}" if check.batch > 1 else ""
        print(f"onnxruntime vs PyTorch at {check.width}x{check.height} (WxH){batch}: max |diff| "
              f"{check.max_abs_diff:.2g}")
    print(f"wrote {shown(report.path)} ({report.size_bytes / 1e6:.1f} MB, opset {report.opset})"
          + (" replacing the earlier file (--overwrite)" if outputs.replaced else "")
          + f": {'; '.join(report.inputs)} -> {report.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
