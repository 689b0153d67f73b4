"""ONNX export of a network with dynamic batch, height and width, checked against PyTorch before it is written.

The exporter is PyTorch's ``torch.onnx.export(..., dynamo=True)``: :func:`torch.export.export` traces the network
with symbolic sizes, so every size-dependent step (HAT's padding to the window, window partition, the shifted-window
mask; USRNet's FFT sizes and kernel placement) is computed in the graph from the runtime input size instead of being
frozen at the traced size. The few steps that eager PyTorch does differently for speed (caches keyed by the size,
mask windows chosen with ``nonzero``, fused CPU kernels) take an equivalent tensor-only path while
:func:`torch.compiler.is_exporting` is true. The TorchScript exporter (``dynamo=False``) is not used: it records
Python-side sizes as constants.

The graph's inputs and output:

* ``lq`` ``[batch, C, height, width]`` float32 in [0, 1] (any size >= 1, not only multiples of the window);
* USRNet also ``kernel`` ``[1, 1, kh, kw]`` (any kernel size; normalised to sum to one in the graph) and ``sigma``
  ``[1]`` (noise level in [0, 1] units); its scale is fixed at export;
* ``sr`` ``[batch, C, s * height, s * width]``.

USRNet's Fourier data step runs in float64 inside the graph: onnxruntime's DFT of lengths other than powers of two
loses too much precision in float32 (differences near 1e-4 from PyTorch; about 1e-6 in float64).

Before anything is written, onnxruntime (CPU) runs the graph at sizes that are not multiples of the window and its
outputs are compared with PyTorch's; the file is written atomically only when they agree. ``onnx``, ``onnxscript``
and ``onnxruntime`` are optional dependencies, imported when an export runs.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from .archs.descriptor import ModelDescriptor
from .utils.errors import HatastError
from .utils.files import write_bytes_atomic

if TYPE_CHECKING:  # optional packages, imported when an export runs
    import onnx

DEFAULT_OPSET = 18
"""The opset the exporter's ONNX functions are written for (lower ones need a version conversion that can fail)."""
DEFAULT_CHECK_SIZES = ((13, 21), (30, 17))
"""``(height, width)`` of the inputs the export is checked at: not multiples of any window larger than 1 in at least
one dimension, so the padding is exercised; the second check runs a batch of two."""
DEFAULT_TOLERANCE = 1e-4
"""Largest absolute difference between onnxruntime's and PyTorch's outputs (images in [0, 1]) that passes."""
EXPORTABLE = ("HAT", "HATAST", "USRNet")
_NOT_EXPORTED = {
    "SRLUTNet": "an SR-LUT net is run as its look-up table: transfer it with 'hatast lut transfer' and run the "
                "table file",
    "IMNet": "IM-Net's arbitrary-scale resampling is built in Python per output size; transfer it to IM-LUT tables "
             "with 'hatast lut transfer' and run the table file",
}
_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


class ExportError(HatastError):
    """A model that cannot be exported, a missing package, or an export whose output differs from PyTorch's."""


