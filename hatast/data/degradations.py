"""Degradations: the one place where LR images are made from HR ones (benchmark sets, training pairs, baselines).

:func:`imresize` is MATLAB's ``imresize`` (the function the SR benchmarks' LR images were made with), written from
its documented algorithm:

* output size ``ceil(scale * size)`` per axis when a scale is given (``scale`` = 1 / SR factor when downsampling);
* each output pixel ``x`` (1-based) reads the input at ``u = x / scale + 0.5 * (1 - 1 / scale)``; its weights are
  the kernel at ``u - j`` for the ``ceil(width) + 2`` input pixels ``j`` from ``floor(u - width / 2)``, normalised to
  sum to one; when shrinking with antialiasing the kernel is stretched by ``1 / scale`` (``h(x) = scale *
  k(scale * x)``, ``width / scale`` wide); indices outside the image are mirrored (``1 2 3 | 3 2 1``);
* the two axes are resized one after the other, the axis shrunk most first (rows on a tie);
* integer images keep their type: after each 1-D pass the values are rounded half away from zero and clipped to
  the type's range, as MATLAB's ``uint8`` path does. This is what makes generated benchmark LR equal the standard
  files in every value (BasicSR's ``imresize`` computes in float and rounds once; it differs by one level on 10-14%
  of LR values). Float images are resized in float64 without rounding or clipping and returned in their own type:
  the form for on-the-fly training LR.

Kernels are MATLAB's: ``nearest`` (box), ``bilinear`` (triangle), ``bicubic`` (Keys, a = -0.5), ``lanczos2``,
``lanczos3``. :func:`resize_tensor` is the same resize in torch (IM-LUT's interpolations). USRNet's blur and noise
belong here too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..utils.errors import HatastError, UsageError
from ..utils.resize import KERNELS, ResizeKernel, contributions  # noqa: F401  (imresize's weights; re-exported)

if TYPE_CHECKING:  # torch is imported by the function that needs it: data preparation runs on numpy alone
    import torch


def resized_length(length: int, scale: float) -> int:
    """MATLAB's output length for a resize factor: ``ceil(scale * length)`` (``scale`` < 1 shrinks)."""
    return math.ceil(scale * length)


def lr_size(hr_size: tuple[int, int], sr_scale: float | tuple[float, float]) -> tuple[int, int]:
    """(height, width) of the LR image that goes with an HR image of ``hr_size`` at ``sr_scale``: the size of
    ``imresize(mod_crop(hr, s), 1 / s)``, per axis.

    The one rule for pairing HR and LR files (the benchmark pairing in :mod:`hatast.eval.sets`, the option-file data
    checks in :mod:`hatast.data.checks`). Integer scales: ``floor(HR / s)``, the benchmark convention. Non-integer
    scales ``s = p / q``: the HR mod-cropped to a multiple of ``p`` (:func:`mod_crop`), then divided by ``s`` exactly
    (``floor(HR / p) * q``). Raises ValueError for a scale that is not a ratio of small integers (no LR size goes
    with it). An HR size that is already mod-cropped gives ``imresize``'s own output size (``ceil(size / s)``).
    """
    scales = _pair(sr_scale)
    cropped = [length - length % _numerator(s) for length, s in zip(hr_size, scales)]
    return resized_length(cropped[0], 1 / scales[0]), resized_length(cropped[1], 1 / scales[1])


def mod_crop(image: np.ndarray, sr_scale: float | tuple[float, float]) -> np.ndarray:
    """The top-left part of ``image`` whose size is the largest that ``sr_scale`` divides into whole LR pixels.

    Integer scales: the size rounded down to a multiple of the scale (the benchmark rule). Non-integer scales
    ``s = p / q`` (in lowest terms, e.g. 2.5 = 5 / 2): a multiple of ``p``, so LR = HR / s is an integer and HR and
    LR cover the same area exactly.
    """
    steps = [_numerator(s) for s in _pair(sr_scale)]
    h, w = image.shape[:2]
    return image[: h - h % steps[0], : w - w % steps[1]]


