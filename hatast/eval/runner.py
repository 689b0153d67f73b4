"""The benchmark runner behind ``hatast bench``: methods (a weights file, or an interpolation baseline) evaluated
over benchmark sets, one CSV row per image, resumable, summarised as a Markdown table next to published rows.

Per image: the LR and HR files are read through :func:`hatast.utils.image.read_image`, the method's call is timed
with :func:`hatast.eval.timing.timed` (after one untimed warm-up call per method), the 8-bit result is scored with
BasicSR's metrics (:mod:`hatast.eval.metrics`), and the row is appended to ``<out>/<method>/<set>_x<s>.csv``
(rewritten atomically). A rerun reads the CSV files and computes only the images they lack.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.errors import UsageError
from ..utils.files import file_sha256, write_bytes_atomic
from ..utils.image import Image, read_image
from ..utils.paths import OutputFolder, shown
from ..utils.units import count, storage
from .baselines import interpolate
from .metrics import score
from .published import PublishedRow, published
from .sets import Pair, Scale, scale_tag
from .timing import timed

CSV_FIELDS = ["image", "psnr", "ssim", "ms", "lr_height", "lr_width"]
MACS_INPUT = (64, 64)
"""LR height and width of the fixed input MACs are counted on."""


@dataclass
class Method:
    """Something that upscales an image: ``run(lr) -> [H*s, W*s, 3]`` uint8 BGR."""

    name: str
    run: Callable[[Image], np.ndarray]
    published_name: str | None = None
    parameters: int | None = None
    storage_bytes: int | None = None
    macs: int | None = None
    notes: list[str] = field(default_factory=list)
    source: str = ""
    """What the results come from (a baseline's name, or a weights file's path and SHA-256): a results folder made
    from another source is refused instead of being resumed."""

    @property
    def folder(self) -> str:
        """The method's results folder name under the output folder."""
        return re.sub(r"[^A-Za-z0-9.+=-]+", "_", self.name).strip("_")


def baseline_method(kind: str, scale: Scale) -> Method:
    def run(lr: Image) -> np.ndarray:
        return interpolate(lr.bgr, scale, kind)

    return Method(kind, run, published_name=kind, parameters=0, macs=None, source=f"baseline {kind}")


