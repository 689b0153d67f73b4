"""``hatast upscale``: super-resolve image files with a checkpoint, whatever its architecture's settings.

The network and its hyper-parameters are read from the weights file itself; a look-up table (``.npz``, or the SR-LUT
authors' ``.npy``) runs through the table kernel. 8- and 16-bit images keep their bit depth (a table reads 8-bit
values, so 16-bit input is rounded to 8 bits before the table and the result written at 16 bits); grey images are
processed as RGB and written as RGB; an alpha channel is upscaled with bicubic interpolation (models are trained on
colour only) and written back.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..archs.detect import network_from_state_dict
from ..archs.lut_arch import LUTNet
from ..utils.checkpoint import CheckpointError, load_into, load_state_dict
from ..utils.image import ImageError, read_image, write_image
from ..utils.tiling import tiled_forward

LUT_SUFFIXES = (".npz", ".npy")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hatast upscale", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="image files or folders of images")
    parser.add_argument("-w", "--weights", required=True, help="checkpoint (.pth, .safetensors) or table (.npz, .npy)")
    parser.add_argument("-o", "--output", default="results/upscaled", help="output folder (default: %(default)s)")
    parser.add_argument("--param-key", default=None, help="entry to use (default: params_ema, then params)")
    parser.add_argument("--tile", type=int, default=0, help="tile size in input pixels (0: whole image)")
    parser.add_argument("--tile-pad", type=int, default=32, help="context around each tile (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--suffix", default="", help="added to output file names before the extension")
    return parser


def _inputs(items: list[str]) -> list[Path]:
    from ..data.bicubic_dataset import IMAGE_EXTENSIONS

    files = []
    for item in map(Path, items):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        elif item.is_file():
            files.append(item)
        else:
            raise ImageError(f"{item}: no such file or folder")
    return files


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if Path(args.weights).suffix in LUT_SUFFIXES:
            net = LUTNet(args.weights)
            config = {"type": f"SR-LUT {net.kind} table", "upscale": net.upscale}
        else:
            state = load_state_dict(args.weights, args.param_key)
            net, config = network_from_state_dict(state)
            load_into(net, state, strict=True, source=args.weights)
        files = _inputs(args.inputs)
    except (CheckpointError, ImageError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    net = net.to(args.device).eval()
    scale = config["upscale"]
    multiple = getattr(net, "window_size", 1)
    print(f"{config['type']} x{scale} from {args.weights}; {len(files)} image(s) -> {args.output}")
    failures = 0
    for path in files:
        try:
            image = read_image(path)
        except ImageError as err:
            print(f"skipped: {err}", file=sys.stderr)
            failures += 1
            continue
        start = time.perf_counter()
        with torch.inference_mode():
            lq = image.rgb.to(args.device)
            sr = tiled_forward(net, lq, scale, args.tile, args.tile_pad, multiple) if args.tile else net(lq)
            alpha = None
            if image.alpha is not None:
                alpha = F.interpolate(image.alpha.to(args.device), scale_factor=scale, mode="bicubic",
                                      align_corners=False)
        out = Path(args.output) / f"{path.stem}{args.suffix}.png"
        write_image(out, sr, alpha, image.max_value)
        h, w = image.rgb.shape[-2:]
        print(f"{path} ({w}x{h}) -> {out} ({w * scale}x{h * scale}) in {time.perf_counter() - start:.2f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
