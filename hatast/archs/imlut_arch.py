"""IM-Net: the train-time networks of IM-LUT (Park, Lee, Jin, Jung, ICCV 2025), arbitrary-scale SR by mixing
interpolations.

For an LR image and a scale ``(rh, rw)`` (any floats >= 1, one per axis):

1. the weight predictor (a 2x2 receptive-field net, per colour channel, with the rotation ensemble) gives ``K``
   weight maps at LR resolution, one per interpolation (``N`` nearest, ``L`` bilinear, ``C`` bicubic, ``Z``
   Lanczos-2; e.g. "NLC");
2. the scale modulator maps the scale (encoded as ``r`` and ``sin/cos(2**i * pi * r / 10)`` per axis) to ``K`` scale
   weights that multiply the maps; the scale is quantised to the grid the scale table will hold, so the net and
   its table see the same scales;
3. each map is resized to HR with its own interpolation, the ``K`` maps are normalised per pixel and mix the ``K``
   interpolated images. ``softmax`` makes a convex mix, which can never be sharper than its sharpest
   interpolation; ``sum`` shifts the signed weights equally until they sum to one (``w_k + (1 - sum w) / K``), so
   the mix can also extrapolate, e.g. bicubic pushed away from bilinear, which sharpens. With one weight set per LR
   pixel chosen knowing the ground truth, the best convex NLC mix reaches 28.98 dB on Set5 x4 and the best signed
   one 31.15 dB (bicubic 28.42; ``scripts/imlut_mixing_bound.py``);
4. the refiner (a 2x2 receptive-field net on the mixed HR image, 8-bit as its table will read it) adds a residual.

Every resize is :func:`hatast.data.degradations.resize_tensor` (MATLAB's rules, differentiable). Each of the three
predictors transfers to a table (:meth:`IMNet.to_tables`): weight (4 LR pixels -> K), refiner (4 HR pixels -> 1),
scale (quantised scale -> K).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from ..data.degradations import resize_tensor
from ..lut.fields import OutputLayout, receptive_field
from ..lut.imlut import (
    INTERPOLATIONS,
    NORMALISATIONS,
    SCALE_TABLE_MEANING,
    MixerSettings,
    ScaleGrid,
    check_model,
    output_geometry,
    warn_outside_training,
)
from ..lut.inference import apply_table
from ..lut.table import LUTFile, load_file
from ..lut.transfer import transfer
from ..utils.checkpoint import tensor_shape
from .field_net import ReceptiveFieldNet, rotation_ensemble
from .lut_arch import LUTLayer

LETTERS = "".join(INTERPOLATIONS)


class ScaleModulator(nn.Module):
    """``(rh, rw)`` -> ``K`` positive scale weights: the encoding ``[r, sin(2**i pi r / 10), cos(...)]`` per axis,
    two hidden layers with ReLU, softplus.

    Args:
        count: ``K``.
        frequencies: number of ``i`` in the encoding.
        hidden: width of the hidden layers.
    """

    def __init__(self, count: int, frequencies: int = 4, hidden: int = 64) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.body = nn.Sequential(nn.Linear(2 * (2 * frequencies + 1), hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                  nn.ReLU(), nn.Linear(hidden, count))

    def encode(self, scales: Tensor) -> Tensor:
        """``[N, 2]`` scales -> ``[N, 2 * (2F + 1)]`` features."""
        angles = scales[..., None] * (math.pi / 10) * (2.0 ** torch.arange(self.frequencies, device=scales.device))
        features = torch.cat([scales[..., None], torch.sin(angles), torch.cos(angles)], -1)
        return features.flatten(-2)

    def forward(self, scales: Tensor) -> Tensor:
        return nn.functional.softplus(self.body(self.encode(scales)))


class InterpolationMixer(nn.Module):
    """Steps 2-4 of IM-LUT, shared by the net (:class:`IMNet`) and its tables (:class:`IMLUT`): a subclass gives
    the three predictors (:meth:`weight_maps`, :meth:`scale_weights`, :meth:`refiner_sum`); this class modulates,
    resizes, normalises, mixes and refines.

    ``forward(x, scale, size=None, return_parts=False)``: ``x`` ``[B, C, H, W]`` in [0, 1]; ``scale`` one factor or
    ``(rh, rw)`` (the output is ``ceil(r * size)`` per axis, or ``size`` when given). With ``return_parts``:
    ``(output, weights [B, C, K, H', W'], interpolated [B, C, K, H', W'])`` for the guide loss.
    """

    letters: tuple[str, ...]
    grid: ScaleGrid
    normalise: str
    refiner_rotations: int
    refiner_range: float

    def configure(self, interpolations: str, normalise: str, refiner_rotations: int, refiner_range: float,
                  scale_grid: Mapping[str, float] | None) -> None:
        settings = MixerSettings.read({"interpolations": interpolations, "normalise": normalise,
                                       "refiner_rotations": refiner_rotations, "refiner_range": refiner_range,
                                       "scale_grid": dict(scale_grid or {})})
        self.letters, self.interpolations = settings.letters, "".join(settings.letters)
        self.normalise, self.refiner_rotations = settings.normalise, settings.refiner_rotations
        self.refiner_range, self.grid = settings.refiner_range, settings.grid

    def weight_maps(self, planes: Tensor) -> Tensor:
        """``[N, 1, H, W]`` in [0, 1] -> ``[N, K, H, W]``: the mean of the four rotations' clamped maps."""
        raise NotImplementedError

    def scale_weights(self, index: tuple[int, int], device: torch.device) -> Tensor:
        """``K`` weights for the scale at grid ``index`` (rows, columns)."""
        raise NotImplementedError

    def refiner_sum(self, pixels: Tensor) -> Tensor:
        """``[N, 1, H, W]`` 8-bit values in [0, 1] -> the refiner's rotation sum of clamped outputs."""
        raise NotImplementedError

    def forward(self, x: Tensor, scale: float | tuple[float, float] | Tensor, size: tuple[int, int] | None = None,
                return_parts: bool = False):
        batch, channels, height, width = x.shape
        planes = x.reshape(batch * channels, 1, height, width)
        size, factors = output_geometry(height, width, None if size is not None else scale, size)
        if not self.training:
            warn_outside_training(getattr(self, "info", {}), factors)
        target = dict(size=size, scale=factors)
        maps = self.weight_maps(planes)
        modulation = self.scale_weights(tuple(self.grid.index(v) for v in factors), x.device)
        maps = maps * modulation.to(maps.dtype)[:, None, None]
        images, weights = [], []
        for k, letter in enumerate(self.letters):  # image and map through the same interpolation, in one call
            both = resize_tensor(torch.cat([planes, maps[:, k : k + 1]], 1), kernel=INTERPOLATIONS[letter], **target)
            images.append(both[:, 0])
            weights.append(both[:, 1])
        images, weights = torch.stack(images, 1), torch.stack(weights, 1)  # [N, K, H', W']
        weights = self.normalised(weights)
        mixed = (weights * images).sum(1, keepdim=True)
        out = mixed + self.residual(mixed)
        out = out.reshape(batch, channels, *out.shape[-2:])
        if not return_parts:
            return out
        shape = (batch, channels, len(self.letters), *out.shape[-2:])
        return out, weights.reshape(shape), images.reshape(shape)

    def normalised(self, weights: Tensor) -> Tensor:
        """Per-pixel normalisation across the ``K`` maps (dim 1)."""
        if self.normalise == "softmax":
            return torch.softmax(weights, 1)
        return weights + (1 - weights.sum(1, keepdim=True)) / weights.shape[1]

    def residual(self, mixed: Tensor) -> Tensor:
        """The refiner's residual for ``[N, 1, H, W]`` mixed images, read as the 8-bit values its table sees
        (straight-through rounding)."""
        pixels = mixed.clamp(0, 1) * 255
        pixels = (pixels + (torch.floor(pixels + 0.5) - pixels).detach()) / 255  # half up, as the fused kernel
        return self.refiner_sum(pixels) * (self.refiner_range / self.refiner_rotations)

    def mixer_config(self) -> dict:
        return MixerSettings(self.letters, self.normalise, self.refiner_rotations, self.refiner_range,
                             self.grid).config()


