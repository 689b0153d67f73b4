"""``hatast upscale``: super-resolve image files with a checkpoint or a look-up table.

The network and its hyper-parameters are read from the weights file itself; a look-up table (``.npz``, or the SR-LUT
authors' ``.npy``) runs through the table kernel on 8-bit pixels. 8- and 16-bit images keep their bit depth (a table
reads 8-bit values, so 16-bit input is rounded to 8 bits before the table and the result written at 16 bits); grey
images are processed as RGB and written as RGB; an alpha channel is upscaled with bicubic interpolation (models are
trained on colour only) and written back. Images are turned as their EXIF orientation says they are displayed.

Nothing is lost: outputs never replace an input (refused before any compute), two inputs never share an output
(``pic.png`` and ``pic.jpg`` become ``pic_png.png`` and ``pic_jpg.png``; inputs that still collide are refused), the
output folder is proved writable before the first image is computed, every image is written atomically, and an
image that cannot be read or written is reported and skipped (exit status 1) while the rest of the batch goes on.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..inference import UpscaleError, Upscaler, is_table
from ..lut.table import LUTError
from ..utils.arguments import (
    OneLineParser,
    image_size,
    non_negative_float,
    non_negative_int,
    resolve_device,
    scale_factor,
)
from ..utils.files import (
    OutputError,
    check_output_folder,
    file_identities,
    overwritten_input,
    remove_stale_temporaries,
)
from ..utils.image import IMAGE_EXTENSIONS, ImageError, read_image, upscale_alpha, write_image


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="hatast upscale", description=__doc__.splitlines()[0],
        epilog="Inputs are read as displayed (EXIF orientation applied); outputs are PNG, never written onto an "
               "input; pic.png and pic.jpg in one run become pic_png.png and pic_jpg.png.")
    parser.add_argument("inputs", nargs="+", help="image files or folders of images")
    parser.add_argument("-w", "--weights", required=True, help="checkpoint (.pth, .safetensors) or table (.npz, .npy)")
    parser.add_argument("-o", "--output", default="results/upscaled", help="output folder (default: %(default)s)")
    parser.add_argument("--param-key", default=None,
                        help="checkpoint entry to use (default: params_ema, then params, then a bare state dict)")
    parser.add_argument("--tile", type=non_negative_int, default=0,
                        help="networks: tile size in input pixels (0: whole image); tables always run whole images")
    parser.add_argument("--tile-pad", type=non_negative_int, default=32,
                        help="context around each tile (default: %(default)s)")
    parser.add_argument("--device", default="auto",
                        help="auto (networks: CUDA, MPS, then CPU; tables: the fused CPU kernel), cpu, cuda, cuda:N "
                             "or mps")
    parser.add_argument("--suffix", default="", help="added to output file names before the extension")
    scaling = parser.add_argument_group("models that take the scale as an input")
    scaling.add_argument("--scale", type=scale_factor, default=None,
                         help="SR factor: USRNet 1, 2, 3 or 4; IM-LUT any factor >= 1 (2.5) or ROWS,COLS (1.5,2)")
    scaling.add_argument("--size", type=image_size, default=None,
                         help="IM-LUT: the output size WIDTHxHEIGHT (1920x1080) instead of --scale")
    usrnet = parser.add_argument_group("kernel-aware networks (USRNet): how the input was degraded")
    usrnet.add_argument("--kernel", default=None,
                        help="blur kernel: a file (.npy, .mat, .mat:N, an image) or gaussian:SIGMA / "
                             "gaussian:S1,S2,DEGREES")
    usrnet.add_argument("--noise", type=non_negative_float, default=0.0,
                        help="noise standard deviation on the 0-255 scale (default 0)")
    usrnet.add_argument("--boundary", choices=["reflect", "wrap"], default="reflect",
                        help="reflect (default: photos; the LR is mirror-padded around the circular FFT step) or "
                             "wrap (LR made by circular blur, as in the paper's protocol)")
    usrnet.add_argument("--centre-aligned", action="store_true",
                        help="the LR pixels are centred on their HR blocks (imresize, cameras) rather than on the "
                             "blocks' upper-left pixels (USRNet's convention): shift the kernel by (s-1)/2")
    return parser


def degradation_from_args(args):
    """The :class:`~hatast.inference.Degradation` the options describe, or None without ``--kernel``."""
    if args.kernel is None:
        if args.noise or args.centre_aligned:
            raise ValueError("--noise and --centre-aligned describe a blur kernel: give --kernel too")
        return None
    from ..data.degradations import load_kernel
    from ..inference import Degradation

    return Degradation(load_kernel(args.kernel), args.noise, args.boundary, args.centre_aligned)


def collect_inputs(items: list[str]) -> list[Path]:
    """Image files named directly or found (not recursively) in named folders; each file once."""
    files, seen = [], set()
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif item.is_file():
            found = [item]
        else:
            raise ImageError(f"{item}: no such file or folder")
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files


def plan_outputs(files: list[Path], folder: Path, suffix: str, protected: list[Path]) -> list[tuple[Path, Path]]:
    """Pair every input with its output file, refusing (``OutputError``) anything that would lose data.

    Inputs whose names differ only in the extension get it in the output name (``pic.png``, ``pic.jpg`` ->
    ``pic_png.png``, ``pic_jpg.png``). Two inputs that would still share an output, or an output that is an input
    (or any other protected file, such as the weights), are refused before any compute.
    """
    by_stem = defaultdict(list)
    for path in files:
        by_stem[path.stem + suffix].append(path)
    names = {}
    for stem, group in by_stem.items():
        by_ext = defaultdict(list)
        for path in group:
            by_ext[path.suffix.lower()].append(path)
        for same in by_ext.values():
            if len(same) > 1:  # same name in two folders: the extension cannot tell them apart
                raise OutputError(f"{same[0]} and {same[1]} would both be written to {folder / (stem + '.png')}; "
                                  "upscale them in separate runs or rename one")
        for path in group:
            ext = path.suffix.lower().lstrip(".")
            names[path] = f"{path.stem}_{ext}{suffix}.png" if len(group) > 1 else f"{stem}.png"
    owners = defaultdict(list)
    for path, name in names.items():
        owners[name].append(path)
    for name, group in owners.items():
        if len(group) > 1:
            raise OutputError(f"{group[0]} and {group[1]} would both be written to {folder / name}; upscale them "
                              "in separate runs or rename one")
    identities = file_identities([*files, *protected])
    plan = []
    for path in files:
        out = folder / names[path]
        replaced = overwritten_input(out, identities)
        if replaced is not None:
            raise OutputError(f"output {out} would overwrite the input {replaced}; hatast never writes onto its "
                              "inputs (choose another -o folder or a --suffix)")
        plan.append((path, out))
    return plan


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)  # one line, not Python's source-line format


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _warning_line
    try:
        # a table's fused CPU kernel is the default for tables: choosing it needs no torch (nor a GPU's transfers)
        device = "cpu" if args.device == "auto" and is_table(args.weights) else resolve_device(args.device)
        files = collect_inputs(args.inputs)
        folder = Path(args.output)
        plan = plan_outputs(files, folder, args.suffix, protected=[Path(args.weights)])
        upscaler = Upscaler.load(args.weights, args.param_key, device, args.scale, degradation_from_args(args),
                                 args.size)
        if args.tile:
            upscaler.check_tile()
        check_output_folder(folder, option="-o")
    except ValueError as err:  # hatast's errors (checkpoint, table, image, output, device) are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 2
    remove_stale_temporaries(folder, [out.name for _, out in plan])
    print(f"{upscaler.label}; {len(plan)} image(s) -> {folder}")
    failures = 0
    for path, out in plan:
        start = time.perf_counter()
        try:
            image = read_image(path)
            result = upscaler(image, args.tile, args.tile_pad, device)
            out_h, out_w = result.shape[:2] if isinstance(result, np.ndarray) else result.shape[-2:]
            alpha = None if image.alpha is None else upscale_alpha(image.alpha, (out_h, out_w))
            write_image(out, result, alpha, image.max_value)
        except (ImageError, LUTError, UpscaleError, OSError) as err:
            text = str(err) if str(err).startswith(str(path)) or str(err).startswith(str(out)) else f"{path}: {err}"
            print(f"skipped: {text}", file=sys.stderr)
            failures += 1
            continue
        h, w = image.size
        print(f"{path} ({w}x{h}) -> {out} ({out_w}x{out_h}) in "
              f"{time.perf_counter() - start:.2f} s", flush=True)
        del image, result, alpha
    if failures:
        print(f"{failures} of {len(plan)} image(s) failed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
