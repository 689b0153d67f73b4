"""HR-only image folders (or LMDBs) with LR made on the fly by MATLAB-compatible bicubic downsampling."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from basicsr.data.data_util import paths_from_lmdb
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, bgr2ycbcr, imfrombytes, img2tensor
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def bicubic_downsample(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(img, 1/scale, 'bicubic')`` of an ``[H, W, C]`` float image in [0, 1], then quantised to
    8-bit levels like the PNG LR images of the SR benchmarks. H and W must be multiples of ``scale``."""
    lr = imresize(img, 1 / scale)
    return (np.clip(lr, 0, 1) * 255).round().astype(np.float32) / 255


def list_images(folder: str | Path) -> list[str]:
    """Image files directly inside ``folder``, sorted."""
    folder = Path(folder)
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


@DATASET_REGISTRY.register()
class BicubicDownsampleDataset(data.Dataset):
    """Ground-truth images only; each LR input is the bicubic downsampling of its GT crop.

    For training sets that have no LR copies (BSDS400, scikit-image samples, a user's photos). Training returns
    random ``gt_size`` crops with flips/rotations; validation returns the whole image cropped to a multiple of the
    scale.

    Options:
        dataroot_gt: a folder of images, or an LMDB folder (``io_backend: {type: lmdb}``).
        scale, phase: set by the option parser.
        gt_size, use_hflip, use_rot: training crop and augmentation.
        color: ``'y'`` for Y-channel-only images.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.scale = int(opt["scale"])
        self.io_backend_opt = dict(opt.get("io_backend") or {"type": "disk"})
        self.file_client = None
        root = opt["dataroot_gt"]
        if self.io_backend_opt["type"] == "lmdb":
            self.io_backend_opt["db_paths"] = [root]
            self.io_backend_opt["client_keys"] = ["gt"]
            self.paths = paths_from_lmdb(root)
        else:
            self.paths = list_images(root)
        if not self.paths:
            raise ValueError(f"dataset '{opt.get('name')}': no images in {root}")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop("type"), **backend)
        path = self.paths[index]
        img = imfrombytes(self.file_client.get(path, "gt"), float32=True)
        s = self.scale
        if self.opt["phase"] == "train":
            size = int(self.opt["gt_size"])
            h, w = img.shape[:2]
            if h < size or w < size:
                raise ValueError(f"{path} is {h}x{w}, smaller than gt_size {size}")
            top, left = random.randint(0, h - size) // s * s, random.randint(0, w - size) // s * s
            img = img[top:top + size, left:left + size]
            img = augment(img, self.opt.get("use_hflip", True), self.opt.get("use_rot", True))
        else:
            h, w = img.shape[:2]
            img = img[: h - h % s, : w - w % s]
        img = np.ascontiguousarray(img)
        lq = bicubic_downsample(img, s)
        if self.opt.get("color") == "y":
            img, lq = bgr2ycbcr(img, y_only=True)[..., None], bgr2ycbcr(lq, y_only=True)[..., None]
        img_gt, img_lq = img2tensor([img, lq], bgr2rgb=True, float32=True)
        return {"lq": img_lq, "gt": img_gt, "lq_path": path, "gt_path": path}
