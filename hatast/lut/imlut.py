"""IM-LUT's tables at inference, on numpy and the fused CPU kernels (no torch): weight table on the LR image, scale
table at the quantised scale, mixing (:mod:`.mixing`), refiner table on the mixed HR image. Also what the net and
the tables share: the interpolations, the normalisations, the scale grid and the scale/size rules.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from . import cpu_kernel, mixing
from .table import LUTError, LUTFile

INTERPOLATIONS = {"N": "nearest", "L": "bilinear", "C": "bicubic", "Z": "lanczos2"}
"""Letter -> :data:`hatast.data.degradations.KERNELS` entry."""
NORMALISATIONS = ("softmax", "sum")
SCALE_TABLE_MEANING = "scale weights [row scale index, column scale index, K] on config.scale_grid"
MAX_GRID = 10_000
"""The most steps a scale grid may have (IM-LUT's own: 70)."""


def parse_interpolations(letters: str) -> tuple[str, ...]:
    """"NLC" -> ("N", "L", "C"), with a clear error for unknown or repeated letters."""
    if not isinstance(letters, str) or not letters:
        raise LUTError(f"interpolations must be letters from {''.join(INTERPOLATIONS)}, got {letters!r}")
    unknown = sorted(set(letters.upper()) - set(INTERPOLATIONS))
    if unknown or len(set(letters.upper())) != len(letters):
        known = ", ".join(f"{k} ({v})" for k, v in INTERPOLATIONS.items())
        raise LUTError(f"interpolations {letters!r}: use each of {known} at most once")
    return tuple(letters.upper())


def scale_pair(scale) -> tuple[float, float]:
    """One scale or ``(rh, rw)`` (numbers, or a tensor) -> ``(rh, rw)`` floats, refusing non-finite values and scales
    below 1."""
    if hasattr(scale, "tolist"):
        scale = scale.tolist()
    try:
        values = tuple(float(v) for v in scale) if isinstance(scale, (tuple, list)) else (float(scale),) * 2
    except (TypeError, ValueError):
        values = ()
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(math.isfinite(v) for v in values) or min(values) < 1:
        raise LUTError(f"scale must be finite and >= 1 (one value, or rows and columns), got {scale!r}")
    return values


def output_geometry(height: int, width: int, scale=None,
                    size: tuple[int, int] | None = None) -> tuple[tuple[int, int], tuple[float, float]]:
    """HR ``(H, W)`` and the per-axis factors for a scale (``ceil(r * size)``, MATLAB's rule) or a target size (no
    smaller than the input)."""
    if (scale is None) == (size is None):
        raise LUTError("give a scale or a target size")
    if size is not None:
        out_h, out_w = (int(v) for v in size)
        if out_h < height or out_w < width:
            raise LUTError(f"target size {out_w}x{out_h} is smaller than the {width}x{height} input")
        return (out_h, out_w), (out_h / height, out_w / width)
    factors = scale_pair(scale)
    return (math.ceil(factors[0] * height - 1e-9), math.ceil(factors[1] * width - 1e-9)), factors


class ScaleGrid:
    """The scales the scale table holds: ``start, start + step, ...`` up to ``stop`` on each axis; a scale is
    quantised to the nearest (and clamped into the grid above ``stop``)."""

    def __init__(self, start: float = 1.0, stop: float = 8.0, step: float = 0.1) -> None:
        values = (start, stop, step)
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values) or \
                not (1 <= start < stop and step > 0) or not (stop - start) / step <= MAX_GRID:
            raise LUTError(f"scale grid needs numbers 1 <= start < stop and step > 0, with at most {MAX_GRID} steps; "
                           f"got start {start!r}, stop {stop!r}, step {step!r}")
        self.start, self.stop, self.step = float(start), float(stop), float(step)
        self.count = int(round((stop - start) / step)) + 1

    def index(self, value: float) -> int:
        return min(max(int(round((value - self.start) / self.step)), 0), self.count - 1)

    def value(self, index: int) -> float:
        return self.start + index * self.step

    def quantise(self, value: float) -> float:
        return self.value(self.index(value))

    def config(self) -> dict:
        return {"start": self.start, "stop": self.stop, "step": self.step}


@dataclass
class MixerSettings:
    """The settings of an IM-LUT model (a table file's ``config``), checked."""

    letters: tuple[str, ...]
    normalise: str
    refiner_rotations: int
    refiner_range: float
    grid: ScaleGrid

    @classmethod
    def read(cls, config: dict) -> MixerSettings:
        letters = parse_interpolations(config["interpolations"])
        normalise, rotations, span = config["normalise"], config["refiner_rotations"], config["refiner_range"]
        if not isinstance(span, numbers.Real) or isinstance(span, bool):
            raise LUTError(f"refiner_range must be a number in (0, 1], got {span!r}")
        if normalise not in NORMALISATIONS:
            raise LUTError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
        if not isinstance(rotations, numbers.Integral) or isinstance(rotations, bool) or rotations not in (1, 4):
            raise LUTError(f"refiner_rotations must be 1 or 4, got {rotations!r}")
        if not 0 < span <= 1:
            raise LUTError(f"refiner_range must be in (0, 1], got {span!r}")
        grid = config["scale_grid"]
        if not isinstance(grid, dict):
            raise LUTError(f"scale_grid must be an object with start, stop and step, got {grid!r}")
        return cls(letters, normalise, int(rotations), float(span), ScaleGrid(**grid))

    def config(self) -> dict:
        return {"interpolations": "".join(self.letters), "normalise": self.normalise,
                "refiner_rotations": self.refiner_rotations, "refiner_range": self.refiner_range,
                "scale_grid": self.grid.config()}