def _resize_axis(image: np.ndarray, axis: int, out_length: int, scale: float, kernel: str, antialias: bool,
                 integer_range: tuple[int, int] | None) -> np.ndarray:
    indices, weights = contributions(image.shape[axis], out_length, scale, kernel, antialias)
    moved = np.moveaxis(image, axis, 0)
    shape = (out_length,) + (1,) * (moved.ndim - 1)
    out = np.zeros((out_length,) + moved.shape[1:], np.float64)
    for tap in range(indices.shape[1]):  # one tap at a time: memory of one output, not of all taps
        out += weights[:, tap].reshape(shape) * moved[indices[:, tap]]
    if integer_range is not None:
        out = np.clip(np.sign(out) * np.floor(np.abs(out) + 0.5), *integer_range)  # half away from zero
    return np.moveaxis(out, 0, axis)


def imresize(image: np.ndarray, scale: float | tuple[float, float] | None = None,
             size: tuple[int, int] | None = None, kernel: str = "bicubic", antialias: bool = True) -> np.ndarray:
    """MATLAB ``imresize`` of an ``[H, W]`` or ``[H, W, C]`` image (see the module docstring).

    Args:
        image: uint8 / uint16 (rounded and clipped after each pass, MATLAB's integer path) or float (computed in
            float64, returned in the input's float type, not clipped).
        scale: resize factor, one for both axes or ``(rows, cols)``; ``0.25`` shrinks 4x. The weights use this
            factor as given, as MATLAB does, even where ``ceil`` rounds the output size.
        size: output ``(height, width)`` instead of a scale (the factor per axis is then ``size / input size``).
        kernel: one of :data:`KERNELS`.
        antialias: stretch the kernel when shrinking (MATLAB's default; off for ``nearest`` as in MATLAB).
    """
    if kernel not in KERNELS:
        raise UsageError(f"unknown resize kernel {kernel!r}; expected one of {', '.join(KERNELS)}")
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"expected an [H, W] or [H, W, C] image, got shape {image.shape}")
    (out_h, out_w), scales = _output_geometry(*image.shape[:2], scale, size)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        integer_range = (info.min, info.max)
    elif np.issubdtype(image.dtype, np.floating):
        integer_range = None
    else:
        raise ValueError(f"cannot resize {image.dtype} images")
    antialias = antialias and kernel != "nearest"
    out = image
    lengths = (out_h, out_w)
    for axis in (0, 1) if scales[0] <= scales[1] else (1, 0):
        out = _resize_axis(out, axis, lengths[axis], scales[axis], kernel, antialias, integer_range)
    return out.astype(image.dtype)


