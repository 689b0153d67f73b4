"""``hatast quickstart``: hatast's main job on embedded defaults, in seconds. Photographs that ship with
scikit-image are downsampled (MATLAB bicubic), upscaled back with the default released model, and scored against
the originals next to bicubic upsampling (PSNR/SSIM on Y, BasicSR's metrics); the images land in ``--out``.
"""

from __future__ import annotations

import sys
import time

from ..release import DEFAULT_MODEL
from ..utils.arguments import OneLineParser, scale_factor
from ..utils.errors import UsageError, command

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")
"""scikit-image's sample photographs (in its wheel, no download)."""


@command
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="hatast quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a released name or a weights file "
                                                               "(default: %(default)s)")
    parser.add_argument("--scale", type=scale_factor, default=None,
                        help="for models that take it (IM-LUT, USRNet); fixed-scale models use their own")
    parser.add_argument("--weights-dir", default=None, help="folder of released files not in the wheel")
    parser.add_argument("-o", "--out", default="hatast-quickstart",
                        help="a new or empty folder for the images, or one an earlier quick start made (its images "
                             "are replaced) (default: %(default)s)")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    from ..data.degradations import bicubic_downsample
    from ..eval.baselines import interpolate
    from ..eval.metrics import score
    from ..release import resolve
    from ..upscaling import upscale
    from ..utils.image import imwrite_atomic, read_image
    from ..utils.paths import OutputFolder
    from .demo import sample_folder

    weights, entry = resolve(args.model, args.weights_dir)
    fixed = entry.scale if entry is not None and isinstance(entry.scale, int) else None
    scale = args.scale if args.scale is not None else fixed or 4
    if not isinstance(scale, int) or (fixed is not None and scale != fixed):
        raise UsageError(f"--scale {scale}: the quick start scores integer scales; {args.model} runs at "
                         f"x{fixed or 'any'}")
    photos = [sample_folder(PHOTOS) / name for name in PHOTOS]
    outputs = OutputFolder(args.out, "-o", inputs=[weights, *photos], overwrite=True)
    folders = {name: outputs.folder(name) for name in ("HR", "LR", "SR", "bicubic")}
    files = {(kind, path.stem): outputs.path(f"{kind}/{path.stem}.png", source=(kind, path.stem))
             for path in photos for kind in ("HR", "LR", "bicubic")}
    again = outputs.adopt("quickstart")
    for path in photos:  # the originals cropped to a multiple of the scale, and their LR
        hr = read_image(path).bgr
        hr = hr[: hr.shape[0] // scale * scale, : hr.shape[1] // scale * scale]
        imwrite_atomic(hr, files["HR", path.stem])
        imwrite_atomic(bicubic_downsample(hr, scale), files["LR", path.stem])
    summary = upscale(folders["LR"], folders["SR"], str(weights), scale=args.scale, overwrite=True,
                      progress=False, report=lambda line: None)
    if summary.failed:
        print(f"error: {summary.failed[0][1]}", file=sys.stderr)
        return 1
    print(f"hatast quickstart: {summary.label}")
    print(f"x{scale} on scikit-image's {', '.join(PHOTOS)} (LR by MATLAB-bicubic downsampling; PSNR/SSIM on Y, "
          f"{scale}-pixel border)\n")
    print(f"  {'image':<12}{'bicubic PSNR / SSIM':>22}{'model PSNR / SSIM':>22}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for path in photos:
        hr = read_image(files["HR", path.stem]).bgr
        bicubic = interpolate(read_image(files["LR", path.stem]).bgr, scale)
        imwrite_atomic(bicubic, files["bicubic", path.stem])
        b = score(bicubic, hr, scale)
        m = score(read_image(folders["SR"] / f"{path.stem}.png").bgr, hr, scale)
        for i, value in enumerate((b["psnr"], b["ssim"], m["psnr"], m["ssim"])):
            totals[i] += value / len(photos)
        print(f"  {path.stem:<12}{b['psnr']:>13.2f} / {b['ssim']:.4f}{m['psnr']:>13.2f} / {m['ssim']:.4f}")
    print(f"  {'mean':<12}{totals[0]:>13.2f} / {totals[1]:.4f}{totals[2]:>13.2f} / {totals[3]:.4f}")
    print(f"\nimages in {outputs.root} (HR, LR, SR: the model, bicubic"
          + ("; an earlier quick start's images replaced" if again else "") + f"); "
          f"{time.perf_counter() - start:.1f} s")
    print(f"your own photos: hatast upscale photo.png --model {args.model} -o results/mine")
    return 0