def check_model(model: LUTFile, where: str = "") -> MixerSettings:
    """The settings of an IM-LUT table file, with every table and array the right shape; :class:`LUTError`
    otherwise."""
    where = where or "IM-LUT file"
    if model.family != "imlut" or {"weight", "refiner"} - set(model.tables) or "scale" not in model.arrays:
        raise LUTError(f"{where}: not an IM-LUT table file (family {model.family!r}, tables {sorted(model.tables)}, "
                       f"arrays {sorted(model.arrays)})")
    try:
        settings = MixerSettings.read(model.config)
    except (KeyError, TypeError, ValueError) as err:
        raise LUTError(f"{where}: IM-LUT config incomplete or invalid ({err})") from None
    weight, refiner, scale = model.tables["weight"], model.tables["refiner"], model.arrays["scale"]
    count, grid = len(settings.letters), settings.grid.count
    if (weight.layout.kind, weight.layout.count, refiner.layout.kind, refiner.layout.count) != (
            "channels", count, "channels", 1) or scale.shape != (grid, grid, count):
        raise LUTError(f"{where}: tables do not fit interpolations {''.join(settings.letters)!r} and the scale grid "
                       f"({weight.layout.count} weights, {refiner.layout.count} refiner values, scale table "
                       f"{list(scale.shape)})")
    if refiner.rotations != settings.refiner_rotations or weight.rotations != 4:
        raise LUTError(f"{where}: rotations: weight table {weight.rotations} (needs 4), refiner table "
                       f"{refiner.rotations} (config says {settings.refiner_rotations})")
    return settings


def warn_outside_training(info: dict, factors: tuple[float, float]) -> None:
    """Warn (once per message) when a factor lies above the scales the tables were trained at (``info``'s
    ``trained_scales``, written by training): it still runs, extrapolating the scale table."""
    trained = info.get("trained_scales")
    if isinstance(trained, list) and len(trained) == 2 and max(factors) > float(trained[1]) + 1e-9:
        warnings.warn(f"scale {max(factors):g} is above the range these IM-LUT tables were trained at "
                      f"({trained[0]:g}-{trained[1]:g}); the result extrapolates", stacklevel=3)


def weight_maps(model: LUTFile, planes: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """Stage 1: the weight table on ``[P, h, w]`` uint8 LR planes (rotation ensemble, mean of the four) times the
    scale table's weights at the quantised ``factors``: ``[P, K, h, w]`` float32."""
    settings = check_model(model)
    weight = model.tables["weight"]
    sums = cpu_kernel.ensemble(planes, weight.entries, weight.field, weight.layout, weight.interval, 4)
    modulation = model.arrays["scale"][tuple(settings.grid.index(v) for v in factors)].astype(np.float32)
    step = modulation / np.float32((1 << weight.interval) * weight.value_scale * 4)
    return np.multiply(sums, step[None, :, None, None], dtype=np.float32)  # one pass, no float64 copy


def mix(model: LUTFile, planes: np.ndarray, maps: np.ndarray, size: tuple[int, int],
        factors: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2: each plane and map resized by its interpolation to HR ``size``, the maps normalised, the mix:
    ``(mixed [P, H, W] float32, its 8-bit pixels)`` (:func:`hatast.lut.mixing.mix`)."""
    settings = check_model(model)
    kernels = tuple(INTERPOLATIONS[letter] for letter in settings.letters)
    return mixing.mix(planes.astype(np.float32) / 255, maps, kernels, size, factors, settings.normalise == "softmax")


def refine(model: LUTFile, mixed: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Stage 3: the refiner table on the mixed 8-bit pixels, its residual added to the float mix, rounded:
    ``[H, W, P]`` uint8."""
    settings = check_model(model)
    refiner = model.tables["refiner"]
    step = settings.refiner_range / settings.refiner_rotations / ((1 << refiner.interval) * refiner.value_scale)
    return cpu_kernel.ensemble(pixels, refiner.entries, refiner.field, refiner.layout, refiner.interval,
                               refiner.rotations, onto=(mixed, step))


def upscale(model: LUTFile, image: np.ndarray, scale=None, size: tuple[int, int] | None = None) -> np.ndarray:
    """IM-LUT on an 8-bit image through the fused CPU kernels (:func:`weight_maps`, :func:`mix`, :func:`refine`).

    Args:
        model: an IM-LUT table file (:func:`hatast.lut.table.load_file`).
        image: ``[H, W]`` or ``[H, W, C]`` uint8; every channel is its own grey image.
        scale: one factor or ``(rh, rw)``, >= 1 (1 runs the refiner only); or ``size``: the HR ``(height, width)``.

    Returns:
        uint8 of the input's layout, ``ceil(r * size)`` per axis (or ``size``).
    """
    from .inference import check_image

    check_model(model)
    grey = image.ndim == 2 if isinstance(image, np.ndarray) else False
    image = check_image(image)
    height, width, _ = image.shape
    try:
        out_size, factors = output_geometry(height, width, scale, size)
    except ValueError as err:
        raise LUTError(str(err)) from None
    warn_outside_training(model.info, factors)
    planes = np.ascontiguousarray(image.transpose(2, 0, 1))
    mixed, pixels = mix(model, planes, weight_maps(model, planes, factors), out_size, factors)
    out = refine(model, mixed, pixels)
    return out[..., 0] if grey else out
