"""What every command-line entry point shares: argument errors as one line, argument types with ranges, the device."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import HatastError, UsageError

if TYPE_CHECKING:  # imported when a device is resolved: commands that run on the CPU kernel never need torch
    import torch


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (``<prog>: error: ...``, exit status 2) instead of a usage block."""

    def error(self, message: str):  # noqa: D102
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def _number_text(value: float) -> str:
    """``1000000`` rather than ``1e+06`` for whole bounds; ``0.5``, ``1e+30`` otherwise."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _bound_text(low: float | None, high: float | None, above_low: bool = False) -> str:
    low_text, high_text = (None if v is None else _number_text(v) for v in (low, high))
    if above_low and low is not None:
        return f"above {low_text}" + (f" and at most {high_text}" if high is not None else "")
    if low is not None and high is not None:
        return f"from {low_text} to {high_text}"
    return f">= {low_text}" if low is not None else f"<= {high_text}"


def bounded(kind: type = float, low: float | None = None, high: float | None = None,
            above_low: bool = False) -> Callable[[str], int | float]:
    """An ``argparse`` type (also usable on its own): a finite number of ``kind`` (``int`` or ``float``) in
    ``[low, high]`` (``above_low``: ``low`` itself excluded); the range is in the error message. NaN and inf are
    never accepted (Python's ``float('nan')`` compares false with every bound)."""
    what = "a whole number" if kind is int else "a number"
    rule = _bound_text(low, high, above_low)

    def parse(text: str) -> int | float:
        try:
            value = int(text) if kind is int else float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what} {rule}, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and (value < low or (above_low and value == low))) or (
                high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what} {rule}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__}_{rule}"
    return parse


def check_range(name: str, value, kind: type = float, low: float | None = None, high: float | None = None,
                above_low: bool = False):
    """The same rule for a value that arrives from Python rather than a command line: :class:`UsageError` naming
    ``name`` and the range."""
    try:
        return bounded(kind, low, high, above_low)(str(value) if not isinstance(value, str) else value)
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"{name}: {err}") from None


def non_negative_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


MAX_SCALE = 16
"""The largest SR factor a command accepts (IM-LUT's tables are trained up to 8 and extrapolate above)."""
MAX_SIDE = 65535
"""The largest image side a command accepts as a target size (PNG and OpenCV's encoders stop here)."""


def non_negative_float(text: str) -> float:
    """An ``argparse`` type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def scale_factor(text: str) -> int | float | tuple[float, float]:
    """An ``argparse`` type: a factor >= 1 (``4``, ``2.5``) or ``ROWS,COLS`` factors (``1.5,2``); whole numbers stay
    integers, so fixed-scale models compare them exactly."""
    parts = text.split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a factor from 1 to {MAX_SCALE} such as 4 or 2.5, or ROWS,COLS "
                                         f"such as 1.5,2; got {text!r}") from None
    if len(values) > 2 or not all(1 <= v <= MAX_SCALE for v in values):
        raise argparse.ArgumentTypeError(f"factors must be from 1 to {MAX_SCALE} (one, or ROWS,COLS), got {text!r}")
    if len(values) == 2 and values[0] != values[1]:
        return values[0], values[1]
    return int(values[0]) if values[0].is_integer() else values[0]


def image_size(text: str) -> tuple[int, int]:
    """An ``argparse`` type: ``WIDTHxHEIGHT`` (``1920x1080``) -> ``(height, width)``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1920x1080, each from 1 to {MAX_SIDE}; got "
                                         f"{text!r}") from None
    if min(width, height) < 1 or max(width, height) > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"width and height must be from 1 to {MAX_SIDE}, got {text!r}")
    return height, width


class CropBox(argparse.Action):
    """``--box TOP LEFT H W`` (``nargs=4``, each value ``type=bounded(int, 0, MAX_SIDE)``): also refuses an empty box
    (H or W of 0), on one line with the range; whether it fits the image is checked where the image is read."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102
        if len(values) == 4 and min(values[2:]) < 1:
            parser.error(f"argument {option_string}: H and W must be whole numbers from 1 to {MAX_SIDE}, got "
                         f"{values[2]} and {values[3]}")
        setattr(namespace, self.dest, values)


def benchmark_scale(text: str) -> float | tuple[float, float]:
    """An ``argparse`` type: a benchmark set's scale as its folders name it (:func:`hatast.eval.sets.parse_scale`:
    ``4``, ``2.5``, ``1.5_2`` for rows_cols), each factor above 1 and at most :data:`MAX_SCALE`; the range is in the
    message."""
    from ..eval.sets import parse_scale

    rule = f"above 1 and at most {MAX_SCALE}"
    try:
        value = parse_scale(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a factor {rule} such as 4 or 2.5, or ROWS_COLS such as 1.5_2; got "
                                         f"{text!r}") from None
    if not all(math.isfinite(v) and v <= MAX_SCALE for v in (value if isinstance(value, tuple) else (value,))):
        raise argparse.ArgumentTypeError(f"factors must be {rule} (one, or ROWS_COLS), got {text!r}")
    return value


class DeviceError(HatastError):
    """A device that does not exist on this machine."""


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA, then MPS, then CPU) or an explicit device that this machine actually has."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"--device {name!r} is not a device (auto, cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise DeviceError(f"--device {name}: hatast runs on cpu, cuda or mps")
    return device
