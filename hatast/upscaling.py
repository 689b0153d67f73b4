"""Upscaling image files with any model hatast runs: the function behind ``hatast upscale`` (``hatast.upscale``).

The model is a released name (resolved through the manifest, its SHA-256 checked: :mod:`hatast.release`) or a
weights file (a checkpoint whose architecture is recognised from its keys, or a table). 8- and 16-bit images keep
their bit depth where the output format can hold it (PNG, TIFF); grey images are processed and written as RGB; an
alpha channel is upscaled with bicubic interpolation (models are trained on colour only) and written back where the
format has one. Images are turned as their EXIF orientation says they are displayed.

Nothing is lost: outputs never replace an input (refused before any compute, ``overwrite`` or not), two inputs
never share an output (``pic.png`` and ``pic.jpg`` become ``pic_png.png`` and ``pic_jpg.png``; inputs that still
collide are refused), outputs that exist are kept unless ``overwrite``, the output folder is proved writable before
the first image is computed, every image is written atomically, and an image that cannot be read, upscaled or
written is reported and skipped while the rest of the batch goes on. Networks run whole images when they fit in
memory and tiles sized from the free memory when not (halved again if a tile still runs out).
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .inference import Degradation, Upscaler, is_table
from .release import DEFAULT_MODEL, resolve
from .utils.errors import HatastError, UsageError
from .utils.files import OutputError, remove_stale_temporaries
from .utils.image import IMAGE_EXTENSIONS, ImageError, read_image, upscale_alpha, write_image
from .utils.paths import OutputFolder

OUTPUT_FORMATS = {"png": (16, True), "tif": (16, True), "webp": (8, True), "jpg": (8, False), "bmp": (8, False)}
"""``ext`` -> (bits it holds, whether it keeps alpha); cv2 writes all of them."""
GLOB_CHARACTERS = "*?["


@dataclass
class UpscaleSummary:
    """What a run did: files written, kept (they existed), failed (with the reason), and how long it took."""

    label: str
    total: int = 0
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    """Outputs that existed and were replaced (``overwrite``)."""
    seconds: float = 0.0

    def line(self) -> str:
        parts = [f"{len(self.written)} of {self.total} image(s) upscaled"]
        if self.replaced:
            parts[0] += f" ({len(self.replaced)} replacing an earlier output: --overwrite)"
        if self.kept:
            parts.append(f"{len(self.kept)} kept (the output exists; --overwrite redoes it)")
        parts.append(f"{len(self.failed)} failed")
        return ", ".join(parts) + f", in {self.seconds:.1f} s"


class _TileBar:
    """A tqdm bar over one image's tiles, opened at the first tile of an image cut into several."""

    def __init__(self, name: str, enabled: bool):
        self.name, self.enabled, self.bar = name, enabled, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None and total > 1 and self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.name, unit="tile", leave=False, disable=None)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def collect_inputs(items: Sequence[str | Path]) -> list[Path]:
    """Image files named directly, found (not recursively) in named folders, or matched by glob patterns
    (``photos/*.jpg``, ``**`` recursive); each file once, in the order named."""
    files, seen = [], set()
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        elif path.is_file():
            found = [path]
        elif any(ch in str(item) for ch in GLOB_CHARACTERS):
            found = sorted(Path(p) for p in glob.glob(str(item), recursive=True)
                           if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise ImageError(f"{item}: the pattern matches no image file")
        else:
            raise ImageError(f"{item}: no such file or folder")
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def plan_outputs(files: list[Path], outputs: OutputFolder, suffix: str = "",
                 ext: str = "png") -> list[tuple[Path, Path]]:
    """Pair every input with its output path in ``outputs`` (the one path policy:
    :class:`~hatast.utils.paths.OutputFolder` refuses, before any compute, an output that leaves the folder,
    replaces an input or another output, in any spelling).

    Inputs whose names differ only in the extension get it in the output name (``pic.png``, ``pic.jpg`` ->
    ``pic_png.png``, ``pic_jpg.png``); inputs that would still share an output are refused.
    """
    if any(sep in suffix for sep in ("/", "\\", os.sep)) or "\0" in suffix:
        raise OutputError(f"--suffix {suffix!r}: a suffix is added to file names; it cannot hold a path separator")
    by_stem = defaultdict(list)
    for path in files:
        by_stem[path.stem + suffix].append(path)
    names = {}
    for stem, group in by_stem.items():
        extensions = {path.suffix.lower() for path in group}
        for path in group:
            in_ext = path.suffix.lower().lstrip(".")
            names[path] = (f"{path.stem}_{in_ext}{suffix}.{ext}" if len(group) > 1 and len(extensions) > 1
                           else f"{stem}.{ext}")
    return [(path, outputs.path(names[path], what="output", source=path)) for path in files]


def degradation_from(kernel, noise: float = 0.0, boundary: str = "reflect",
                     centre_aligned: bool = False) -> Degradation | None:
    """The :class:`Degradation` a kernel-aware network is told about (None without a kernel).

    ``kernel``: a file (``.npy``, ``.mat``, ``.mat:N``, an image), a spec (``gaussian:1.6``) or an array."""
    from .utils.arguments import check_range

    noise = check_range("--noise", noise, float, 0, 255)
    if kernel is None:
        if noise or centre_aligned:
            raise UsageError("--noise and --centre-aligned describe a blur kernel: give --kernel too")
        return None
    from .data.degradations import load_kernel

    kernel = np.asarray(kernel, dtype=np.float64) if not isinstance(kernel, (str, Path)) else load_kernel(str(kernel))
    return Degradation(kernel, noise, boundary, centre_aligned)


def upscale(inputs: str | Path | Sequence[str | Path], output: str | Path = "results/upscaled",
            model: str | Path = DEFAULT_MODEL, *, scale=None, size: tuple[int, int] | None = None,
            tile: int | None = None, tile_pad: int = 32, device: str = "auto", precision: str = "auto",
            ext: str = "png", suffix: str = "", overwrite: bool = False, weights_dir: str | Path | None = None,
            param_key: str | None = None, kernel=None, noise: float = 0.0, boundary: str = "reflect",
            centre_aligned: bool = False, progress: bool = True,
            report: Callable[[str], None] | None = None) -> UpscaleSummary:
    """Upscale image files into ``output``; the options are ``hatast upscale``'s (see its ``--help``).

    Args:
        inputs: files, folders (their images, not recursively) or glob patterns.
        model: a released model's name (``hatast models`` lists them) or a weights file.
        scale: models that take it as an input: USRNet 1-4; IM-LUT any factor or ``(rows, cols)``.
        size: IM-LUT: the output ``(height, width)`` instead of a scale.
        tile: input pixels per tile for networks; 0: whole images; None: chosen from the free memory.
        device: ``auto`` (networks: CUDA, MPS, then CPU; tables: the fused CPU kernel), ``cpu``, ``cuda[:N]``, ``mps``.
        precision: ``auto`` (float32), ``fp32``, ``bf16`` or ``fp16`` (where the model is tested in it).
        ext: output format, a key of :data:`OUTPUT_FORMATS`.
        overwrite: replace outputs that exist (inputs are never replaced).
        kernel, noise, boundary, centre_aligned: how the input was degraded (USRNet only).
        progress: tqdm bars per image and per tile (on a terminal).
        report: where per-image lines go (default: stdout; problems go to stderr).
    Returns:
        An :class:`UpscaleSummary`.
    Raises:
        ValueError: bad options, a model that cannot be found or read, an output plan that would lose data; raised
            before any image is computed. Per-image failures are in the summary instead.
    """
    from tqdm import tqdm

    from .utils.arguments import check_range

    start = time.perf_counter()
    if tile is not None:
        tile = check_range("--tile", tile, int, 0, 65535)
    tile_pad = check_range("--tile-pad", tile_pad, int, 0, 1024)
    say = report or tqdm.write  # keeps the lines clear of the progress bars
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    ext = ext.lower().lstrip(".")
    ext = {"jpeg": "jpg", "tiff": "tif"}.get(ext, ext)
    if ext not in OUTPUT_FORMATS:
        raise UsageError(f"--ext {ext}: expected one of {', '.join(OUTPUT_FORMATS)}")
    weights, _ = resolve(str(model), weights_dir)
    # a table's fused CPU kernel is the default for tables: choosing it needs no torch (nor a GPU's transfers)
    if device == "auto" and is_table(str(weights)):
        device = "cpu"
    else:
        from .utils.arguments import resolve_device

        device = resolve_device(str(device))
    files = collect_inputs(items)
    outputs = OutputFolder(output, "-o", inputs=[*files, weights], overwrite=overwrite)
    plan = plan_outputs(files, outputs, suffix, ext=ext)
    upscaler = Upscaler.load(str(weights), param_key, device, scale,
                             degradation_from(kernel, noise, boundary, centre_aligned), size, precision)
    if tile:
        upscaler.check_tile()
    folder = outputs.check_writable()
    for parent in {out.parent for _, out in plan}:
        remove_stale_temporaries(parent, [out.name for _, out in plan if out.parent == parent])
    summary = UpscaleSummary(upscaler.label, len(plan))
    existing = sum(os.path.lexists(out) for _, out in plan)
    say(f"{upscaler.label}; {len(plan)} image(s) -> {folder}"
        + (f" ({existing} output(s) exist: {'replacing them (--overwrite)' if overwrite else 'kept'})"
           if existing else ""))
    bits, keeps_alpha = OUTPUT_FORMATS[ext]
    # disable=None: bars only on a terminal (logs and pipes get the per-image lines alone)
    bar = tqdm(plan, desc="images", unit="image", disable=None if progress and len(plan) > 1 else True, leave=False)
    for path, out in bar:
        if outputs.exists(out):
            summary.kept.append(out)
            continue
        begin = time.perf_counter()
        tiles = _TileBar(path.name, progress)
        try:
            image = read_image(path)
            result = upscaler(image, tile, tile_pad, device, progress=tiles)
            out_h, out_w = result.shape[:2] if isinstance(result, np.ndarray) else result.shape[-2:]
            max_value = image.max_value if bits == 16 else 255
            if isinstance(result, np.ndarray) and image.max_value > 255 and bits == 8:
                result = (result / 257).round().astype(np.uint8)  # a table's 16-bit output into an 8-bit format
            alpha = None if image.alpha is None or not keeps_alpha else upscale_alpha(image.alpha, (out_h, out_w))
            if alpha is not None and max_value != image.max_value:
                alpha = (alpha / 257).round().astype(np.uint8)
            write_image(out, result, alpha, max_value)
        except (HatastError, OSError) as err:  # this image only: the batch goes on
            text = str(err) if str(err).startswith((str(path), str(out))) else f"{path}: {err}"
            tqdm.write(f"skipped: {text}", file=sys.stderr)
            summary.failed.append((path, text))
            continue
        finally:
            tiles.close()
        h, w = image.size
        notes = []
        if upscaler.last_tile:
            notes.append(f"tiles of {upscaler.last_tile}")
        if image.alpha is not None and not keeps_alpha:
            notes.append(f"alpha dropped: {ext} has none")
        if image.max_value > 255 and bits == 8:
            notes.append(f"16-bit input written as 8-bit {ext}")
        say(f"{path} ({w}x{h}) -> {out} ({out_w}x{out_h}) in {time.perf_counter() - begin:.2f} s"
            + (f" ({'; '.join(notes)})" if notes else ""))
        summary.written.append(out)
        del image, result, alpha
    summary.replaced = [path for path in outputs.replaced if path in set(summary.written)]
    summary.seconds = time.perf_counter() - start
    return summary
