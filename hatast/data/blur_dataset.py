"""HR images with USRNet's LR made on the fly: circular blur with a kernel, upper-left decimation, Gaussian noise
(:mod:`.degradations`)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch
from basicsr.data.transforms import augment
from basicsr.utils import imfrombytes
from basicsr.utils.registry import DATASET_REGISTRY

from ..utils.errors import UsageError
from .bicubic_dataset import BicubicDownsampleDataset
from .degradations import blur_downsample_noise, circular_blur, decimate, load_kernel, random_training_kernel


@DATASET_REGISTRY.register()
class BlurDownsampleNoiseDataset(BicubicDownsampleDataset):
    """Ground-truth images; LR = (HR (x) k) downarrow_s + n, made per sample.

    Training: a random ``gt_size`` crop (flipped/rotated), a kernel from USRNet's pool (half anisotropic Gaussians
    with eigenvalues in ``variance_range``, half random motion blurs, ``kernel_size`` square), a noise level
    uniform in ``noise_range`` (on the 0-255 scale). The crop is blurred once and decimated at every scale of
    ``scales`` (``lq_x1``, ``lq_x2``, ...; each with its own noise), so the model can train each batch at one
    scale (``USRNetModel`` picks it per iteration, seeded). ``gt_size`` must be a multiple of every scale.
    Randomness comes from Python's ``random`` (seeded by BasicSR per run and per worker): runs repeat.

    Validation/test: every image cropped to a multiple of lcm(scale, 8), blurred with ``kernel`` (a file or spec,
    :func:`~.degradations.load_kernel`), decimated at the option ``scale``, noise ``noise`` (0-255 scale) drawn
    with ``seed`` per image (the USRNet paper's protocol; the LR is float and neither clipped nor quantised).

    Stored LR instead (``dataroot_lq`` + ``filename_tmpl``, as BasicSR's paired datasets): the LR files are read,
    the HR cropped to ``LR size x scale``, and ``kernel``/``noise`` say what made them, e.g. ``kernel: bicubic:4``
    for the standard bicubic benchmark sets.

    Every sample: ``gt`` ``[3, H, W]``, ``kernel`` ``[1, kh, kw]``, ``sigma`` ``[1]`` (0-1 scale), the LR
    (``lq`` or ``lq_x<s>``), ``scale`` and the paths.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__({**opt, "cache": False})
        self.train = opt["phase"] == "train"
        if self.train:
            self.scales = [int(s) for s in opt.get("scales", [1, 2, 3, 4])]
            size = int(opt["gt_size"])
            bad = [s for s in self.scales if size % s]
            if bad:
                raise UsageError(f"dataset '{opt.get('name')}': gt_size {size} is not a multiple of scale(s) {bad}")
            self.noise_range = tuple(float(v) / 255 for v in opt.get("noise_range", [0, 25]))
            self.variance_range = tuple(float(v) for v in opt.get("variance_range", [0.6, 12]))
            self.kernel_size = int(opt.get("kernel_size", 25))
        else:
            self.kernel = load_kernel(str(opt.get("kernel", "gaussian:1.6")))
            self.sigma = float(opt.get("noise", 0)) / 255
            self.seed = int(opt.get("seed", 0))
            self.lq_root = opt.get("dataroot_lq")
            self.lq_name = str(opt.get("filename_tmpl", "{}"))

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        img = self._read(index, float32=False)
        peak = float(np.iinfo(img.dtype).max)
        sample: dict = {"gt_path": path, "lq_path": path}
        if self.train:
            size = int(self.opt["gt_size"])
            h, w = img.shape[:2]
            if h < size or w < size:
                raise UsageError(f"{path} is {h}x{w}, smaller than gt_size {size}")
            top, left = random.randint(0, h - size), random.randint(0, w - size)
            img = augment(img[top:top + size, left:left + size], self.opt.get("use_hflip", True),
                          self.opt.get("use_rot", True))
            hr = np.ascontiguousarray(img, dtype=np.float64) / peak
            rng = np.random.default_rng(random.getrandbits(64))
            kernel = random_training_kernel(rng, self.kernel_size, self.variance_range)
            sigma = rng.uniform(*self.noise_range)
            blurred = circular_blur(hr, kernel)
            for s in self.scales:
                lq = decimate(blurred, s)
                sample[f"lq_x{s}"] = _tensor(lq + rng.normal(0.0, sigma, lq.shape) if sigma > 0 else lq)
        else:
            s = int(self.opt["scale"])
            kernel, sigma = self.kernel, self.sigma
            if self.lq_root:
                lq_path = Path(self.lq_root) / (self.lq_name.format(Path(path).stem) + Path(path).suffix)
                lq = imfrombytes(Path(lq_path).read_bytes(), float32=True)
                hr = np.ascontiguousarray(img[: lq.shape[0] * s, : lq.shape[1] * s], dtype=np.float64) / peak
                sample["lq"], sample["lq_path"] = _tensor(lq), str(lq_path)
            else:
                step = s * 8 // math.gcd(s, 8)
                h, w = img.shape[:2]
                hr = np.ascontiguousarray(img[: h - h % step, : w - w % step], dtype=np.float64) / peak
                sample["lq"] = _tensor(blur_downsample_noise(hr, kernel, s, sigma, np.random.default_rng(self.seed)))
            sample["scale"] = s
        sample["gt"] = _tensor(hr)
        sample["kernel"] = torch.from_numpy(kernel.astype(np.float32))[None]
        sample["sigma"] = torch.tensor([sigma], dtype=torch.float32)
        return sample


def _tensor(image: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` BGR float -> ``[3, H, W]`` RGB float32."""
    return torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1), dtype=np.float32))

