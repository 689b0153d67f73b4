"""The receptive-field net, the building block of every look-up-table model (SR-LUT's V/F/S nets, IM-LUT's weight
predictor and refiner): a convolution covering the field, 1x1 convolutions with ReLU, and the outputs a table will
store (an ``r x r`` patch through a pixel shuffle, or ``m`` channels), so the net's output at a pixel depends only on
its field and the whole net transfers to a table (:func:`hatast.lut.transfer.transfer`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..lut.fields import OutputLayout, ReceptiveField
from ..lut.transfer import field_patches
from ..utils.padding import reflect_indices


class ReceptiveFieldNet(nn.Module):
    """One rotation of a table's net: ``[N, 1, H, W]`` in [0, 1] -> ``[N, 1, H*r, W*r]`` (patch layout) or
    ``[N, m, H, W]`` (channels), unclamped; the input is reflect-padded at the bottom/right so every pixel has its
    whole field.

    Args:
        field: the pixels each output depends on.
        layout: the outputs (what the table's rows hold).
        num_feat: channels of the hidden 1x1 convolutions (64 in SR-LUT).
        num_hidden: number of hidden ``num_feat -> num_feat`` 1x1 convolutions (4 in SR-LUT).
    """

    def __init__(self, field: ReceptiveField, layout: OutputLayout, num_feat: int = 64, num_hidden: int = 4) -> None:
        super().__init__()
        self.field, self.layout = field, layout
        layers: list[nn.Module] = [nn.Conv2d(1, num_feat, field.kernel_shape)]
        for _ in range(num_hidden):
            layers += [nn.ReLU(), nn.Conv2d(num_feat, num_feat, 1)]
        layers += [nn.ReLU(), nn.Conv2d(num_feat, layout.count, 1)]
        if layout.kind == "patch":
            layers.append(nn.PixelShuffle(layout.scale))
        self.body = nn.Sequential(*layers)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        extra_h, extra_w = (k - 1 for k in self.field.kernel_shape)
        rows = torch.from_numpy(reflect_indices(height, 0, extra_h)).to(x.device)
        cols = torch.from_numpy(reflect_indices(width, 0, extra_w)).to(x.device)
        return self.body(x.index_select(-2, rows).index_select(-1, cols))

    def table_function(self) -> Callable[[Tensor], Tensor]:
        """``[N, n]`` field values in [0, 1] -> ``[N, m]`` outputs in table order: what the transfer samples."""
        return lambda values: self.body(field_patches(values, self.field)).reshape(values.shape[0], -1)


def rotation_ensemble(net: nn.Module, planes: Tensor, rotations: int = 4) -> Tensor:
    """What a table computes: ``net`` on ``rotations`` rotations of ``[N, 1, H, W]`` planes, each result turned
    back and clamped to [-1, 1] (the range an int8 entry stores), summed."""
    total = 0
    for k in range(rotations):  # one rotation at a time: concatenating the four into one batch was slower on CPU
        total = total + torch.rot90(net(torch.rot90(planes, k, (2, 3))), -k, (2, 3)).clamp(-1, 1)
    return total
