"""``hatast upscale``: super-resolve image files with a released model or any weights file hatast reads.

The command line of :func:`hatast.upscaling.upscale` (``hatast.upscale`` in Python); its docstring says what is
guaranteed (inputs never written, no two inputs on one output, atomic writes, bad images skipped with exit status 1).
"""

from __future__ import annotations

import sys
import warnings

from ..release import DEFAULT_MODEL
from ..upscaling import OUTPUT_FORMATS, upscale
from ..utils.arguments import OneLineParser, bounded, image_size, scale_factor
from ..utils.errors import command


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="hatast upscale", description=__doc__.splitlines()[0],
        epilog="Inputs are read as displayed (EXIF orientation applied); outputs are never written onto an input, "
               "outputs that exist are kept unless --overwrite; pic.png and pic.jpg in one run become pic_png.png "
               "and pic_jpg.png. 'hatast models' lists the released models.")
    parser.add_argument("inputs", nargs="+", help="image files, folders of images, or glob patterns ('photos/*.jpg')")
    parser.add_argument("-m", "--model", "-w", "--weights", dest="model", default=DEFAULT_MODEL,
                        help="a released model's name or a weights file: checkpoint (.pth, .safetensors) or table "
                             "(.npz, .npy) (default: %(default)s)")
    parser.add_argument("--weights-dir", default=None,
                        help="folder of released files not shipped in the wheel (default: $HATAST_WEIGHTS)")
    parser.add_argument("-o", "--output", default="results/upscaled", help="output folder (default: %(default)s)")
    parser.add_argument("--param-key", default=None,
                        help="checkpoint entry to use (default: params_ema, then params, then a bare state dict)")
    parser.add_argument("--tile", type=bounded(int, 0, 65535), default=None,
                        help="networks: tile size in input pixels (0: whole image; default: chosen from the free "
                             "memory, the whole image when it fits); tables always run whole images")
    parser.add_argument("--tile-pad", type=bounded(int, 0, 1024), default=32,
                        help="context around each tile (default: %(default)s)")
    parser.add_argument("--device", default="auto",
                        help="auto (networks: CUDA, MPS, then CPU; tables: the fused CPU kernel), cpu, cuda, cuda:N "
                             "or mps")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="networks tested in half precision (HAT, HAT+AST) run in bf16/fp16 when asked; auto: fp32")
    parser.add_argument("--ext", choices=sorted(OUTPUT_FORMATS), default="png",
                        help="output format (default: %(default)s; png and tif keep 16 bits, jpg and bmp drop alpha)")
    parser.add_argument("--suffix", default="", help="added to output file names before the extension")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that exist (inputs are never replaced)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    scaling = parser.add_argument_group("models that take the scale as an input")
    scaling.add_argument("--scale", type=scale_factor, default=None,
                         help="SR factor: USRNet 1, 2, 3 or 4; IM-LUT any factor >= 1 (2.5) or ROWS,COLS (1.5,2)")
    scaling.add_argument("--size", type=image_size, default=None,
                         help="IM-LUT: the output size WIDTHxHEIGHT (1920x1080) instead of --scale")
    usrnet = parser.add_argument_group("kernel-aware networks (USRNet): how the input was degraded")
    usrnet.add_argument("--kernel", default=None,
                        help="blur kernel: a file (.npy, .mat, .mat:N, an image) or gaussian:SIGMA / "
                             "gaussian:S1,S2,DEGREES")
    usrnet.add_argument("--noise", type=bounded(float, 0, 255), default=0.0,
                        help="noise standard deviation on the 0-255 scale, 0 to 255 (default 0)")
    usrnet.add_argument("--boundary", choices=["reflect", "wrap"], default="reflect",
                        help="reflect (default: photos; the LR is mirror-padded around the circular FFT step) or "
                             "wrap (LR made by circular blur, as in the paper's protocol)")
    usrnet.add_argument("--centre-aligned", action="store_true",
                        help="the LR pixels are centred on their HR blocks (imresize, cameras) rather than on the "
                             "blocks' upper-left pixels (USRNet's convention): shift the kernel by (s-1)/2")
    return parser


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)  # one line, not Python's source-line format


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _warning_line
    summary = upscale(args.inputs, args.output, args.model, scale=args.scale, size=args.size, tile=args.tile,
                      tile_pad=args.tile_pad, device=args.device, precision=args.precision, ext=args.ext,
                      suffix=args.suffix, overwrite=args.overwrite, weights_dir=args.weights_dir,
                      param_key=args.param_key, kernel=args.kernel, noise=args.noise, boundary=args.boundary,
                      centre_aligned=args.centre_aligned, progress=not args.no_progress)
    print(summary.line(), file=sys.stderr if summary.failed else sys.stdout)
    return 1 if summary.failed else 0

if __name__ == "__main__":
    sys.exit(main())