@ARCH_REGISTRY.register()
class IMNet(InterpolationMixer):
    """IM-Net: ``[B, C, H, W]`` in [0, 1] and a scale -> ``[B, C, ceil(rh H), ceil(rw W)]`` (see
    :class:`InterpolationMixer` for the call).

    Args:
        interpolations: the mixed interpolations, letters of :data:`INTERPOLATIONS` ("NL", "NLC", "NLCZ").
        num_feat, num_hidden: width and hidden 1x1 layers of the weight predictor and of the refiner.
        frequencies, scale_hidden: the scale modulator's encoding and width.
        normalise: "softmax" or "sum" (see the module docstring).
        refiner_rotations: 4 (rotation ensemble) or 1 for the refiner; the weight predictor always uses 4.
        refiner_range: the largest residual the refiner adds, in [0, 1] intensity units.
        scale_grid: ``start``, ``stop``, ``step`` of the quantised scales (the scale table's grid).
    """

    def __init__(
        self,
        interpolations: str = "NLC",
        num_feat: int = 64,
        num_hidden: int = 4,
        frequencies: int = 4,
        scale_hidden: int = 64,
        normalise: str = "softmax",
        refiner_rotations: int = 4,
        refiner_range: float = 0.125,
        scale_grid: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.configure(interpolations, normalise, refiner_rotations, refiner_range, scale_grid)
        field = receptive_field("S")
        self.weight_net = ReceptiveFieldNet(field, OutputLayout.channels(len(self.letters), self.letters), num_feat,
                                            num_hidden)
        self.scale_net = ScaleModulator(len(self.letters), frequencies, scale_hidden)
        self.refiner = ReceptiveFieldNet(field, OutputLayout.channels(1), num_feat, num_hidden)
        # the settings shapes cannot tell, kept in the state dict so a bare checkpoint describes its model
        self.register_buffer("interpolation_ids", torch.tensor([LETTERS.index(c) for c in self.letters]))
        self.register_buffer("mixer_settings", torch.tensor(
            [NORMALISATIONS.index(normalise), refiner_rotations, refiner_range, *self.grid.config().values()],
            dtype=torch.float64))

    def weight_maps(self, planes: Tensor) -> Tensor:
        return rotation_ensemble(self.weight_net, planes) / 4

    def scale_weights(self, index: tuple[int, int], device: torch.device) -> Tensor:
        pair = torch.tensor([[self.grid.value(i) for i in index]], device=device)
        weights = self.scale_net(pair)[0]
        return weights + (weights.half().float() - weights).detach()  # the table stores float16

    def refiner_sum(self, pixels: Tensor) -> Tensor:
        return rotation_ensemble(self.refiner, pixels, self.refiner_rotations)

    @torch.no_grad()
    def to_tables(self, interval: int = 4) -> LUTFile:
        """The three tables of IM-LUT in one file: ``weight`` (int8, 4 LR pixels -> K), ``refiner`` (int8, 4 HR
        pixels -> 1) and the ``scale`` array (float16 ``[G, G, K]``: scale weights on the quantised grid)."""
        device = next(self.parameters()).device
        weight = transfer(self.weight_net.table_function(), self.weight_net.field, self.weight_net.layout, interval,
                          4, device=device)
        refiner = transfer(self.refiner.table_function(), self.refiner.field, self.refiner.layout, interval,
                           self.refiner_rotations, device=device)
        values = torch.tensor([self.grid.value(i) for i in range(self.grid.count)], device=device)
        pairs = torch.stack(torch.meshgrid(values, values, indexing="ij"), -1).reshape(-1, 2)
        scales = self.scale_net(pairs).reshape(self.grid.count, self.grid.count, -1).cpu().numpy()
        scales = scales.astype(np.float16)  # weights near 1 keep 3 significant digits: half the storage
        return LUTFile("imlut", {"weight": weight, "refiner": refiner}, {"scale": np.ascontiguousarray(scales)},
                       self.mixer_config(), array_meaning={"scale": SCALE_TABLE_MEANING})


def imnet_config_from_state_dict(state: Mapping[str, Tensor]) -> dict:
    """``IMNet`` constructor arguments: widths from the tensor shapes, the rest from its two settings buffers."""
    first = tensor_shape(state, "weight_net.body.0.weight", 4)
    scale_first = tensor_shape(state, "scale_net.body.0.weight", 2)
    convs = [k for k in state if k.startswith("weight_net.body.") and k.endswith(".weight")]
    ids = state["interpolation_ids"].tolist() if state["interpolation_ids"].ndim == 1 else None
    if ids is None or not all(isinstance(i, int) and 0 <= i < len(LETTERS) for i in ids):
        raise ValueError(f"'interpolation_ids' holds {state['interpolation_ids'].tolist()}: expected a list of "
                         f"indices from 0 to {len(LETTERS) - 1} (the letters {LETTERS})")
    settings = state["mixer_settings"].tolist() if state["mixer_settings"].shape == (6,) else []
    if len(settings) != 6 or settings[0] not in range(len(NORMALISATIONS)) or settings[1] not in (1, 4):
        raise ValueError(f"'mixer_settings' holds {state['mixer_settings'].tolist()}: expected [normalisation "
                         f"0..{len(NORMALISATIONS) - 1}, refiner rotations 1 or 4, range, grid start, stop, step]")
    normalise, rotations, span, start, stop, step = settings
    return {
        "interpolations": "".join(LETTERS[i] for i in ids),
        "num_feat": first[0],
        "num_hidden": len(convs) - 2,
        "frequencies": (scale_first[1] // 2 - 1) // 2,
        "scale_hidden": scale_first[0],
        "normalise": NORMALISATIONS[int(normalise)],
        "refiner_rotations": int(rotations),
        "refiner_range": span,
        "scale_grid": {"start": start, "stop": stop, "step": step},
    }


@ARCH_REGISTRY.register()
class IMLUT(InterpolationMixer):
    """IM-LUT's tables as a network (see :class:`InterpolationMixer` for the call): in evaluation the int8 weight
    and refiner tables run exactly (fused CPU kernel, torch elsewhere) with the float16 scale table; in training the
    entries are float parameters with straight-through rounding (LUT-aware fine-tuning, :class:`LUTLayer`) and the
    scale table a parameter rounded to float16 the same way.

    Args:
        lut_path: an IM-LUT table file (``IMNet.to_tables(...).save(path)``, ``hatast lut transfer``).
        fused: train through the fused CPU kernels when on CPU with numba.
    """

    def __init__(self, lut_path: str, fused: bool = True) -> None:
        super().__init__()
        loaded = load_file(lut_path)
        settings = check_model(loaded, str(lut_path))
        self.configure("".join(settings.letters), settings.normalise, settings.refiner_rotations,
                       settings.refiner_range, settings.grid.config())
        weight, refiner, scale = loaded.tables["weight"], loaded.tables["refiner"], loaded.arrays["scale"]
        self.weight_table = LUTLayer(weight, fused=fused)
        self.refiner_table = LUTLayer(refiner, fused=fused)
        self.scale_table = nn.Parameter(torch.from_numpy(scale.astype(np.float32)))
        self.info = loaded.info

    def _sums(self, layer: LUTLayer, pixels: Tensor) -> Tensor:
        """``[N, 1, H, W]`` in [0, 1] -> ``[N, m, H, W]`` rotation sums in value units (exact int8 in evaluation)."""
        values = (pixels.detach() * 255).round().clamp(0, 255).to(torch.uint8)
        if self.training:
            return layer(values)[:, 0]
        table = layer.table()
        sums = apply_table(table, values, backend="auto" if values.device.type == "cpu" else "torch")
        return sums[:, 0].to(pixels.dtype) / ((1 << table.interval) * table.value_scale)

    def weight_maps(self, planes: Tensor) -> Tensor:
        return self._sums(self.weight_table, planes) / 4

    def scale_weights(self, index: tuple[int, int], device: torch.device) -> Tensor:
        weights = self.scale_table[index]
        return weights + (weights.half().float() - weights).detach()

    def refiner_sum(self, pixels: Tensor) -> Tensor:
        return self._sums(self.refiner_table, pixels)

    def to_tables(self) -> LUTFile:
        """The tables these parameters store (int8 entries, float16 scale table)."""
        scales = self.scale_table.detach().cpu().numpy().astype(np.float16)
        return LUTFile("imlut", {"weight": self.weight_table.table(), "refiner": self.refiner_table.table()},
                       {"scale": scales}, self.mixer_config(), dict(self.info), {"scale": SCALE_TABLE_MEANING})