@dataclass(frozen=True)
class ExportCheck:
    """One comparison of onnxruntime with PyTorch: the input ``[batch, C, height, width]`` and the largest
    absolute difference of the outputs."""

    batch: int
    height: int
    width: int
    max_abs_diff: float


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote: the file, its opset, its inputs and output (``name [dims]``, as the file
    names them) and the checks it passed."""

    path: Path
    opset: int
    scale: int
    inputs: tuple[str, ...]
    output: str
    checks: tuple[ExportCheck, ...]
    size_bytes: int


def check_opset(opset: int) -> None:
    """Refuse opsets below :data:`DEFAULT_OPSET`: PyTorch's exporter writes 18 and converts down, and the
    conversion fails on these networks (LayerNormalization, reductions with axes inputs)."""
    if opset < DEFAULT_OPSET:
        raise ExportError(f"--opset {opset}: PyTorch's ONNX exporter writes opset {DEFAULT_OPSET} or later (its "
                          f"conversion to older opsets fails on these networks)")


def require_onnx() -> None:
    """Raise :class:`ExportError` naming the packages an export needs that are not installed."""
    missing = []
    for name in _PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ExportError(f"ONNX export needs {', '.join(_PACKAGES)} (missing: {', '.join(missing)}): "
                          f"pip install {' '.join(_PACKAGES)}")


def export_scale(model: ModelDescriptor, scale: int | None) -> int:
    """The scale the exported graph upscales by: the network's own, or for networks that take the scale as an input
    (USRNet) the one asked for, which the graph then fixes. Raises :class:`ExportError` for a model that cannot be
    exported or a scale that does not fit it."""
    if model.name not in EXPORTABLE:
        reason = _NOT_EXPORTED.get(model.name, "hatast exports only " + ", ".join(EXPORTABLE))
        raise ExportError(f"{model.name} cannot be exported to ONNX: {reason}")
    if isinstance(model.scale, int):
        if scale is not None and scale != model.scale:
            raise ExportError(f"--scale {scale}: {model.name} upscales by x{model.scale} only")
        return model.scale
    if scale is None:
        raise ExportError(f"{model.name} takes the scale as an input: give --scale (one of "
                          f"{', '.join(map(str, model.scale))}); the exported graph is fixed to it")
    if scale not in model.scale:
        raise ExportError(f"--scale {scale}: {model.name} runs at scales {', '.join(map(str, model.scale))}")
    return scale


class _FixedScale(nn.Module):
    """A kernel-aware network with its scale bound: ``(lq, kernel, sigma) -> sr``, the graph's signature."""

    def __init__(self, network: nn.Module, scale: int) -> None:
        super().__init__()
        self.network = network
        self.scale = scale

    def forward(self, lq: Tensor, kernel: Tensor, sigma: Tensor) -> Tensor:
        return self.network(lq, kernel=kernel, sigma=sigma, scale=self.scale)


def _channels(model: ModelDescriptor) -> int:
    """Image channels the network reads and writes."""
    net = model.network
    return net.p.m_tail.out_channels if model.name == "USRNet" else net.in_chans


def _inputs(model: ModelDescriptor, batch: int, height: int, width: int, kernel_size: tuple[int, int],
            seed: int) -> dict[str, Tensor]:
    """Random inputs of the graph, by name: ``lq`` in [0, 1]; for USRNet a blur kernel of ``kernel_size`` (positive,
    summing to one) and a noise level."""
    g = torch.Generator().manual_seed(seed)
    inputs = {"lq": torch.rand(batch, _channels(model), height, width, generator=g)}
    if "kernel" in model.extra_inputs:
        kernel = torch.rand(1, 1, *kernel_size, generator=g) + 0.1
        inputs["kernel"] = kernel / kernel.sum()
        inputs["sigma"] = torch.tensor([0.01])
    return inputs


