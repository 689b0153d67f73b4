"""SR-LUT receptive-field nets (V, F, S) and their transfer to a look-up table.

Each net sees only the pixels of its receptive field (1x2 for V, 1x3 for F, 2x2 for S): one convolution covering the
field, 1x1 convolutions with ReLU, and a pixel shuffle to an ``r x r`` patch. Every colour channel is its own grey
image. ``forward`` is the rotation ensemble the table computes at inference: the net on the four rotations, rotated
back, each clamped to [-1, 1] and scaled by 127/255 (an entry stores ``round(127 * clamp(out, -1, 1))`` and the table
sums four entries and divides by 255), so training, validation and the transferred table agree up to quantisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from ..lut.fields import RECEPTIVE_FIELDS, OutputLayout, receptive_field
from ..lut.table import VALUE_SCALE, LUTTable
from ..lut.transfer import transfer
from ..utils.checkpoint import tensor_shape
from .field_net import ReceptiveFieldNet, rotation_ensemble


@ARCH_REGISTRY.register()
class SRLUTNet(nn.Module):
    """SR-LUT net with the rotation ensemble: ``[B, C, H, W]`` in [0, 1] -> ``[B, C, H*r, W*r]``.

    Args:
        kind: receptive field, "V" (1x2), "F" (1x3) or "S" (2x2).
        upscale: scale factor r.
        num_feat: channels of the hidden 1x1 convolutions (64 in the paper).
        num_hidden: number of hidden 64->64 1x1 convolutions (4 in the paper).
    """

    def __init__(self, kind: str = "S", upscale: int = 4, num_feat: int = 64, num_hidden: int = 4) -> None:
        super().__init__()
        self.kind = receptive_field(kind).kind
        self.upscale = upscale
        self.net = ReceptiveFieldNet(receptive_field(kind), OutputLayout.patch(upscale), num_feat, num_hidden)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        out = rotation_ensemble(self.net, x.reshape(batch * channels, 1, height, width)) * (VALUE_SCALE / 255.0)
        return out.reshape(batch, channels, height * self.upscale, width * self.upscale)

    def to_table(self, interval: int = 4) -> LUTTable:
        """The int8 table: the net evaluated on every sampled input (levels 0, q, ..., 255) of its field."""
        field = self.net.field
        return transfer(self.net.table_function(), field, self.net.layout, interval, rotations=4, device=self.device)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def is_srlut_state_dict(state: Mapping[str, Tensor]) -> bool:
    """Whether ``state`` holds an :class:`SRLUTNet` (its first convolution reads one grey channel)."""
    first = state.get("net.body.0.weight")
    return first is not None and first.ndim == 4 and first.shape[1] == 1


def srlut_config_from_state_dict(state: Mapping[str, Tensor]) -> dict:
    """``SRLUTNet`` constructor arguments read from the tensor shapes."""
    first = tensor_shape(state, "net.body.0.weight", 4)
    # the layers that have a weight or a bias: a dropped last weight is named, not read as one layer fewer
    convs = sorted({int(k.split(".")[2]) for k in state if k.startswith("net.body.") and k.count(".") == 3
                    and k.split(".")[2].isdigit()})
    kinds = [name for name, f in RECEPTIVE_FIELDS.items() if f.kernel_shape == tuple(first[2:])]
    if not kinds:
        raise ValueError(f"first convolution {tuple(first[2:])} matches no SR-LUT receptive field")
    upscale = math.isqrt(tensor_shape(state, f"net.body.{convs[-1]}.weight", 4)[0])
    return {"kind": kinds[0], "upscale": upscale, "num_feat": first[0], "num_hidden": len(convs) - 2}
