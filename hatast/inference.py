"""Running any weights file hatast reads on an image: a look-up table (``.npz``, the SR-LUT authors' ``.npy``) or
a checkpoint whose architecture is recognised from its keys. Used by ``hatast upscale`` and ``hatast bench``.

Tables run without importing torch (the fused CPU kernel); networks import it when one is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .lut.inference import upscale as lut_upscale
from .lut.table import LUTTable, load_table
from .utils.image import Image

if TYPE_CHECKING:
    import torch

    from .archs.descriptor import ModelDescriptor

LUT_SUFFIXES = (".npz", ".npy")


class UpscaleError(RuntimeError):
    """One image could not be upscaled (out of memory, a failed tile); the batch goes on."""


def is_table(weights: str) -> bool:
    return Path(weights).suffix.lower() in LUT_SUFFIXES


@dataclass
class Upscaler:
    """A table or a network, ready to upscale :class:`Image` objects."""

    label: str
    table: LUTTable | None = None
    model: ModelDescriptor | None = None
    """A network, recognised from its keys (:func:`hatast.archs.detect.detect`), with what running it takes."""

    @classmethod
    def load(cls, weights: str, param_key: str | None, device: torch.device | str) -> Upscaler:
        if is_table(weights):
            table = load_table(weights)
            return cls(f"SR-LUT {table.kind} table x{table.scale} from {weights}", table=table)
        from .archs.detect import detect
        from .utils.checkpoint import load_into, read_state_dict

        state, entry = read_state_dict(weights, param_key)
        model = detect(state)
        load_into(model.network, state, strict=True, source=weights)
        model.network.to(device).eval()
        return cls(f"{model.name} x{model.scale} from {weights} [{entry}]", model=model)

    @property
    def scale(self) -> int:
        return self.table.scale if self.table is not None else int(self.model.scale)

    def __call__(self, image: Image, tile: int, tile_pad: int, device: torch.device | str,
                 self_ensemble: bool = False):
        """The upscaled colour: ``[H*s, W*s, 3]`` BGR integers (table) or ``[1, 3, H*s, W*s]`` float RGB (network).

        ``self_ensemble``: networks average their outputs over the eight flips and rotations of the input (x8, the
        "+" rows of SR papers); tables always apply their rotation ensemble.

        Raises :class:`UpscaleError` when this image cannot be done (memory, a tile), anything else for a bug.
        """
        if self.table is not None:
            pixels = image.bgr
            if image.max_value > 255:  # tables read 8-bit values
                pixels = (pixels / 257).round().astype(np.uint8)
            try:
                out = lut_upscale(self.table, pixels, device=device)  # channels are independent: BGR in, BGR out
            except MemoryError:
                raise UpscaleError("out of memory") from None
            return out.astype(np.uint16) * 257 if image.max_value > 255 else out
        import torch

        from .utils.tiling import TileError, is_out_of_memory, tiled_forward

        try:
            with torch.inference_mode():
                lq = image.tensor().to(device)
                if tile:
                    def forward(x):
                        return tiled_forward(self.model, x, self.scale, tile, tile_pad, self.model.size_multiple)
                else:
                    forward = self.model
                return geometric_ensemble(forward, lq) if self_ensemble else forward(lq)
        except TileError as err:
            raise UpscaleError(str(err)) from None
        except (RuntimeError, MemoryError) as err:
            if not is_out_of_memory(err):
                raise  # a bug, not a property of this image: show it whole
            raise UpscaleError("out of memory" + ("" if tile else " (try --tile 256)")) from None


def geometric_ensemble(forward, x: torch.Tensor) -> torch.Tensor:
    """The mean of ``forward`` over the eight flips and 90-degree rotations of ``x`` ``[B, C, H, W]``, each output
    turned back (accumulated one at a time: memory of two outputs, not eight)."""
    import torch

    total = None
    for k in range(4):
        for flip in (False, True):
            t = torch.rot90(x, k, (2, 3))
            t = t.flip(3) if flip else t
            y = forward(t)
            y = y.flip(3) if flip else y
            y = torch.rot90(y, -k, (2, 3))
            total = y if total is None else total.add_(y)
    return total.div_(8)