def count_macs(net, size: tuple[int, int] = MACS_INPUT, call=None) -> int:
    """Multiply-accumulates of one forward of a ``[1, 3, *size]`` input, counted by ``torch.utils.flop_counter``
    (attention through explicit matmuls where the network offers them, which the counter understands); ``call``:
    the forward with the network's extra inputs bound (its scale, a kernel), default ``net`` itself."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    impl = getattr(net, "attention_impl", None)
    if hasattr(net, "set_attention_impl"):
        net.set_attention_impl("reference")
    counter = FlopCounterMode(display=False)
    try:
        with torch.inference_mode(), counter:
            (call or net)(torch.rand(1, 3, *size, device=next(net.parameters()).device))
    finally:
        if impl is not None:
            net.set_attention_impl(impl)
    return counter.get_total_flops() // 2


AUTO_TILES = (0, 256, 128)
"""Tile sizes tried in turn when none is given: the whole image first, tiles when it does not fit in memory."""


def upscale_fitting(upscaler, lr: Image, tiles, tile_pad: int, device, self_ensemble: bool = False):
    """``upscaler(lr)`` with the first of ``tiles`` that fits (an :class:`UpscaleError`, out of memory or a failed
    tile, moves on to the next size; the last size's error is raised)."""
    from ..inference import UpscaleError

    for size in tiles[:-1]:
        try:
            return upscaler(lr, size, tile_pad, device, self_ensemble=self_ensemble)
        except UpscaleError:
            continue
    return upscaler(lr, tiles[-1], tile_pad, device, self_ensemble=self_ensemble)


def weights_method(weights: str | Path, device, tile: int = 0, tile_pad: int = 32,
                   self_ensemble: bool = False, scale: Scale | None = None) -> Method:
    """A method from a checkpoint or table file (architecture recognised from its keys); ``scale``: the benchmark's,
    which arbitrary-scale models run at and fixed-scale ones must have."""
    from ..archs.hat_arch import hat_variant
    from ..inference import Upscaler
    from ..utils.image import to_integers

    upscaler = Upscaler.load(str(weights), None, device, scale)
    storage = Path(weights).stat().st_size
    source = f"{Path(weights).resolve()} sha256:{file_sha256(weights)}"
    if upscaler.mixer is not None:
        letters = upscaler.mixer.config["interpolations"]
        entries = sum(t.entries.size for t in upscaler.mixer.tables.values()) + upscaler.mixer.arrays["scale"].size
        method = Method(f"IM-LUT-{letters}", lambda lr: upscaler(lr, 0, 0, device), published_name=f"IM-LUT-{letters}",
                        parameters=int(entries), storage_bytes=upscaler.mixer.nbytes, macs=0, source=source)
        method.notes.append("IM-LUT: parameters are table entries; storage is the tables' bytes (the file also holds "
                            "metadata); MACs not counted (interpolation and mixing weights only)")
        return method
    if upscaler.table is not None:
        name = f"SR-LUT-{upscaler.table.kind}"
        method = Method(name, lambda lr: upscaler(lr, 0, 0, device), published_name=name,
                        parameters=int(upscaler.table.entries.size), storage_bytes=storage, macs=0, source=source)
        method.notes.append("tables: parameters are table entries (int8); no multiplications (lookups and "
                            "interpolation weights only)")
        return method
    model = upscaler.model
    variant = hat_variant(model.config) if model.name == "HAT" else None  # published rows are per variant
    name = variant or ("HAT (custom size)" if model.name == "HAT" else model.name)
    tiles = [tile] if tile else AUTO_TILES

    def run(lr: Image) -> np.ndarray:
        return to_integers(upscale_fitting(upscaler, lr, tiles, tile_pad, device, self_ensemble), 255)

    label = name + ("+ (x8 self-ensemble)" if self_ensemble else "")
    parameters = sum(p.numel() for p in model.network.parameters())
    return Method(label, run, published_name=None if self_ensemble else variant, parameters=parameters,
                  storage_bytes=storage, macs=count_macs(model.network, call=upscaler.network_forward(device)),
                  source=source)


def distinct_labels(paths: list[str | Path]) -> list[str]:
    """The shortest trailing parts of each path (suffix dropped) that tell them apart: ``net_g_latest`` twice becomes
    ``run_a/models/net_g_latest`` and ``run_b/models/net_g_latest``."""
    parts = [Path(p).resolve().with_suffix("").parts for p in paths]
    if not parts:
        return []
    for n in range(1, max(len(x) for x in parts) + 1):
        labels = ["/".join(x[-n:]) for x in parts]
        if len(set(labels)) == len(labels):
            return labels
    return ["/".join(x) for x in parts]


def read_rows(path: Path, fields: list[str] = CSV_FIELDS, key=lambda row: row["image"]) -> dict:
    """The rows of a results CSV by ``key`` (empty when the file does not exist yet)."""
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and set(rows[0]) != set(fields):
        raise UsageError(f"{path}: not a hatast bench CSV of this kind (columns {list(rows[0])}); move it away or "
                         "choose another -o")
    return {key(row): row for row in rows}


def write_rows(path: Path, rows: dict, fields: list[str] = CSV_FIELDS) -> None:
    """Rewrite a results CSV atomically, rows sorted by key."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for name in sorted(rows):
        writer.writerow(rows[name])
    write_bytes_atomic(path, buffer.getvalue().encode())


def claim(outputs: OutputFolder, folder: str, source: str) -> Path:
    """Mark ``folder`` (in ``outputs``) as holding results of ``source``, or refuse it when it holds another
    source's results; returns the folder."""
    marker = outputs.path(f"{folder}/source.txt", what="results marker", source=("marker", source))
    if marker.exists():
        held = marker.read_text(errors="replace").strip()
        if held != source:
            raise UsageError(f"{shown(marker.parent)} holds results of {held}, not of {source}; choose another -o (or "
                             "delete it to start over)")
        return marker.parent
    write_bytes_atomic(marker, (source + "\n").encode())
    return marker.parent


@dataclass
class SetResult:
    name: str
    rows: dict[str, dict]

    def mean(self, key: str) -> float:
        return float(np.mean([float(r[key]) for r in self.rows.values()]))

    def times(self) -> list[float]:
        return [float(r["ms"]) for r in self.rows.values()]


def evaluate(method: Method, set_name: str, pairs: list[Pair], scale: Scale, out: Path | OutputFolder,
             protocol: str = "y",
             progress: bool = True, warmed: set | None = None) -> SetResult:
    """Score ``method`` on every pair (those already in its CSV are read, not recomputed); results go to
    ``out/<method>/<set>_x<s>.csv`` through the path policy (an :class:`OutputFolder`, or a folder made one)."""
    outputs = out if isinstance(out, OutputFolder) else OutputFolder(out, "-o", inputs=[p for pair in pairs
                                                                                       for p in (pair.hr, pair.lr)])
    claim(outputs, method.folder, method.source)
    path = outputs.path(f"{method.folder}/{set_name}_x{scale_tag(scale)}.csv", what="results table",
                        source=("csv", method.source))
    rows = read_rows(path)
    todo = [p for p in pairs if p.name not in rows]
    if todo and warmed is not None and method.name not in warmed:
        method.run(read_image(todo[0].lr))  # warm-up: lazy initialisation and caches are not timed
        warmed.add(method.name)
    iterator = todo
    if progress and todo:
        from tqdm import tqdm

        iterator = tqdm(todo, desc=f"{method.name} {set_name} x{scale_tag(scale)}", unit="image", leave=False,
                        dynamic_ncols=True)
    for pair in iterator:
        lr, hr = read_image(pair.lr), read_image(pair.hr)
        sr, ms = timed(lambda: method.run(lr))  # noqa: B023  (called at once)
        scores = score(sr, hr.bgr, scale, protocol)
        rows[pair.name] = {"image": pair.name, "psnr": f"{scores['psnr']:.4f}", "ssim": f"{scores['ssim']:.6f}",
                           "ms": f"{ms:.1f}", "lr_height": lr.size[0], "lr_width": lr.size[1]}
        write_rows(path, rows)
    return SetResult(set_name, {p.name: rows[p.name] for p in pairs})


def markdown_table(results: list[tuple[Method, list[SetResult]]], scale: Scale, threads: int) -> str:
    """One row per method (and one per published row the package knows), PSNR/SSIM per set, then size and speed."""
    sets = [r.name for r in results[0][1]]
    header = ["method", *[f"{s} PSNR / SSIM" for s in sets], "params", "storage",
              f"MACs ({MACS_INPUT[1]}x{MACS_INPUT[0]} LR)", f"ms / image ({threads} threads, median)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    sources = []

    def published_line(row: PublishedRow) -> str:
        cells = [f"{row.model} (published)"]
        for s in sets:
            p = row.psnr.get(s)
            cells.append("-" if p is None else f"{p:.2f}" + (f" / {row.ssim[s]:.4f}" if s in row.ssim else ""))
        sources.append(f"{row.model} (published): {row.paper}; {row.source}")
        return "| " + " | ".join(cells + ["", "", "", ""]) + " |"

    for method, set_results in results:
        uniform = not isinstance(scale, (tuple, list))
        row = published(method.published_name, scale) if method.published_name and uniform else None
        if row is not None and any(name in row.psnr for name in sets):
            lines.append(published_line(row))
        times = [t for r in set_results for t in r.times()]
        cells = [method.name] + [f"{r.mean('psnr'):.2f} / {r.mean('ssim'):.4f}" for r in set_results]
        macs = "-" if method.macs is None else ("0" if method.macs == 0 else count(method.macs))
        cells += [count(method.parameters), storage(method.storage_bytes), macs,
                  f"{statistics.median(times):.1f}" if times else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = list(dict.fromkeys(sources + [n for method, _ in results for n in method.notes]))
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "") + "\n"