def _output_geometry(height: int, width: int, scale: float | tuple[float, float] | None,
                     size: tuple[int, int] | None) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output ``(height, width)`` and per-axis factors of a resize given by a factor or a target size (or both: the
    size of the output, the factor of the weights)."""
    if scale is None and size is None:
        raise ValueError("give a scale or a size")
    if size is not None and scale is not None:
        scales = _pair(scale)
        out_h, out_w = (int(v) for v in size)
    elif size is not None:
        out_h, out_w = (int(v) for v in size)
        scales = (out_h / height, out_w / width)
    else:
        scales = _pair(scale)
        if not all(math.isfinite(v) for v in scales):
            raise UsageError(f"resize factor {scale!r} is not finite")
        out_h, out_w = resized_length(height, scales[0]), resized_length(width, scales[1])
    if min(scales) <= 0 or min(out_h, out_w) < 1:
        raise UsageError(f"resize of a {height}x{width} image by {scales} gives no pixels")
    return (out_h, out_w), scales


def resize_tensor(x: torch.Tensor, scale: float | tuple[float, float] | None = None,
                  size: tuple[int, int] | None = None, kernel: str = "bicubic",
                  antialias: bool = True) -> torch.Tensor:
    """:func:`imresize`'s float form in torch: ``[..., H, W]`` float -> ``[..., H', W']``, batched, on any device,
    (``scale`` and ``size`` together: that output size, with the weights of that factor, as IM-LUT sizes its output)
    differentiable (a weighted gather of each axis's :func:`contributions`; the same weights, border mirroring and
    axis order as :func:`imresize`, so both agree to float rounding). IM-LUT's interpolations (nearest, bilinear,
    bicubic, lanczos2) at any factor, per-axis factors included, and its baselines are this function."""
    import torch

    if kernel not in KERNELS:
        raise UsageError(f"unknown resize kernel {kernel!r}; expected one of {', '.join(KERNELS)}")
    if x.ndim < 2 or min(x.shape[-2:]) < 1 or not x.is_floating_point():
        raise ValueError(f"expected a float [..., H, W] tensor, got {x.dtype} of shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    lengths, scales = _output_geometry(height, width, scale, size)
    antialias = antialias and kernel != "nearest"
    out = x
    for axis in (0, 1) if scales[0] <= scales[1] else (1, 0):
        dim = x.ndim - 2 + axis
        indices, weights = contributions(out.shape[dim], lengths[axis], scales[axis], kernel, antialias)
        index = torch.from_numpy(indices).to(x.device)
        weight = torch.from_numpy(weights).to(x.device, x.dtype)
        moved = out.movedim(dim, -1)
        gathered = moved[..., index]  # [..., out, taps]
        out = (gathered * weight).sum(-1).movedim(-1, dim)
    return out


def bicubic_downsample(hr: np.ndarray, sr_scale: float | tuple[float, float]) -> np.ndarray:
    """``imresize(hr, 1 / s, 'bicubic')``: the LR image of the SR benchmarks (uint8 in, uint8 out, exact)."""
    sh, sw = _pair(sr_scale)
    return imresize(hr, (1 / sh, 1 / sw), kernel="bicubic")


def _pair(value: float | tuple[float, float]) -> tuple[float, float]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise UsageError(f"expected one scale or (rows, cols), got {value!r}")
        return float(value[0]), float(value[1])
    return float(value), float(value)


def _numerator(scale: float) -> int:
    """``p`` of ``scale = p / q`` in lowest terms (denominators up to 100: 1.5, 2.5, 3.5, 1.25 ...)."""
    from fractions import Fraction

    fraction = Fraction(scale).limit_denominator(100)
    if abs(float(fraction) - scale) > 1e-9:
        raise UsageError(f"scale {scale} is not a ratio of small integers")
    return fraction.numerator


# --------------------------------------------------------------------------------------------------------------
# Blur kernels, circular blur, decimation and noise: USRNet's degradation y = (x (x) k) downarrow_s + n
# --------------------------------------------------------------------------------------------------------------

KERNEL_SIZE = 25
MAX_KERNEL_SIZE = 101
"""The largest blur kernel a user may give (USRNet's are 25x25; larger ones mostly cost time)."""
MAX_KERNEL_SIGMA = 20.0
"""The widest Gaussian a kernel spec may ask for, in pixels."""
MIN_KERNEL_SIGMA = 0.01
"""Smaller sigmas are read as this one: the same kernel (one pixel), where theirs could underflow to a variance of
zero (``gaussian:1e-320``)."""
"""USRNet's kernel size (training kernels and the 12 benchmark kernels)."""


def gaussian_kernel(variances: tuple[float, float], angle: float = 0.0, size: int = KERNEL_SIZE) -> np.ndarray:
    """A ``size x size`` Gaussian kernel (float64, sums to one) with covariance eigenvalues ``variances``
    (pixels^2) along the direction ``angle`` (radians) and its normal; centred at ``size // 2``."""
    var1, var2 = (float(v) for v in variances)
    if min(var1, var2) <= 0:
        raise UsageError(f"Gaussian variances must be > 0, got {variances}")
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    precision = rotation @ np.diag([1 / var1, 1 / var2]) @ rotation.T
    offsets = np.arange(size, dtype=np.float64) - size // 2
    xx, yy = np.meshgrid(offsets, offsets)  # x: columns, y: rows
    points = np.stack([xx, yy], axis=-1)
    kernel = np.exp(-0.5 * np.einsum("...i,ij,...j->...", points, precision, points))
    return kernel / kernel.sum()


def motion_kernel(rng: np.random.Generator, size: int = KERNEL_SIZE) -> np.ndarray:
    """A random camera-shake kernel: a trajectory walked in 0.25-pixel steps whose heading drifts at random (with
    an occasional jerk), of random length (6 to ``1.2 * size`` pixels), scaled to fit ``size - 2`` pixels,
    splatted bilinearly onto ``size x size``, centred on its centre of mass and normalised. Extents run from a
    few pixels to most of the kernel, like the motion kernels of USRNet's benchmark (8-18 of 25)."""
    step = 0.25
    length = rng.uniform(6.0, 1.2 * size)
    heading = rng.uniform(0, 2 * math.pi)
    turn = rng.uniform(0.02, 0.12)  # heading noise per step: straight strokes to curly ones
    n_steps = int(length / step)
    turns = rng.normal(0.0, turn, n_steps)
    jerks = rng.random(n_steps) < 0.004
    turns[jerks] += rng.normal(0.0, 1.2, int(jerks.sum()))
    headings = heading + np.cumsum(turns)
    points = np.concatenate([[[0.0, 0.0]], np.cumsum(step * np.stack([np.cos(headings), np.sin(headings)], 1), 0)])
    points -= points.mean(axis=0)
    extent = np.abs(points).max()
    if extent > (size - 3) / 2:
        points *= (size - 3) / 2 / extent
    points += size // 2
    kernel = np.zeros((size, size))
    r0, c0 = np.floor(points[:, 1]).astype(int), np.floor(points[:, 0]).astype(int)
    fr, fc = points[:, 1] - r0, points[:, 0] - c0
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)),
                           (1, 1, fr * fc)):
        np.add.at(kernel, (r0 + dr, c0 + dc), weight)
    return kernel / kernel.sum()


