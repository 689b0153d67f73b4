"""HR-only image folders (or LMDBs) with LR made on the fly by MATLAB bicubic downsampling (:mod:`.degradations`)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from basicsr.data.data_util import paths_from_lmdb
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, bgr2ycbcr, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from ..utils.errors import UsageError
from ..utils.image import IMAGE_EXTENSIONS
from .degradations import bicubic_downsample


def list_images(folder: str | Path) -> list[str]:
    """Image files directly inside ``folder``, sorted."""
    folder = Path(folder)
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


@DATASET_REGISTRY.register()
class BicubicDownsampleDataset(data.Dataset):
    """Ground-truth images only; each LR input is the bicubic downsampling of its GT crop.

    For training sets that have no LR copies (BSDS400, scikit-image samples, a user's photos). Training returns
    random ``gt_size`` crops with flips/rotations; validation returns the whole image cropped to a multiple of the
    scale. The LR is MATLAB's ``imresize`` on the stored integer image, so a validation pair equals the standard
    benchmark files in every value.

    Options:
        dataroot_gt: a folder of images, or an LMDB folder (``io_backend: {type: lmdb}``).
        scale, phase: set by the option parser.
        gt_size, use_hflip, use_rot: training crop and augmentation.
        color: ``'y'`` for Y-channel-only images.
        cache: decode and downsample every whole image once, at start-up, and crop aligned HR/LR pairs from memory
            (as datasets with stored LR images do). Per sample this costs a crop instead of a decode plus a bicubic
            resize of the crop (~18 ms for a 192x192 crop here), which matters for models that train faster than
            their data loads (look-up tables). Memory: the images as decoded (8-bit for BSDS400: ~250 MB).
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
            raise UsageError(f"dataset '{opt.get('name')}': no images in {root}")
        self.cached = [self._whole_pair(i) for i in range(len(self.paths))] if opt.get("cache") else None

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, index: int, float32: bool) -> np.ndarray:
        if self.file_client is None:
            backend = dict(self.io_backend_opt)
            self.file_client = FileClient(backend.pop("type"), **backend)
        return imfrombytes(self.file_client.get(self.paths[index], "gt"), float32=float32)

    def _whole_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The image cropped to a multiple of the scale and its downsampling, both in their stored integer type."""
        img = self._read(index, float32=False)
        s = self.scale
        img = np.ascontiguousarray(img[: img.shape[0] - img.shape[0] % s, : img.shape[1] - img.shape[1] % s])
        return img, bicubic_downsample(img, s)

    def _cached_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        img, lq = self.cached[index]
        if self.opt["phase"] == "train":
            s = self.scale
            size = int(self.opt["gt_size"]) // s
            h, w = lq.shape[:2]
            if h < size or w < size:
                raise UsageError(f"{self.paths[index]} is too small for gt_size {self.opt['gt_size']}")
            top, left = random.randint(0, h - size), random.randint(0, w - size)
            # copies: augment flips in place, and the cache must not change
            img = img[top * s:(top + size) * s, left * s:(left + size) * s].copy()
            lq = lq[top:top + size, left:left + size].copy()
            img, lq = augment([img, lq], self.opt.get("use_hflip", True), self.opt.get("use_rot", True))
        peak = np.float32(np.iinfo(img.dtype).max)
        return np.ascontiguousarray(img, dtype=np.float32) / peak, np.ascontiguousarray(lq, dtype=np.float32) / peak

    def _sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.paths[index]
        img = self._read(index, float32=False)
        s = self.scale
        if self.opt["phase"] == "train":
            size = int(self.opt["gt_size"])
            h, w = img.shape[:2]
            if h < size or w < size:
                raise UsageError(f"{path} is {h}x{w}, smaller than gt_size {size}")
            top, left = random.randint(0, h - size) // s * s, random.randint(0, w - size) // s * s
            img = img[top:top + size, left:left + size]
            img = augment(img, self.opt.get("use_hflip", True), self.opt.get("use_rot", True))
        else:
            h, w = img.shape[:2]
            img = img[: h - h % s, : w - w % s]
        img = np.ascontiguousarray(img)
        peak = np.float32(np.iinfo(img.dtype).max)
        return img.astype(np.float32) / peak, bicubic_downsample(img, s).astype(np.float32) / peak

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        if self.cached is not None:
            img, lq = self._cached_sample(index)
        else:
            img, lq = self._sample(index)
        if self.opt.get("color") == "y":
            img, lq = bgr2ycbcr(img, y_only=True)[..., None], bgr2ycbcr(lq, y_only=True)[..., None]
        img_gt, img_lq = img2tensor([img, lq], bgr2rgb=True, float32=True)
        return {"lq": img_lq, "gt": img_gt, "lq_path": path, "gt_path": path}


@DATASET_REGISTRY.register()
class HRCropDataset(BicubicDownsampleDataset):
    """Ground-truth crops only, for models that make their own LR per batch (IM-LUT: one scale per batch, drawn by
    the model). Training: random ``gt_size`` crops with flips/rotations; validation: whole images. Options as
    :class:`BicubicDownsampleDataset` (``cache`` keeps the decoded images in memory); no ``scale``."""

    def __init__(self, opt: dict) -> None:
        super().__init__({**opt, "scale": 1})

    def _whole_pair(self, index: int) -> tuple[np.ndarray, None]:
        return self._read(index, float32=False), None

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        img = self.cached[index][0] if self.cached is not None else self._read(index, float32=False)
        if self.opt["phase"] == "train":
            size = int(self.opt["gt_size"])
            h, w = img.shape[:2]
            if h < size or w < size:
                raise UsageError(f"{path} is {h}x{w}, smaller than gt_size {size}")
            top, left = random.randint(0, h - size), random.randint(0, w - size)
            img = augment(img[top:top + size, left:left + size].copy(), self.opt.get("use_hflip", True),
                          self.opt.get("use_rot", True))
        peak = np.float32(np.iinfo(img.dtype).max)
        img = np.ascontiguousarray(img, dtype=np.float32) / peak
        if self.opt.get("color") == "y":
            img = bgr2ycbcr(img, y_only=True)[..., None]
        return {"gt": img2tensor(img, bgr2rgb=True, float32=True), "gt_path": path}