@contextlib.contextmanager
def _quiet_logs(*names: str) -> Iterator[None]:
    """Hold the exporter's log records below ERROR (its version converter logs a traceback when it cannot reach an
    opset, which the opset check then reports in one line)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _trace(model: ModelDescriptor, scale: int, opset: int) -> torch.onnx.ONNXProgram:
    """``torch.onnx.export`` with dynamic batch, height and width (and USRNet's kernel size)."""
    from torch.export import Dim

    # torch.export treats an example dimension of 1 as a constant: every dynamic example size is >= 2
    example = _inputs(model, 2, model.size_multiple + 3, 2 * model.size_multiple + 5, (5, 7), seed=0)
    image = {0: Dim("batch", min=1), 2: Dim("height", min=1), 3: Dim("width", min=1)}
    if "kernel" in model.extra_inputs:
        module = _FixedScale(model.network, scale).eval()
        dynamic = {"lq": image, "kernel": {2: Dim("kernel_height", min=1), 3: Dim("kernel_width", min=1)},
                   "sigma": None}
    else:
        module, dynamic = model.network, {"x": image}
    args = tuple(example.values())
    with torch.no_grad(), _quiet_logs("torch.onnx", "torch.export", "onnxscript"):
        try:
            return torch.onnx.export(module, args, dynamo=True, opset_version=opset, input_names=list(example),
                                     output_names=["sr"], dynamic_shapes=dynamic, verbose=False)
        except Exception as err:  # noqa: BLE001  (the exporter raises its own error types, with long reports)
            cause = err
            while cause.__cause__ is not None:  # the exporter wraps the error that says what failed
                cause = cause.__cause__
            lines = str(cause).strip().splitlines()
            raise ExportError(f"{model.name}: the ONNX exporter failed ({type(cause).__name__}: "
                              f"{lines[0][:300] if lines else 'no detail'})") from err


def export_onnx(
    model: ModelDescriptor,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    scale: int | None = None,
    check_sizes: Sequence[tuple[int, int]] = DEFAULT_CHECK_SIZES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportReport:
    """Export ``model`` (a CPU float32 network in eval mode) to the ONNX file ``path``, checked by onnxruntime.

    Args:
        opset: ONNX opset of the file; 18 by default (the opset PyTorch's exporter writes its functions for; lower
            ones are converted and refused when the conversion fails).
        scale: for networks that take the scale as an input (USRNet): the scale the graph is fixed to.
        check_sizes: ``(height, width)`` of the LR inputs compared with PyTorch (batch 1, the last one batch 2),
            best not multiples of ``model.size_multiple``.
        tolerance: largest absolute output difference that passes.
    Returns:
        The report: the opset, the inputs and the measured differences.
    Raises:
        ExportError: the model cannot be exported, a package is missing, or a check exceeds ``tolerance`` (nothing
            is written then).
    """
    scale = export_scale(model, scale)
    check_opset(opset)
    if not check_sizes:
        raise ExportError("give at least one size to check the export at")
    require_onnx()
    import onnx
    import onnxruntime

    parameter = next(model.network.parameters())
    if parameter.device.type != "cpu" or parameter.dtype != torch.float32 or model.network.training:
        raise ExportError("export a CPU float32 network in eval mode")
    program = _trace(model, scale, opset)
    proto = program.model_proto
    written = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if written != opset:  # the exporter writes 18 and converts, keeping 18 when the conversion fails
        raise ExportError(f"--opset {opset}: the exporter could not convert its graph to opset {opset} (it stays "
                          f"at {written}); choose a lower opset ({DEFAULT_OPSET}, the default, always works)")
    channels = _channels(model)
    dims = ("batch", channels, f"{scale}*height", f"{scale}*width")
    for dim, value in zip(proto.graph.output[0].type.tensor_type.shape.dim, dims):  # readable names, not sympy's
        dim.Clear()
        if isinstance(value, int):
            dim.dim_value = value
        else:
            dim.dim_param = value
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    checks = []
    kernel_sizes = ((7, 7), (5, 9))  # the kernel size is dynamic too: check two
    for i, (height, width) in enumerate(check_sizes):
        batch = 2 if i == len(check_sizes) - 1 else 1
        inputs = _inputs(model, batch, height, width, kernel_sizes[i % 2], seed=i + 1)
        extra = {name: value for name, value in inputs.items() if name != "lq"}
        if "scale" in model.extra_inputs:
            extra["scale"] = scale
        with torch.no_grad():
            expected = model(inputs["lq"], **extra).numpy()
        (got,) = session.run(["sr"], {k: v.numpy() for k, v in inputs.items()})
        if got.shape != expected.shape:
            raise ExportError(f"onnxruntime's output at {height}x{width} is {list(got.shape)}, PyTorch's "
                              f"{list(expected.shape)}")
        checks.append(ExportCheck(batch, height, width, float(np.abs(got - expected).max())))
    for check in checks:
        if not check.max_abs_diff <= tolerance:  # NaN fails too
            raise ExportError(f"onnxruntime and PyTorch differ by {check.max_abs_diff:.2g} at {check.height}x"
                              f"{check.width} (tolerance {tolerance:g}); nothing written")
    write_bytes_atomic(path, data)
    return ExportReport(Path(path), written, scale, tuple(map(_describe, proto.graph.input)),
                        _describe(proto.graph.output[0]), tuple(checks), len(data))


def _describe(value: onnx.ValueInfoProto) -> str:
    """``name [dims]`` of a graph input or output (an ``onnx.ValueInfoProto``)."""
    dims = [d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim]
    return f"{value.name} [{', '.join(dims)}]"