def random_training_kernel(rng: np.random.Generator, size: int = KERNEL_SIZE,
                           variance_range: tuple[float, float] = (0.6, 12.0)) -> np.ndarray:
    """USRNet's training kernel pool: half anisotropic Gaussians (eigenvalues uniform in ``variance_range``, any
    angle), half random motion blurs."""
    if rng.random() < 0.5:
        low, high = variance_range
        return gaussian_kernel((rng.uniform(low, high), rng.uniform(low, high)), rng.uniform(0, math.pi), size)
    return motion_kernel(rng, size)


def bicubic_kernel(scale: int) -> np.ndarray:
    """MATLAB's bicubic downsampling by ``scale`` as a blur kernel in USRNet's convention (blur, then keep the
    upper-left pixel of each block): LR pixel ``i`` of imresize is centred on HR position ``s*i + (s-1)/2`` and
    weighs HR pixel ``j`` by ``cubic((s*i + (s-1)/2 - j) / s) / s``, so the kernel is the stretched cubic moved by
    ``(s-1)/2``. Separable, ``2 * ceil(2s + (s-1)/2) - 1`` square (9, 13, 19 for x2, x3, x4), sums to one; away from
    the borders ``decimate(circular_blur(hr, k), s)`` equals ``imresize(hr, 1/s)`` in float."""
    shift = (scale - 1) / 2
    half = math.ceil(2 * scale + shift) - 1
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    taps = KERNELS["bicubic"].function((offsets + shift) / scale) / scale
    kernel = np.outer(taps, taps)
    return kernel / kernel.sum()


def shift_kernel(kernel: np.ndarray, shift: float) -> np.ndarray:
    """``kernel`` moved by ``shift`` pixels down and right (negative: up and left), by bilinear interpolation on a
    canvas grown by ``ceil(|shift|) + 1`` pixels per side (so its centre index stays the centre); sums to one.

    USRNet decimates at the upper-left pixel of each block. For an LR image whose pixel ``i`` is centred on HR
    position ``s*i + (s-1)/2`` (imresize, cameras), the same degradation in USRNet's convention has the kernel
    moved by ``-(s-1)/2``.
    """
    from scipy.ndimage import shift as nd_shift

    margin = math.ceil(abs(shift)) + 1
    canvas = np.pad(np.asarray(kernel, np.float64), margin)
    moved = np.clip(nd_shift(canvas, (shift, shift), order=1, mode="constant"), 0, None)
    return moved / moved.sum()


