"""USRNetModel: trains and tests USRNet on (LR, kernel, noise level, scale) batches."""

from __future__ import annotations

import random
from collections import OrderedDict

import torch
from basicsr.utils.registry import MODEL_REGISTRY
from torch import nn

from .base import HatastSRModel


@MODEL_REGISTRY.register()
class USRNetModel(HatastSRModel):
    """BasicSR's SR model for networks that take ``(lq, kernel, sigma, scale)``.

    Training batches from :class:`~hatast.data.blur_dataset.BlurDownsampleNoiseDataset` carry the LR at every
    training scale; each iteration uses one, drawn from ``manual_seed`` and the iteration number, so a resumed run
    sees the scales an uninterrupted one would. Validation batches carry their own ``lq`` and ``scale``.
    """

    def feed_data(self, data: dict) -> None:
        self.gt = data["gt"].to(self.device)
        self.kernel = data["kernel"].to(self.device)
        self.sigma = data["sigma"].to(self.device)
        if "lq" in data:
            self.lq = data["lq"].to(self.device)
            self.scale = int(data["scale"][0])
            self._lq_by_scale = None
        else:
            self._lq_by_scale = {int(key.removeprefix("lq_x")): value for key, value in data.items()
                                 if key.startswith("lq_x")}

    def batch_scale(self, current_iter: int) -> int:
        """The scale of the batch of iteration ``current_iter``: reproducible and independent of resumption."""
        scales = sorted(self._lq_by_scale)
        return random.Random((self.opt.get("manual_seed") or 0) * 1_000_003 + current_iter).choice(scales)

    def run(self, net: nn.Module) -> torch.Tensor:
        """Validation/test forward (tiled when the options ask; USRNet tiles approximately: its FFT step is
        global)."""
        return self.inference(net, self.lq, dict(kernel=self.kernel, sigma=self.sigma, scale=self.scale), self.scale)

    def optimize_parameters(self, current_iter: int) -> None:
        if self._lq_by_scale is not None:
            self.scale = self.batch_scale(current_iter)
            self.lq = self._lq_by_scale[self.scale].to(self.device)
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq, self.kernel, self.sigma, self.scale)
        loss_dict = OrderedDict()
        l_total = 0
        if self.cri_pix:
            loss_dict["l_pix"] = l_pix = self.cri_pix(self.output, self.gt)
            l_total = l_total + l_pix
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output, self.gt)
            for name, value in (("l_percep", l_percep), ("l_style", l_style)):
                if value is not None:
                    loss_dict[name] = value
                    l_total = l_total + value
        self.finish_step(l_total, loss_dict)

    def test(self) -> None:
        self.output = self.evaluate_with(self.run)
