"""Running any weights file hatast reads on an image: a look-up table (``.npz``, the SR-LUT authors' ``.npy``) or
a checkpoint whose architecture is recognised from its keys. Used by ``hatast upscale`` and ``hatast bench``.

Tables run without importing torch (the fused CPU kernel); networks import it when one is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .lut.inference import upscale as lut_upscale
from .lut.table import LUTFile, LUTTable, check_runnable, load_file
from .utils.errors import HatastError, UsageError
from .utils.image import Image

if TYPE_CHECKING:
    import torch

    from .archs.descriptor import ModelDescriptor

LUT_SUFFIXES = (".npz", ".npy")
PRECISIONS = {"auto": "float32", "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""``--precision`` -> the dtype networks run in; ``auto`` is float32 on every device (half precision is opt-in)."""


class UpscaleError(HatastError):
    """One image could not be upscaled (out of memory, a failed tile); the batch goes on."""


BOUNDARIES = ("reflect", "wrap")


@dataclass(frozen=True)
class Degradation:
    """What a kernel-aware network (USRNet) is told about how the LR image was made.

    Attributes:
        kernel: the blur kernel ``[kh, kw]`` (sums to one; :func:`hatast.data.degradations.load_kernel`).
        noise: noise standard deviation on the 0-255 scale.
        boundary: ``reflect`` (default, for photos: the LR is mirror-padded before the FFT data step, whose
            convolution is circular, and the padding cropped from the result) or ``wrap`` (the LR was made by
            circular blur, as in the paper's protocol: no padding).
        centre_aligned: the LR pixel ``i`` is centred on HR position ``s*i + (s-1)/2`` (as in imresize and in
            cameras) rather than on ``s*i`` (USRNet's upper-left decimation): the kernel is shifted by
            ``(s-1)/2`` pixels so the model's convention describes it and the result lines up with the input.
    """

    kernel: np.ndarray
    noise: float = 0.0
    boundary: str = "reflect"
    centre_aligned: bool = False

    def kernel_for(self, scale: int) -> np.ndarray:
        if not self.centre_aligned or scale == 1:
            return self.kernel
        from .data.degradations import shift_kernel

        return shift_kernel(self.kernel, -(scale - 1) / 2)


def is_table(weights: str) -> bool:
    return Path(weights).suffix.lower() in LUT_SUFFIXES


