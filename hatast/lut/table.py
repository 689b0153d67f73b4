"""The look-up-table file: int8 entries plus the metadata needed to use them, in one ``.npz`` a user can inspect.

``numpy.load(path)["metadata"]`` is a JSON string (kind, scale, interval, receptive-field offsets, format version,
and free-form provenance such as training data and iterations); ``numpy.load(path)["entries"]`` is the
``[L**n, scale**2]`` int8 table. Files are read with ``allow_pickle=False``, so loading never runs code. The SR-LUT
authors' ``.npy`` tables (``Model_S_x4_4bit_int8.npy``: ``[L**n, 1, r, r]`` int8) load too; their kind, scale and
interval come from the shape and the file name.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.files import atomic_write, damage_report
from .fields import RECEPTIVE_FIELDS, ReceptiveField, receptive_field
from .lattice import levels

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
        """Write atomically to ``path`` (``.npz``; see :func:`hatast.utils.files.atomic_write`)."""
        path = Path(path)
        if path.suffix.lower() != ".npz":
            raise LUTError(f"{path}: LUT files are written as .npz")
        with atomic_write(path) as stream:
            np.savez(stream, entries=self.entries, metadata=np.array(json.dumps(self.metadata())))
        return path


def load_table(path: str | Path, kind: str | None = None, scale: int | None = None) -> LUTTable:
    """Read a hatast ``.npz`` table or an authors' ``.npy`` table; every failure is one :class:`LUTError` naming
    the file and the problem (missing, empty or truncated, not a table, metadata and entries that disagree)."""
    path = Path(path)
    if not path.is_file():
        raise LUTError(f"{path}: no such LUT file")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise LUTError(f"{path}: LUT files are .npz (hatast) or .npy (SR-LUT authors), not '{path.suffix}'")
    damage = damage_report(path)
    if damage:
        raise LUTError(f"{path} {damage}")
    with open(path, "rb") as stream:
        head = stream.read(6)
    if suffix == ".npz" and not zipfile.is_zipfile(path):
        raise LUTError(f"{path}: not an .npz archive (damaged, or another kind of file)")
    if suffix == ".npy" and head != b"\x93NUMPY":
        raise LUTError(f"{path}: not an .npy array (damaged, or another kind of file)")
    try:
        if suffix == ".npz":
            return _load_hatast_table(path)
        entries = np.load(path, allow_pickle=False)
        if not isinstance(entries, np.ndarray):
            raise LUTError("not a single array (.npy)")
        return _load_authors_table(path, entries, kind, scale)
    except LUTError as err:
        if str(err).startswith(str(path)):
            raise
        raise LUTError(f"{path}: {err}") from None
    except zipfile.BadZipFile:
        raise LUTError(f"{path}: not an .npz archive (damaged, or another kind of file)") from None
    except EOFError:
        raise LUTError(f"{path}: ends early (truncated: an interrupted download or copy?)") from None
    except Exception as err:  # noqa: BLE001  (numpy and zipfile report damaged files with many exception types)
        text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise LUTError(f"{path}: unreadable LUT file ({text})") from None


def _load_hatast_table(path: Path) -> LUTTable:
    with np.load(path, allow_pickle=False) as archive:
        if "entries" not in archive or "metadata" not in archive:
            raise LUTError(f"{path}: not a hatast LUT file (needs 'entries' and 'metadata')")
        meta = json.loads(str(archive["metadata"]))
        entries = archive["entries"]
    if not isinstance(meta, dict):
        raise LUTError(f"{path}: metadata is a JSON {type(meta).__name__}, expected an object")
    if not isinstance(meta.get("format_version", 0), int):
        raise LUTError(f"{path}: metadata format_version is not an integer")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise LUTError(f"{path}: format version {meta['format_version']} is newer than this hatast reads")
    missing = [key for key in ("kind", "scale", "interval") if key not in meta]
    if missing:
        raise LUTError(f"{path}: metadata lacks {missing}")
    for key in ("scale", "interval"):
        if not isinstance(meta[key], int) or isinstance(meta[key], bool):
            raise LUTError(f"{path}: metadata {key} is {meta[key]!r}, expected an integer")
    if not isinstance(meta["kind"], str):
        raise LUTError(f"{path}: metadata kind is {meta['kind']!r}, expected a receptive-field letter")
    info = meta.get("info", {})
    table = LUTTable(meta["kind"], meta["scale"], meta["interval"], entries, info if isinstance(info, dict) else {})
    stored = meta.get("offsets", table.field.offsets)
    if not isinstance(stored, list) or [tuple(o) if isinstance(o, list) else o for o in stored] != list(
            table.field.offsets):
        raise LUTError(f"{path}: receptive-field offsets {stored} differ from kind {table.kind}'s")
    return table


def _load_authors_table(path: Path, entries: np.ndarray, kind: str | None, scale: int | None) -> LUTTable:
    """Authors' layout ``[L**n, 1, r, r]``; kind and interval from the name, else from the shape when unambiguous."""
    if entries.ndim != 4 or entries.shape[1] != 1 or entries.shape[2] != entries.shape[3]:
        raise LUTError(f"{path}: expected an authors' table of shape [L**n, 1, r, r], got {entries.shape}")
    named = _AUTHORS_NAME.search(path.name)
    patch = entries.shape[2]
    if named is not None and int(named["scale"]) != patch:
        raise LUTError(f"{path}: the file name says x{named['scale']} but its entries are {patch}x{patch} patches "
                       f"(x{patch}); rename the file or check that it is the table you meant")
    scale = scale or patch
    if patch != scale:
        raise LUTError(f"{path}: patches are {patch}x{patch}, not scale {scale}")
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
