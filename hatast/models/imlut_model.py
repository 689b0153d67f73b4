"""IMLUTModel: trains IM-Net (and fine-tunes IM-LUT tables) at any scale, one scale per batch.

Training batches are HR crops (:class:`~hatast.data.bicubic_dataset.HRCropDataset`). Each iteration draws one
scale ``(rh, rw)`` from ``imlut: scales`` with ``manual_seed`` and the iteration number (a resumed run sees the
scales an uninterrupted one would), crops the batch to the largest size that scale divides into whole LR pixels
(:func:`~hatast.data.degradations.mod_crop`) and makes the LR with MATLAB's bicubic ``imresize`` on the 8-bit
values: the rule of the benchmark preparation, so a training pair at x2.5 is made as a Set5 x2.5 pair is.

Loss: ``pixel_opt`` on the output plus ``lambda * L1(weights, pseudo)`` where the pseudo ground-truth weights are
``softmax_k(-beta * |I_k - I_GT|)`` per pixel (``imlut: guide: {lambda, beta}``; lambda 0 switches it off).

Validation and test: the scale of a pair is its HR size over its LR size per axis (any scale, stored LR of
``hatast prepare``); without ground truth, the options' ``scale``. The network is :class:`~hatast.archs.imlut_arch.
IMNet` or the tables, :class:`~hatast.archs.imlut_arch.IMLUT`; every checkpoint save also writes the tables
(``net_g_<iter>.npz``).
"""

from __future__ import annotations

import random
from collections import OrderedDict

import numpy as np
import torch
from basicsr.utils.registry import MODEL_REGISTRY

from ..archs.imlut_arch import IMLUT, IMNet
from ..data.degradations import bicubic_downsample, mod_crop
from ..lut.table import LUTFile
from .base import HatastSRModel, TableCheckpoints

DEFAULT_SCALES = {"range": [1.0, 4.0], "step": 0.1, "per_axis": 0.0}


def draw_scale(seed: int, iteration: int, low: float, high: float, step: float,
               per_axis: float) -> tuple[float, float]:
    """The batch scale of an iteration: uniform over the grid ``low, low + step, ..., high`` (both axes equal, or
    with probability ``per_axis`` drawn independently); reproducible from ``seed`` and ``iteration`` alone."""
    rng = random.Random(seed * 1_000_003 + iteration)
    count = int(round((high - low) / step)) + 1
    first = round(low + rng.randrange(count) * step, 6)
    second = round(low + rng.randrange(count) * step, 6) if rng.random() < per_axis else first
    return first, second


@MODEL_REGISTRY.register()
class IMLUTModel(TableCheckpoints, HatastSRModel):
    """BasicSR's SR model for IM-Net and IM-LUT tables (see the module docstring)."""

    def feed_data(self, data: dict) -> None:
        if "gt" in data:
            self.gt = data["gt"].to(self.device)
        if "lq" in data:
            self.lq = data["lq"].to(self.device)

    def _settings(self) -> dict:
        return dict(self.opt.get("imlut") or {})

    def _scales(self) -> dict:
        return {**DEFAULT_SCALES, **(self._settings().get("scales") or {})}

    def batch_scale(self, current_iter: int) -> tuple[float, float]:
        scales = self._scales()
        low, high = (float(v) for v in scales["range"])
        return draw_scale(self.opt.get("manual_seed") or 0, current_iter, low, high, float(scales["step"]),
                          float(scales["per_axis"]))

    def make_pair(self, scale: tuple[float, float]) -> None:
        """Crop the HR batch for ``scale`` and make its LR (8-bit MATLAB bicubic, as the benchmark sets)."""
        pixels = (self.gt * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        hr = [mod_crop(image, scale) for image in pixels]
        lr = [bicubic_downsample(np.ascontiguousarray(image), scale) for image in hr]
        to_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)  # noqa: E731
        self.gt, self.lq = to_tensor(hr).to(self.device), to_tensor(lr).to(self.device)

    def optimize_parameters(self, current_iter: int) -> None:
        self.scale = self.batch_scale(current_iter)
        self.make_pair(self.scale)
        self.optimizer_g.zero_grad()
        self.output, weights, images = self.net_g(self.lq, self.scale, tuple(self.gt.shape[-2:]), return_parts=True)
        loss_dict = OrderedDict()
        l_total = 0
        if self.cri_pix:
            loss_dict["l_pix"] = l_pix = self.cri_pix(self.output, self.gt)
            l_total = l_total + l_pix
        guide = dict(self._settings().get("guide") or {})
        weight = float(guide.get("lambda", 0.0))
        if weight > 0:
            pseudo = torch.softmax(-float(guide.get("beta", 100.0)) * (images - self.gt[:, :, None]).abs(), 2)
            loss_dict["l_guide"] = l_guide = weight * (weights - pseudo.detach()).abs().mean()
            l_total = l_total + l_guide
        self.finish_step(l_total, loss_dict)
        self._trained_iter = current_iter

    def test(self) -> None:
        if getattr(self, "gt", None) is not None:
            size = tuple(self.gt.shape[-2:])
            scale = (size[0] / self.lq.shape[-2], size[1] / self.lq.shape[-1])
        else:
            scale, size = float(self.opt["scale"]), None
        self.output = self.evaluate_with(lambda net: net(self.lq, scale, size))

    def tables(self) -> LUTFile:
        """The IM-LUT tables of the current weights (transferred from IM-Net, or the fine-tuned tables)."""
        net = self.get_bare_model(self.net_g_ema if hasattr(self, "net_g_ema") else self.net_g)
        if isinstance(net, IMNet):
            tables = net.to_tables(int(self._settings().get("interval", 4)))
        elif isinstance(net, IMLUT):
            tables = net.to_tables()
        else:
            raise ValueError(f"IMLUTModel trains IMNet or IMLUT, not {type(net).__name__} (network_g: type)")
        tables.info = {**tables.info, "experiment": self.opt["name"], "network_g": dict(self.opt["network_g"]),
                       "trained_scales": [float(v) for v in self._scales()["range"]]}
        return tables