@dataclass
class Upscaler:
    """A table or a network, ready to upscale :class:`Image` objects."""

    label: str
    table: LUTTable | None = None
    mixer: LUTFile | None = None
    """IM-LUT tables, run by the fused CPU path (:func:`hatast.lut.imlut.upscale`)."""
    model: ModelDescriptor | None = None
    """A network, recognised from its keys (:func:`hatast.archs.detect.detect`), with what running it takes."""
    run_scale: float | tuple[float, float] | None = None
    """For models that take the scale as an input: an integer (USRNet), any factor or ``(rows, cols)`` (IM-LUT)."""
    run_size: tuple[int, int] | None = None
    """For arbitrary-scale models: an output ``(height, width)`` instead of a scale."""
    degradation: Degradation | None = None
    """For networks that take a blur kernel and noise level (USRNet)."""
    precision: str = "float32"
    """The dtype networks run in (one their descriptor lists as tested); inputs are cast to it, outputs back."""
    last_tile: int | None = None
    """The tile size the last network call used (0: the whole image), chosen automatically when not given."""
    bytes_per_pixel: float | None = None
    """The network's peak memory per input pixel, measured once (for automatic tile sizes)."""

    @classmethod
    def load(cls, weights: str, param_key: str | None, device: torch.device | str, scale=None,
             degradation: Degradation | None = None, size: tuple[int, int] | None = None,
             precision: str = "auto") -> Upscaler:
        """Read ``weights``; ``scale`` and ``degradation`` are for networks that take them as inputs (USRNet, any
        factor or ``(rows, cols)`` for IM-LUT, which also takes an output ``size``) and are refused
        (``ValueError``) by models with a fixed scale or no kernel input; ``precision`` (a key of
        :data:`PRECISIONS`) must be a dtype the network's descriptor lists."""
        if precision not in PRECISIONS:
            raise UsageError(f"--precision {precision}: expected one of {', '.join(PRECISIONS)}")
        check_scale_and_size(scale, size)
        upscaler = cls._load(weights, param_key, device, scale, degradation, size)
        dtype = PRECISIONS[precision]
        if upscaler.model is None or upscaler.mixer is not None:
            if dtype != "float32":
                raise UsageError(f"--precision {precision}: tables compute in integers; only fp32/auto apply")
            return upscaler
        if dtype not in upscaler.model.dtypes:
            raise UsageError(f"--precision {precision}: {upscaler.model.name} is tested in "
                             f"{', '.join(upscaler.model.dtypes)} only")
        if dtype != "float32":
            import torch

            upscaler.model.network.to(getattr(torch, dtype))
            upscaler.precision = dtype
            upscaler.label += f", {precision}"
        return upscaler

    @classmethod
    def _load(cls, weights: str, param_key: str | None, device, scale, degradation: Degradation | None,
              size: tuple[int, int] | None) -> Upscaler:
        if is_table(weights):
            loaded = check_runnable(load_file(weights), weights)  # the one validation of tables
            if loaded.family == "imlut":
                return cls._arbitrary_scale(weights, loaded, None, "", device, scale, degradation, size)
            table = loaded.tables["sr"]
            table.info = loaded.info
            _check_fixed(f"SR-LUT {table.kind} x{table.scale} table", table.scale, scale, degradation, size)
            return cls(f"SR-LUT {table.kind} table x{table.scale} from {weights}", table=table)
        model, entry = load_network(weights, param_key, device)
        if model.scale == "any":
            return cls._arbitrary_scale(weights, None, model, entry, device, scale, degradation, size)
        if size is not None:
            raise UsageError(f"--size: {model.name} upscales by x{model.scale}; give a target size only to "
                             "arbitrary-scale models (IM-LUT)")
        if "kernel" not in model.extra_inputs:
            _check_fixed(f"{model.name} x{model.scale}", model.scale, scale, degradation)
            return cls(f"{model.name} x{model.scale} from {weights} [{entry}]", model=model)
        if scale is None or degradation is None:
            raise UsageError(f"{weights}: {model.name} needs --scale (one of "
                             f"{', '.join(map(str, model.scale))}) and --kernel (a file or a spec such as "
                             "gaussian:1.6)")
        if scale not in model.scale:
            raise UsageError(f"--scale {scale:g}: {model.name} runs at scales {', '.join(map(str, model.scale))}")
        if degradation.boundary not in BOUNDARIES:
            raise UsageError(f"boundary {degradation.boundary!r}: expected one of {', '.join(BOUNDARIES)}")
        label = (f"{model.name} x{int(scale)} from {weights} [{entry}], kernel {degradation.kernel.shape[0]}x"
                 f"{degradation.kernel.shape[1]}, noise {degradation.noise:g}/255, {degradation.boundary} boundary"
                 + (", centre-aligned" if degradation.centre_aligned else ""))
        return cls(label, model=model, run_scale=int(scale), degradation=degradation)

    @classmethod
    def _arbitrary_scale(cls, weights: str, tables: LUTFile | None, model: ModelDescriptor | None, entry: str,
                         device, scale, degradation: Degradation | None, size: tuple[int, int] | None) -> Upscaler:
        """IM-LUT tables (fused CPU path; on other devices the tables as a network) or IM-Net."""
        from .lut import cpu_kernel
        from .lut.imlut import check_model, scale_pair

        if degradation is not None:
            raise UsageError(f"{weights}: IM-LUT takes no blur kernel or noise level (only USRNet does)")
        if (scale is None) == (size is None):
            raise UsageError(f"{weights}: IM-LUT upscales by any factor: give --scale (e.g. 2.5, or 1.5,2 for rows "
                             "and columns) or --size WIDTHxHEIGHT")
        if scale is not None:
            scale = scale_pair(scale)
            scale = scale[0] if scale[0] == scale[1] else scale
        target = f"to {size[1]}x{size[0]}" if size is not None else (
            f"x{scale:g}" if not isinstance(scale, tuple) else f"x{scale[0]:g} (rows), x{scale[1]:g} (columns)")
        if tables is not None:
            settings = check_model(tables, str(weights))
            label = f"IM-LUT {''.join(settings.letters)} tables {target} from {weights}"
            if _is_cpu(device) and cpu_kernel.available():
                return cls(label, mixer=tables, run_scale=scale, run_size=size)
            from .archs.detect import describe
            from .archs.imlut_arch import IMLUT

            model = describe(IMLUT(str(weights)).to(device).eval())
            return cls(label + f" on {device}", model=model, run_scale=scale, run_size=size)
        return cls(f"{model.name} {target} from {weights} [{entry}]", model=model, run_scale=scale, run_size=size)

    @property
    def scale(self):
        """The factor: an integer, or for arbitrary-scale models the factor asked for (``run_size``: None)."""
        if self.table is not None:
            return self.table.scale
        if self.run_scale is not None or self.run_size is not None:
            return self.run_scale
        return int(self.model.scale)

    def check_tile(self, error: type[Exception] = ValueError) -> None:
        """Refuse tiling for a network whose descriptor says it does not tile (``tiling: none``)."""
        if self.model is not None and self.model.tiling == "none":
            raise error(f"{self.model.name} cannot be tiled (each output pixel depends on the whole image); "
                        "run whole images (--tile 0)")

    def network_forward(self, device) -> Callable[[torch.Tensor], torch.Tensor]:
        """``lq -> sr`` for the network, with its extra inputs bound (USRNet: kernel, noise, scale, boundary;
        IM-LUT: scale or size)."""
        if self.model.scale == "any":
            return lambda lq: self.model.network(lq, self.run_scale, self.run_size)
        if self.degradation is None:
            return self.model
        import torch

        from .utils.padding import reflect_indices

        d = self.degradation
        kernel = torch.from_numpy(d.kernel_for(self.scale).astype(np.float32)).to(device)
        sigma = torch.tensor([d.noise / 255], dtype=torch.float32, device=device)
        scale = self.scale
        # context the circular data step wraps into: the kernel's reach in LR pixels, and some for the prior
        pad = -(-max(kernel.shape) // (2 * scale)) + 4 if d.boundary == "reflect" else 0

        def forward(lq: torch.Tensor) -> torch.Tensor:
            h, w = lq.shape[-2:]
            if pad:
                lq = lq.index_select(-2, torch.from_numpy(reflect_indices(h, pad, pad)).to(lq.device))
                lq = lq.index_select(-1, torch.from_numpy(reflect_indices(w, pad, pad)).to(lq.device))
            out = self.model(lq, kernel=kernel, sigma=sigma, scale=scale)
            return out[..., pad * scale:(pad + h) * scale, pad * scale:(pad + w) * scale] if pad else out

        return forward

    def __call__(self, image: Image, tile: int | None, tile_pad: int, device: torch.device | str,
                 self_ensemble: bool = False, progress: Callable[[int, int], None] | None = None):
        """The upscaled colour: ``[H*s, W*s, 3]`` BGR integers (table) or ``[1, 3, H*s, W*s]`` float32 RGB (network).

        ``tile``: networks run tiles of this many input pixels, the whole image for 0, and for None a size chosen
        from the free memory (:func:`hatast.utils.tiling.auto_tile_size`); tables always run whole images.
        ``self_ensemble``: networks average their outputs over the eight flips and rotations of the input (x8, the
        "+" rows of SR papers); tables always apply their rotation ensemble. ``progress(done, total)`` is called
        after each tile.

        Raises :class:`UpscaleError` when this image cannot be done (memory, a tile), anything else for a bug.
        """
        if self.table is not None or self.mixer is not None:
            pixels = image.bgr
            if image.max_value > 255:  # tables read 8-bit values
                pixels = (pixels / 257).round().astype(np.uint8)
            try:  # channels are independent: BGR in, BGR out
                if self.mixer is not None:
                    from .lut.imlut import upscale as imlut_upscale

                    out = imlut_upscale(self.mixer, pixels, self.run_scale, self.run_size)
                else:
                    out = lut_upscale(self.table, pixels, device=device)
            except MemoryError:
                raise UpscaleError("out of memory") from None
            return out.astype(np.uint16) * 257 if image.max_value > 255 else out
        import torch

        from .utils.tiling import TileError, is_out_of_memory, tiled_forward

        if tile:
            self.check_tile(error=UpscaleError)
        try:
            with torch.inference_mode():
                lq = image.tensor().to(device=device, dtype=getattr(torch, self.precision))
                network = self.network_forward(device)
                if tile is None:
                    tile = 0 if self.model.tiling == "none" else self._auto_tile(network, lq, tile_pad)
                if tile:
                    def forward(x):
                        return tiled_forward(network, x, self.scale, tile, tile_pad, self.model.size_multiple,
                                             progress)
                else:
                    forward = network
                out = geometric_ensemble(forward, lq) if self_ensemble else forward(lq)
                return out.float()
        except TileError as err:
            raise UpscaleError(str(err)) from None
        except (RuntimeError, MemoryError) as err:
            if not is_out_of_memory(err):
                raise  # a bug, not a property of this image: show it whole
            raise UpscaleError("out of memory" + ("" if tile else " (try --tile 256)")) from None
        finally:
            self.last_tile = tile


    def _auto_tile(self, network, lq: torch.Tensor, tile_pad: int) -> int:
        """The tile size for ``lq`` from the free memory; the network's bytes per pixel are measured once."""
        from .utils.tiling import auto_tile_size

        tile, self.bytes_per_pixel = auto_tile_size(network, lq, self.scale, tile_pad, self.model.size_multiple,
                                                    self.bytes_per_pixel)
        return tile


def load_network(weights: str, param_key: str | None, device) -> tuple[ModelDescriptor, str]:
    """The network of a checkpoint, recognised from its keys, validated and loaded strictly
    (:func:`hatast.utils.checkpoint.load_into`: keys, shapes, kinds of values, finite values), on ``device`` in eval
    mode; and the checkpoint entry it came from. Every command that runs a weights file reads it here."""
    from .archs.detect import detect
    from .utils.checkpoint import CheckpointError, check_finite, load_into, read_state_dict

    state, entry = read_state_dict(weights, param_key)
    check_finite(state, f"{weights} [{entry}]")  # before settings are read from values (IM-Net's)
    try:
        model = detect(state)
    except CheckpointError as err:
        raise type(err)(f"{weights} [{entry}]: {err}") from None
    load_into(model.network, state, strict=True, source=f"{weights} [{entry}]")
    model.network.to(device).eval()
    return model, entry


def check_scale_and_size(scale, size) -> None:
    """The range rule of ``--scale`` and ``--size`` (:func:`hatast.utils.arguments.scale_factor`,
    :func:`~hatast.utils.arguments.image_size`) for values that arrive from Python (``hatast.upscale(scale=...)``):
    each factor a finite number from 1 to :data:`~hatast.utils.arguments.MAX_SCALE`, a size two whole numbers from
    1 to :data:`~hatast.utils.arguments.MAX_SIDE`; else a :class:`UsageError` naming the range."""
    from .utils.arguments import MAX_SCALE, MAX_SIDE, check_range

    if scale is not None:
        factors = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,)
        if not 1 <= len(factors) <= 2 or any(isinstance(v, bool) for v in factors):
            raise UsageError(f"--scale {scale!r}: expected one factor or (rows, cols) factors, from 1 to {MAX_SCALE}")
        for value in factors:
            check_range("--scale", value, float, 1, MAX_SCALE)
    if size is not None:
        if not isinstance(size, (tuple, list)) or len(size) != 2 or any(isinstance(v, bool) for v in size):
            raise UsageError(f"--size {size!r}: expected (height, width), whole numbers from 1 to {MAX_SIDE}")
        for value in size:
            check_range("--size", value, int, 1, MAX_SIDE)


def _is_cpu(device) -> bool:
    return str(device) == "cpu"


def _check_fixed(name: str, own_scale, scale: float | None, degradation: Degradation | None,
                 size: tuple[int, int] | None = None) -> None:
    if size is not None:
        raise UsageError(f"--size: {name} upscales by a fixed factor; give a target size only to arbitrary-scale "
                         "models (IM-LUT)")
    if degradation is not None:
        raise UsageError(f"{name} takes no blur kernel or noise level (only kernel-aware networks such as USRNet "
                         "do); leave out --kernel/--noise")
    if scale is not None and own_scale != "any" and scale != own_scale:
        shown = ",".join(f"{v:g}" for v in scale) if isinstance(scale, tuple) else f"{scale:g}"
        raise UsageError(f"--scale {shown}: {name} upscales by {own_scale} only")


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
