"""Shared test helpers: where the read-only shared fixtures live, tiny configs, and small image folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import hatast.models  # noqa: F401  (shim + registries before anything imports basicsr)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HATAST_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures"
DATA = Path(os.environ.get("HATAST_DATA", SHARED / "data"))

sys.path.insert(0, str(Path(__file__).parent))

# The smallest HAT that still has every part: 2 groups, shifted and unshifted HABs, an OCAB, x2 pixel shuffle.
TINY_HAT = dict(embed_dim=16, depths=[2], num_heads=[2], window_size=4, compress_ratio=4, squeeze_factor=4,
                mlp_ratio=2.0, upscale=2, img_size=16)


def need(path: Path, what: str) -> Path:
    """Skip the test with a clear message when a shared fixture is absent; in CI (``CI=true``) fail instead, so a
    missing ``../shared`` cannot pass a run by skipping its parity tests."""
    if not path.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{what} not found at {path}: CI must run with ../shared beside the clone")
        pytest.skip(f"{what} not found at {path} (set HATAST_SHARED or HATAST_DATA to the shared folder)")
    return path


def sample_image(name: str = "astronaut") -> np.ndarray:
    """A real photograph that ships inside scikit-image, as uint8 BGR (BasicSR's channel order)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return np.ascontiguousarray(img[..., :3][..., ::-1])


def write_image_folder(folder: Path, crops: int, size: int, start: int = 0) -> Path:
    """Write ``crops`` ``size x size`` PNG crops of scikit-image photos into ``folder``."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    sources = [sample_image(n) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    for i in range(start, start + crops):
        img = sources[i % len(sources)]
        h, w = img.shape[:2]
        y, x = (37 * i) % (h - size), (53 * i) % (w - size)
        cv2.imwrite(str(folder / f"img{i:03d}.png"), img[y:y + size, x:x + size])
    return folder


def file_hashes(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under ``roots`` (files or folders): compare before and after a command to prove it
    changed none of its inputs."""
    import hashlib

    hashes = {}
    for root in map(Path, roots):
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def single_error_line(err: str, *fragments: str, prefix: str = "error: ") -> str:
    """Assert that ``err`` is exactly one line starting with ``prefix`` and containing every fragment; return it."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert lines[0].startswith(prefix), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    assert "Traceback" not in err
    return lines[0]


def populate_datasets(opt: dict, count: int = 2) -> None:
    """Put ``count`` (at least one batch of) small, valid images in every dataset folder an (expanded) option dict
    names: HR crops of real photographs at least one training crop in size, and their MATLAB-bicubic LR at the
    file's scale, named by its ``filename_tmpl``. Lets shipped option files validate with their data checks on."""
    import cv2

    from hatast.data.degradations import bicubic_downsample

    scale = int(opt["scale"])
    photo = sample_image("astronaut")
    for dopt in opt["datasets"].values():
        side = max(int(dopt.get("gt_size") or 0), 12 * scale)
        side -= side % scale
        gt, lq = dopt.get("dataroot_gt"), dopt.get("dataroot_lq")
        for folder in (gt, lq):
            if folder:
                Path(folder).mkdir(parents=True, exist_ok=True)
        # at least one training batch: BasicSR drops incomplete batches, and --check refuses a set without one
        for i in range(max(count, int(dopt.get("batch_size_per_gpu") or 0))):
            top, left = (7 * i) % (photo.shape[0] - side + 1), (11 * i) % (photo.shape[1] - side + 1)
            hr = np.ascontiguousarray(photo[top:top + side, left:left + side])
            if gt:
                cv2.imwrite(str(Path(gt) / f"img{i}.png"), hr)
            if lq:
                lr = bicubic_downsample(hr, scale)
                name = dopt.get("filename_tmpl", "{}").format(f"img{i}") if gt else f"img{i}"
                cv2.imwrite(str(Path(lq) / f"{name}.png"), lr)


@pytest.fixture
def image_folders(tmp_path: Path) -> dict[str, Path]:
    """A tiny training folder (HR only) and a validation pair folder (HR + x2 LR)."""
    import cv2

    from hatast.data.degradations import bicubic_downsample

    train = write_image_folder(tmp_path / "train_hr", crops=6, size=48)
    val_hr = write_image_folder(tmp_path / "val_hr", crops=2, size=24, start=10)
    val_lr = tmp_path / "val_lr"
    val_lr.mkdir()
    for p in sorted(val_hr.iterdir()):
        cv2.imwrite(str(val_lr / p.name), bicubic_downsample(cv2.imread(str(p)), 2))
    return {"train": train, "val_hr": val_hr, "val_lr": val_lr}


def write_options(file: Path, folders: dict[str, Path], total_iter: int = 6, **sections) -> Path:
    """A complete training option file for the tiny HAT on ``folders`` (see ``image_folders``)."""
    import yaml

    opt = {
        "name": "tiny_hat_test",
        "model_type": "HATModel",
        "scale": 2,
        "num_gpu": 0,
        "manual_seed": 0,
        "datasets": {
            "train": {
                "name": "tiny_train", "type": "BicubicDownsampleDataset", "dataroot_gt": str(folders["train"]),
                "io_backend": {"type": "disk"}, "gt_size": 32, "use_hflip": True, "use_rot": True,
                "use_shuffle": True, "num_worker_per_gpu": 0, "batch_size_per_gpu": 2,
                "dataset_enlarge_ratio": 4, "prefetch_mode": None,
            },
            "val": {
                "name": "tiny_val", "type": "PairedImageDataset", "dataroot_gt": str(folders["val_hr"]),
                "dataroot_lq": str(folders["val_lr"]), "io_backend": {"type": "disk"},
            },
        },
        "network_g": {"type": "HAT", **TINY_HAT},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0.999,
            "optim_g": {"type": "Adam", "lr": 2e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
            "scheduler": {"type": "MultiStepLR", "milestones": [1000], "gamma": 0.5},
            "total_iter": total_iter, "warmup_iter": -1,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
        },
        "val": {
            "val_freq": total_iter, "save_img": False,
            "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True},
                        "ssim": {"type": "calculate_ssim", "crop_border": 2, "test_y_channel": True}},
        },
        "logger": {"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False},
    }
    for key, value in sections.items():
        opt[key] = value if not isinstance(value, dict) else {**opt.get(key, {}), **value}
    file.write_text(yaml.safe_dump(opt, sort_keys=False))
    return file
