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

from ..lut.fields import RECEPTIVE_FIELDS, receptive_field
from ..lut.lattice import levels
from ..lut.table import VALUE_SCALE, LUTTable
from ..utils.padding import reflect_indices


class ReceptiveFieldNet(nn.Module):
    """One rotation: ``[N, 1, H, W]`` in [0, 1] -> ``[N, 1, H*r, W*r]`` (unclamped), reflect-padding bottom/right so
    every pixel has its whole receptive field."""

    def __init__(self, kind: str = "S", upscale: int = 4, num_feat: int = 64, num_hidden: int = 4) -> None:
        super().__init__()
        self.field = receptive_field(kind)
        self.upscale = upscale
        layers: list[nn.Module] = [nn.Conv2d(1, num_feat, self.field.kernel_shape)]
        for _ in range(num_hidden):
            layers += [nn.ReLU(), nn.Conv2d(num_feat, num_feat, 1)]
        layers += [nn.ReLU(), nn.Conv2d(num_feat, upscale * upscale, 1), nn.PixelShuffle(upscale)]
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
        self.net = ReceptiveFieldNet(kind, upscale, num_feat, num_hidden)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        planes = x.reshape(batch * channels, 1, height, width)
        total = 0
        for k in range(4):  # one rotation at a time: concatenating the four into one batch was slower on CPU
            out = self.net(torch.rot90(planes, k, (2, 3)))
            total = total + torch.rot90(out, -k, (2, 3)).clamp(-1, 1)
        out = total * (VALUE_SCALE / 255.0)
        return out.reshape(batch, channels, height * self.upscale, width * self.upscale)

    @torch.no_grad()
    def to_table(self, interval: int = 4, batch_size: int = 65536) -> LUTTable:
        """Evaluate the net on every sampled input (levels 0, q, ..., 255) and store int8 entries."""
        field = self.net.field
        count = levels(interval)
        base = torch.arange(count, device=self.device) * (1 << interval)
        base[-1] = 255
        grids = torch.meshgrid(*([base] * field.size), indexing="ij")  # first input = most significant digit
        values = torch.stack([g.reshape(-1) for g in grids], -1).float() / 255.0
        height, width = field.kernel_shape
        rows = []
        for chunk in values.split(batch_size):
            patch = torch.zeros(chunk.shape[0], 1, height, width, device=self.device)
            for j, (dy, dx) in enumerate(field.offsets):
                patch[:, 0, dy, dx] = chunk[:, j]
            out = self.net.body(patch)  # the whole field is inside the patch: exactly one output pixel
            rows.append(torch.round(out.clamp(-1, 1) * VALUE_SCALE).reshape(chunk.shape[0], -1))
        entries = torch.cat(rows).to(torch.int8).cpu().numpy()
        return LUTTable(self.kind, self.upscale, interval, entries)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def is_srlut_state_dict(state: Mapping[str, Tensor]) -> bool:
    """Whether ``state`` holds an :class:`SRLUTNet` (its first convolution reads one grey channel)."""
    first = state.get("net.body.0.weight")
    return first is not None and first.ndim == 4 and first.shape[1] == 1


def srlut_config_from_state_dict(state: Mapping[str, Tensor]) -> dict:
    """``SRLUTNet`` constructor arguments read from the tensor shapes."""
    first = state["net.body.0.weight"]
    convs = sorted(int(k.split(".")[2]) for k in state if k.startswith("net.body.") and k.endswith(".weight"))
    kinds = [name for name, f in RECEPTIVE_FIELDS.items() if f.kernel_shape == tuple(first.shape[2:])]
    if not kinds:
        raise ValueError(f"first convolution {tuple(first.shape[2:])} matches no SR-LUT receptive field")
    upscale = math.isqrt(state[f"net.body.{convs[-1]}.weight"].shape[0])
    return {"kind": kinds[0], "upscale": upscale, "num_feat": first.shape[0], "num_hidden": len(convs) - 2}