def circular_blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``image (x) kernel`` with wrap-around borders (float64 ``[H, W]`` or ``[H, W, C]``): the convolution whose
    transfer function USRNet's data step inverts (kernel centre at ``(kh // 2, kw // 2)``; equal to
    ``scipy.ndimage.convolve(..., mode='wrap')`` for odd kernels). Kernels larger than the image wrap too."""
    h, w = image.shape[:2]
    kh, kw = kernel.shape
    rows = (np.arange(kh) - kh // 2) % h
    cols = (np.arange(kw) - kw // 2) % w
    psf = np.zeros((h, w))
    np.add.at(psf, (rows[:, None], cols[None, :]), kernel)
    otf = np.fft.rfft2(psf)
    spectrum = np.fft.rfft2(image.astype(np.float64), axes=(0, 1))
    if image.ndim == 3:
        otf = otf[..., None]
    return np.fft.irfft2(spectrum * otf, s=(h, w), axes=(0, 1))


def decimate(image: np.ndarray, scale: int) -> np.ndarray:
    """Upper-left pixel of every ``scale x scale`` block (USRNet's ``downarrow_s``)."""
    return image[::scale, ::scale]


def blur_downsample_noise(hr: np.ndarray, kernel: np.ndarray, scale: int, sigma: float,
                          rng: np.random.Generator | None) -> np.ndarray:
    """USRNet's LR of a float HR image in [0, 1]: circular blur, upper-left decimation, Gaussian noise of standard
    deviation ``sigma`` (in [0, 1] units, drawn from ``rng``; no noise when ``sigma`` is 0). Float64, neither
    clipped nor quantised, as the paper's protocol feeds it."""
    lr = decimate(circular_blur(hr, kernel), scale)
    if sigma > 0:
        lr = lr + rng.normal(0.0, sigma, lr.shape)
    return lr


def load_kernel(spec: str) -> np.ndarray:
    """A blur kernel from a file or a spec, normalised to sum to one (float64 ``[kh, kw]``).

    * ``bicubic:S`` the kernel of MATLAB bicubic downsampling by ``S`` (:func:`bicubic_kernel`);
    * ``gaussian:S`` isotropic Gaussian of standard deviation ``S`` pixels; ``gaussian:S1,S2,DEG`` anisotropic
      (standard deviations along and across ``DEG`` degrees); ``:size=N`` appended sets the size (default 25);
    * ``file.npy`` a 2-D array; ``file.png`` (or any image) a grey image, e.g. a motion-blur trajectory;
    * ``file.mat`` the only 2-D array in it, or ``file.mat:N`` entry ``N`` (0-based) of a cell array such as the
      USRNet benchmark's ``kernels_12.mat``.
    """
    text = spec.strip()
    if text.lower().startswith("bicubic:"):
        return bicubic_kernel(_parse_int(text.split(":", 1)[1], spec, "the bicubic kernel's scale", 8))
    if text.lower().startswith("gaussian:"):
        body = text.split(":", 1)[1]
        size = KERNEL_SIZE
        if ":size=" in body:
            body, size_text = body.split(":size=", 1)
            size = _parse_int(size_text, spec, "the size", MAX_KERNEL_SIZE)
        parts = body.split(",")
        if len(parts) not in (1, 3):
            raise UsageError(f"kernel spec {spec!r}: expected gaussian:SIGMA or gaussian:S1,S2,DEGREES")
        sigma_rule = f"a sigma must be above 0 and at most {MAX_KERNEL_SIGMA:g} pixels"
        values = [_parse_float(v, spec, sigma_rule) for v in parts[:2]]
        for sigma in values:
            if not 0 < sigma <= MAX_KERNEL_SIGMA:  # NaN and inf too
                raise UsageError(f"kernel spec {spec!r}: {sigma_rule}, got {sigma:g}")
        values[:2] = [max(sigma, MIN_KERNEL_SIGMA) for sigma in values]  # narrower: the same one-pixel kernel
        if len(parts) == 3:
            angle_rule = "the angle must be from -360 to 360 degrees"
            values.append(_parse_float(parts[2], spec, angle_rule))
            if not -360 <= values[2] <= 360:
                raise UsageError(f"kernel spec {spec!r}: {angle_rule}, got {values[2]:g}")
        sigmas = (values[0], values[0] if len(values) == 1 else values[1])
        angle = 0.0 if len(values) == 1 else math.radians(values[2])
        return gaussian_kernel((sigmas[0] ** 2, sigmas[1] ** 2), angle, size)
    path_text, index = text, None
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit() and head.lower().endswith(".mat"):
        path_text, index = head, int(tail)
    from pathlib import Path

    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"kernel {spec!r}: no such file (or use gaussian:SIGMA)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            kernel = np.load(path, allow_pickle=False)
        elif suffix == ".mat":
            kernel = _kernel_from_mat(path, index)
        else:
            from ..utils.image import read_image

            image = read_image(path)
            kernel = image.bgr.astype(np.float64).mean(axis=-1) / image.max_value
    except HatastError:
        raise
    except Exception as err:  # a damaged file: one line naming it
        raise UsageError(f"kernel {spec!r}: cannot read ({type(err).__name__}: {err})") from None
    try:
        kernel = np.asarray(kernel, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"kernel {spec!r}: expected a 2-D array of numbers") from None
    if kernel.ndim != 2 or min(kernel.shape) < 1 or not np.isfinite(kernel).all() or (kernel < 0).any():
        raise UsageError(f"kernel {spec!r}: expected a 2-D array of finite values >= 0, got shape {kernel.shape}")
    if max(kernel.shape) > MAX_KERNEL_SIZE:
        raise UsageError(f"kernel {spec!r} is {kernel.shape[1]}x{kernel.shape[0]}; kernels are at most "
                         f"{MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE} pixels")
    if kernel.sum() <= 0:
        raise UsageError(f"kernel {spec!r} sums to zero")
    return kernel / kernel.sum()


def benchmark_kernels(path: str) -> list[np.ndarray]:
    """Every kernel of a cell-array ``.mat`` file (USRNet's ``kernels_12.mat``: 4 isotropic, 4 anisotropic,
    4 motion), each normalised to sum to one."""
    cells = _mat_cells(path)
    return [np.asarray(k, np.float64) / np.asarray(k, np.float64).sum() for k in cells]


def _mat_cells(path) -> list[np.ndarray]:
    from scipy.io import loadmat

    contents = {k: v for k, v in loadmat(str(path)).items() if not k.startswith("__")}
    cells = [v for v in contents.values() if isinstance(v, np.ndarray) and v.dtype == object]
    if len(cells) != 1:
        raise UsageError(f"{path}: expected one cell array of kernels, found {len(cells)}")
    return [np.asarray(k) for k in cells[0].ravel()]


def _kernel_from_mat(path, index: int | None) -> np.ndarray:
    from scipy.io import loadmat

    if index is not None:
        cells = _mat_cells(path)
        if not 0 <= index < len(cells):
            raise UsageError(f"kernel {path}:{index}: the file holds {len(cells)} kernels (0..{len(cells) - 1})")
        return cells[index]
    arrays = [v for k, v in loadmat(str(path)).items()
              if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype != object and v.ndim == 2]
    if len(arrays) != 1:
        raise UsageError(f"kernel {path}: expected one 2-D array (or name an entry of a cell array as "
                         f"{path}:N), found {len(arrays)}")
    return arrays[0]


def _parse_float(text: str, spec: str, rule: str) -> float:
    """A number of a kernel spec (the caller checks its range, which refuses NaN and inf); ``rule`` says the range
    in the message for text that is not a number."""
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"kernel spec {spec!r}: {text!r} is not a number ({rule})") from None


def _parse_int(text: str, spec: str, what: str, high: int) -> int:
    """A whole number from 1 to ``high`` of a kernel spec (``what``: its name in the message)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= high:
        raise UsageError(f"kernel spec {spec!r}: {what} must be a whole number from 1 to {high}, got {text.strip()!r}")
    return value
