"""The look-up-table file: int8 entries plus the metadata needed to use them, in one ``.npz`` a user can inspect.

``numpy.load(path)["metadata"]`` is a JSON string (kind, scale, interval, receptive-field offsets, format version,
and free-form provenance such as training data and iterations); ``numpy.load(path)["entries"]`` is the
``[L**n, scale**2]`` int8 table. Files are read with ``allow_pickle=False``, so loading never runs code. The SR-LUT
authors' ``.npy`` tables (``Model_S_x4_4bit_int8.npy``: ``[L**n, 1, r, r]`` int8) load too; their kind, scale and
interval come from the shape and the file name.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .fields import RECEPTIVE_FIELDS, ReceptiveField, receptive_field
from .simplex import levels

FORMAT_VERSION = 1
VALUE_SCALE = 127
"""Entries are ``round(clamp(net_output, -1, 1) * 127)``, as in the authors' transfer."""

_AUTHORS_NAME = re.compile(r"Model_(?P<kind>[VFS])_x(?P<scale>\d+)_(?P<bits>\d)bit_int8", re.IGNORECASE)


class LUTError(ValueError):
    """A table file or table argument that cannot be used, with the file and the reason."""


@dataclass
class LUTTable:
    """An SR look-up table.

    Attributes:
        kind: receptive field letter ("V", "F", "S").
        scale: upscaling factor ``r``; each entry is an ``r x r`` patch.
        interval: log2 of the sampling interval (4 -> levels 0, 16, ..., 240, 255).
        entries: ``[L**n, r*r]`` int8.
        info: free-form provenance stored with the table (training data, iterations, measured PSNR...).
    """

    kind: str
    scale: int
    interval: int
    entries: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind = receptive_field(self.kind).kind
        if not isinstance(self.scale, int) or self.scale < 1:
            raise LUTError(f"scale must be a positive integer, got {self.scale!r}")
        count = levels(self.interval) ** self.field.size
        expected = (count, self.scale * self.scale)
        if self.entries.dtype != np.int8:
            raise LUTError(f"table entries must be int8, got {self.entries.dtype}")
        if tuple(self.entries.shape) != expected:
            raise LUTError(
                f"table shape {tuple(self.entries.shape)} does not match its metadata: kind {self.kind} "
                f"(n={self.field.size}), interval 2**{self.interval} (L={levels(self.interval)}) and scale "
                f"{self.scale} need {expected}"
            )

    @property
    def field(self) -> ReceptiveField:
        return RECEPTIVE_FIELDS[self.kind]

    @property
    def nbytes(self) -> int:
        return int(self.entries.nbytes)

    def metadata(self) -> dict:
        return {
            "format": "hatast-lut",
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "scale": self.scale,
            "interval": self.interval,
            "levels": levels(self.interval),
            "offsets": [list(o) for o in self.field.offsets],
            "value_scale": VALUE_SCALE,
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``path`` (``.npz``)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise LUTError(f"{path}: LUT files are written as .npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, entries=self.entries, metadata=np.array(json.dumps(self.metadata())))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path


def load_table(path: str | Path, kind: str | None = None, scale: int | None = None) -> LUTTable:
    """Read a hatast ``.npz`` table or an authors' ``.npy`` table; errors name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise LUTError(f"{path}: no such LUT file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "entries" not in archive or "metadata" not in archive:
                    raise LUTError(f"{path}: not a hatast LUT file (needs 'entries' and 'metadata')")
                meta = json.loads(str(archive["metadata"]))
                entries = archive["entries"]
            if meta.get("format_version", 0) > FORMAT_VERSION:
                raise LUTError(f"{path}: format version {meta['format_version']} is newer than this hatast reads")
            missing = [key for key in ("kind", "scale", "interval") if key not in meta]
            if missing:
                raise LUTError(f"{path}: metadata lacks {missing}")
            table = LUTTable(meta["kind"], int(meta["scale"]), int(meta["interval"]), entries, meta.get("info", {}))
            stored = [tuple(o) for o in meta.get("offsets", table.field.offsets)]
            if stored != list(table.field.offsets):
                raise LUTError(f"{path}: receptive-field offsets {stored} differ from kind {table.kind}'s")
            return table
        return _load_authors_table(path, np.load(path, allow_pickle=False), kind, scale)
    except LUTError as err:
        if str(err).startswith(str(path)):
            raise
        raise LUTError(f"{path}: {err}") from None
    except (ValueError, OSError, json.JSONDecodeError) as err:
        raise LUTError(f"{path}: unreadable LUT file ({err})") from None


def _load_authors_table(path: Path, entries: np.ndarray, kind: str | None, scale: int | None) -> LUTTable:
    """Authors' layout ``[L**n, 1, r, r]``; kind and interval from the name, else from the shape when unambiguous."""
    if entries.ndim != 4 or entries.shape[1] != 1 or entries.shape[2] != entries.shape[3]:
        raise LUTError(f"{path}: expected an authors' table of shape [L**n, 1, r, r], got {entries.shape}")
    named = _AUTHORS_NAME.search(path.name)
    scale = scale or entries.shape[2]
    if entries.shape[2] != scale:
        raise LUTError(f"{path}: patches are {entries.shape[2]}x{entries.shape[2]}, not scale {scale}")
    candidates = [
        (name, bits)
        for name, f in RECEPTIVE_FIELDS.items()
        for bits in range(9)
        if levels(bits) ** f.size == entries.shape[0]
        and (kind is None or name == kind.upper())
        and (named is None or (name == named["kind"].upper() and bits == int(named["bits"])))
    ]
    if len(candidates) != 1:
        found = "no" if not candidates else f"several ({candidates})"
        raise LUTError(
            f"{path}: {entries.shape[0]} rows fit {found} (kind, interval) combinations; pass the kind explicitly"
        )
    name, bits = candidates[0]
    return LUTTable(name, scale, bits, entries.reshape(entries.shape[0], -1))
