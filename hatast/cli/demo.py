"""``hatast demo``: the training pipeline end to end. Fine-tunes the released tiny HAT x4 (``HAT-tiny_SRx4_CPU``,
shipped in the wheel) on photographs that ship inside scikit-image, then tests it on two held-out photographs and
prints PSNR/SSIM next to bicubic upsampling. ``--from-scratch`` starts from random weights instead (it needs a few
thousand iterations to pass bicubic).

Everything runs through the same entry points as real experiments (option file -> ``hatast train`` ->
``hatast test``), on real images, with nothing to download. Outputs go to ``--workdir`` (default ``hatast-demo``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from ..utils.arguments import OneLineParser, bounded
from ..utils.errors import command
from ..utils.paths import OutputFolder

TRAIN_IMAGES = ("astronaut.png", "rocket.jpg", "hubble_deep_field.jpg", "ihc.png", "retina.jpg",
                "motorcycle_left.png")
VAL_IMAGES = ("chelsea.png", "coffee.png")
SCALE = 4
START = "HAT-tiny_SRx4_CPU"
"""The released model the demo fine-tunes (its config is TINY_HAT's)."""

TINY_HAT = dict(type="HAT", upscale=SCALE, in_chans=3, img_size=64, window_size=8, compress_ratio=3,
                squeeze_factor=16, conv_scale=0.01, overlap_ratio=0.5, img_range=1.0, depths=[2, 2], embed_dim=48,
                num_heads=[4, 4], mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv")


def sample_folder(names: tuple[str, ...] = TRAIN_IMAGES + VAL_IMAGES) -> Path:
    """scikit-image's folder of sample images, checked to hold ``names``."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"scikit-image's sample images are incomplete in {folder} (missing {missing})")
    return folder


def prepare_data(outputs: OutputFolder) -> dict[str, Path]:
    """Copy the sample photos as PNG: training HR images, and validation HR/LR pairs (MATLAB bicubic x4)."""
    from ..data.degradations import bicubic_downsample
    from ..utils.image import imwrite_atomic, read_image

    src = sample_folder()
    folders = {"train": "data/train", "val_hr": "data/val/HR", "val_lr": "data/val/LR"}
    for name in TRAIN_IMAGES:
        imwrite_atomic(read_image(src / name).bgr, outputs.path(f"{folders['train']}/{Path(name).stem}.png"))
    for name in VAL_IMAGES:
        img = read_image(src / name).bgr
        h, w = img.shape[:2]
        img = img[: h - h % SCALE, : w - w % SCALE]
        imwrite_atomic(img, outputs.path(f"{folders['val_hr']}/{Path(name).stem}.png"))
        imwrite_atomic(bicubic_downsample(img, SCALE), outputs.path(f"{folders['val_lr']}/{Path(name).stem}.png"))
    return {key: outputs.folder(folder) for key, folder in folders.items()}


def write_options(outputs: OutputFolder, data: dict[str, Path], iters: int, start: Path | None) -> tuple[Path, Path]:
    from ..eval.metrics import option_metrics
    from ..utils.files import write_bytes_atomic

    val = {"name": "skimage_val", "type": "PairedImageDataset", "dataroot_gt": str(data["val_hr"]),
           "dataroot_lq": str(data["val_lr"]), "io_backend": {"type": "disk"}}
    train_opt = {
        "name": "demo_HAT-tiny_SRx4", "model_type": "HATModel", "scale": SCALE, "num_gpu": "auto", "manual_seed": 0,
        "datasets": {
            "train": {"name": "skimage_train", "type": "BicubicDownsampleDataset", "dataroot_gt": str(data["train"]),
                      "io_backend": {"type": "disk"}, "gt_size": 64, "use_hflip": True, "use_rot": True,
                      "use_shuffle": True, "num_worker_per_gpu": 1, "batch_size_per_gpu": 8,
                      "dataset_enlarge_ratio": 100, "prefetch_mode": None},
            "val": val,
        },
        "network_g": TINY_HAT,
        "path": {"pretrain_network_g": None if start is None else str(start), "strict_load_g": True,
                 "resume_state": None},
        "train": {"ema_decay": 0.98,
                  # from the released model: a tenth of the scratch rate, so the photos refine it, not reset it
                  "optim_g": {"type": "Adam", "lr": 1e-3 if start is None else 1e-4, "weight_decay": 0,
                              "betas": [0.9, 0.99]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [iters * 2 // 3], "gamma": 0.3},
                  "total_iter": iters, "warmup_iter": -1,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        "logger": {"print_freq": max(iters // 10, 1), "save_checkpoint_freq": max(iters // 2, 1),
                   "use_tb_logger": False},
    }
    weights = outputs.root / "experiments" / train_opt["name"] / "models" / "net_g_latest.pth"
    test_opt = {
        "name": "demo_HAT-tiny_SRx4", "model_type": "HATModel", "scale": SCALE, "num_gpu": "auto", "manual_seed": 0,
        "datasets": {"test_1": val}, "network_g": TINY_HAT,
        "path": {"pretrain_network_g": str(weights), "param_key_g": "params_ema", "strict_load_g": True},
        "val": {"save_img": True, "suffix": None, "metrics": option_metrics(SCALE)},
    }
    paths = outputs.path("demo_train.yml"), outputs.path("demo_test.yml")
    for path, opt in zip(paths, (train_opt, test_opt)):
        write_bytes_atomic(path, yaml.safe_dump(opt, sort_keys=False).encode())
    return paths


def bicubic_scores(data: dict[str, Path]) -> tuple[float, float]:
    """PSNR/SSIM (Y, crop 4, BasicSR's metrics) of MATLAB-bicubic upsampling of the validation LR images."""
    from ..eval.baselines import interpolate
    from ..eval.metrics import score
    from ..utils.image import read_image

    scores = [score(interpolate(read_image(data["val_lr"] / p.name).bgr, SCALE), read_image(p).bgr, SCALE)
              for p in sorted(data["val_hr"].iterdir())]
    return float(np.mean([s["psnr"] for s in scores])), float(np.mean([s["ssim"] for s in scores]))


@command
def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="hatast demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="hatast-demo",
                        help="where data, runs and results go: a new or empty folder, or one an earlier demo made "
                             "(its results are replaced) (default: %(default)s)")
    parser.add_argument("--iters", type=bounded(int, 1, 1_000_000), default=100,
                        help="training iterations, 1 to 1000000 (default: %(default)s)")
    parser.add_argument("--from-scratch", action="store_true", help=f"random weights instead of {START}")
    args = parser.parse_args(argv)
    start = None
    if not args.from_scratch:
        from ..release import resolve

        start, _ = resolve(START)
    outputs = OutputFolder(args.workdir, "--workdir", inputs=[start] if start else [], overwrite=True)
    outputs.adopt("demo")
    workdir = outputs.root
    data = prepare_data(outputs)
    train_yml, test_yml = write_options(outputs, data, args.iters, start)
    origin = "from random weights" if start is None else f"from the released {START}"
    print(f"hatast demo: training a tiny HAT x{SCALE} {origin} for {args.iters} iterations on {len(TRAIN_IMAGES)} "
          f"scikit-image photos (log: {workdir / 'experiments'})", flush=True)
    began = time.time()
    command_line = [sys.executable, "-m", "hatast.cli.main"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    train = subprocess.run(command_line + ["train", "-opt", str(train_yml)], cwd=workdir, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if train.returncode != 0:
        print(train.stdout[-4000:], file=sys.stderr)
        return train.returncode
    trained = time.time() - began

    from ..engine import test

    os.chdir(workdir)
    results = test(["-opt", str(test_yml)])["skimage_val"]
    bic_psnr, bic_ssim = bicubic_scores(data)
    print(f"\nhatast demo: x{SCALE} on {', '.join(VAL_IMAGES)} (Y channel, {SCALE}-pixel border cropped)")
    print(f"  {'method':<40}{'PSNR (dB)':>10}{'SSIM':>8}")
    print(f"  {'bicubic':<40}{bic_psnr:10.2f}{bic_ssim:8.4f}")
    label = f"tiny HAT, {'scratch' if start is None else START} + {args.iters} it."
    print(f"  {label:<40}{results['psnr']:10.2f}{results['ssim']:8.4f}")
    print(f"  trained in {trained:.0f} s; images in {workdir / 'results'}")
    return 0
