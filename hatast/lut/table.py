"""The look-up-table file: int8 tables plus the metadata needed to use them, in one ``.npz`` a user can inspect.

Format version 2 (written since IM-LUT; every table a model needs in one file):

* ``numpy.load(path)["metadata"]``: a JSON string: ``format`` ("hatast-lut"), ``format_version`` (2), ``family``
  (the model that uses the tables: "srlut", "imlut"), ``tables`` (per table: receptive field name and offsets,
  sampling interval and levels, rotations of the ensemble, outputs: layout "patch" with its scale or "channels" with
  the meaning of each, and values: dtype, ``value_scale`` and the range an entry stands for), ``arrays`` (other
  arrays the family uses, e.g. IM-LUT's scale table, with dtype, shape and meaning), ``config`` (the family's
  settings) and free-form ``info`` (training data, iterations, measured PSNR...);
* ``numpy.load(path)["table.<name>"]``: each table's ``[L**n, m]`` int8 entries; ``["array.<name>"]`` the arrays.

Version 1 files (SR-LUT: ``entries`` + metadata with kind, scale, interval, offsets) and the SR-LUT authors' ``.npy``
tables (``Model_S_x4_4bit_int8.npy``: ``[L**n, 1, r, r]`` int8; kind, scale and interval from the shape and the file
name) still load. Files are read with ``allow_pickle=False``, so loading never runs code.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils.errors import HatastError
from ..utils.files import atomic_write, damage_report
from .fields import RECEPTIVE_FIELDS, OutputLayout, ReceptiveField, field_from_offsets, receptive_field
from .lattice import levels

FORMAT_VERSION = 2
VALUE_SCALE = 127
"""Entries are ``round(clamp(net_output, -1, 1) * 127)``, as in the SR-LUT authors' transfer."""
MAX_VALUE_SCALE = 2**15
"""The largest ``value_scale`` a table may have: an int8 entry then stands for at most 1/256 of a unit; more would
only make every entry zero (and the float32 sums of the kernels lose their integer exactness above 2**24)."""

_AUTHORS_NAME = re.compile(r"Model_(?P<kind>[VFS])_x(?P<scale>\d+)_(?P<bits>\d)bit_int8", re.IGNORECASE)


class LUTError(HatastError):
    """A table file or table argument that cannot be used, with the file and the reason."""


@dataclass
class LUTTable:
    """A simplex look-up table: ``n`` input pixels (its receptive field) sampled every ``2**interval`` levels ->
    ``m`` int8 values placed by its output layout, evaluated on ``rotations`` rotations of the image and summed.

    Attributes:
        field: the receptive field.
        interval: log2 of the sampling interval (4 -> levels 0, 16, ..., 240, 255).
        entries: ``[L**n, m]`` int8, ``round(value * value_scale)``.
        layout: the outputs (an ``r x r`` patch, or ``m`` named channels).
        rotations: 4 (the rotation ensemble) or 1.
        value_scale: entries per unit of value (127: an entry spans [-1, 1]).
        info: free-form provenance stored with the table (training data, iterations, measured PSNR...).
    """

    field: ReceptiveField
    interval: int
    entries: np.ndarray
    layout: OutputLayout
    rotations: int = 4
    value_scale: int = VALUE_SCALE
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.field, str):
            self.field = receptive_field(self.field)
        if self.rotations not in (1, 4):
            raise LUTError(f"rotations must be 1 or 4, got {self.rotations!r}")
        if not isinstance(self.value_scale, int) or isinstance(self.value_scale, bool) or not (
                1 <= self.value_scale <= MAX_VALUE_SCALE):
            raise LUTError(f"value_scale must be a whole number from 1 to {MAX_VALUE_SCALE}, got {self.value_scale!r}")
        count = levels(self.interval) ** self.field.size
        expected = (count, self.layout.count)
        if self.entries.dtype != np.int8:
            raise LUTError(f"table entries must be int8, got {self.entries.dtype}")
        if tuple(self.entries.shape) != expected:
            raise LUTError(
                f"table shape {tuple(self.entries.shape)} does not match its metadata: receptive field "
                f"{self.field.kind} (n={self.field.size}), interval 2**{self.interval} (L={levels(self.interval)}) "
                f"and {self.layout.count} outputs ({self.layout.kind}) need {expected}"
            )

    @classmethod
    def srlut(cls, kind: str, scale: int, interval: int, entries: np.ndarray, info: dict | None = None) -> LUTTable:
        """An SR-LUT table: receptive field ``kind`` -> an ``r x r`` patch, with the rotation ensemble."""
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise LUTError(f"scale must be a positive integer, got {scale!r}")
        return cls(receptive_field(kind), interval, entries, OutputLayout.patch(scale), 4, VALUE_SCALE, info or {})

    @property
    def kind(self) -> str:
        """The receptive field's name ("V", "F", "S", or "custom")."""
        return self.field.kind

    @property
    def scale(self) -> int:
        """The upscaling factor of a patch layout (1 for channels)."""
        return self.layout.scale

    @property
    def nbytes(self) -> int:
        return int(self.entries.nbytes)

    def describe(self) -> dict:
        """This table's entry in a file's metadata (everything but the entries and ``info``)."""
        return {
            "receptive_field": {"kind": self.field.kind, "offsets": [list(o) for o in self.field.offsets]},
            "interval": self.interval,
            "levels": levels(self.interval),
            "rotations": self.rotations,
            "outputs": {"layout": self.layout.kind, "count": self.layout.count, "scale": self.layout.scale,
                        "names": list(self.layout.names)},
            "values": {"dtype": "int8", "value_scale": self.value_scale,
                       "range": [-128 / self.value_scale, 127 / self.value_scale]},
        }

    def metadata(self) -> dict:
        """The metadata of a file holding this table alone (an SR-LUT model)."""
        return LUTFile("srlut", {"sr": self}, info=self.info).metadata()

    def save(self, path: str | Path) -> Path:
        """Write atomically as an SR-LUT model file (``.npz``; see :meth:`LUTFile.save`)."""
        return LUTFile("srlut", {"sr": self}, info=self.info).save(path)


@dataclass
class LUTFile:
    """Everything one table file holds: the family that uses it, its tables, other arrays, settings, provenance."""

    family: str
    tables: dict[str, LUTTable]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    array_meaning: dict[str, str] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Storage of the tables and arrays (what the papers report as model size)."""
        return sum(t.nbytes for t in self.tables.values()) + sum(int(a.nbytes) for a in self.arrays.values())

    def metadata(self) -> dict:
        return {
            "format": "hatast-lut",
            "format_version": FORMAT_VERSION,
            "family": self.family,
            "tables": {name: table.describe() for name, table in self.tables.items()},
            "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape), "meaning": self.array_meaning.get(name,
                                                                                                              "")}
                       for name, a in self.arrays.items()},
            "config": self.config,
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``path`` (``.npz``; see :func:`hatast.utils.files.atomic_write`)."""
        path = Path(path)
        if path.suffix.lower() != ".npz":
            raise LUTError(f"{path}: LUT files are written as .npz")
        arrays = {f"table.{name}": table.entries for name, table in self.tables.items()}
        arrays.update({f"array.{name}": array for name, array in self.arrays.items()})
        with atomic_write(path) as stream:
            np.savez(stream, metadata=np.array(json.dumps(self.metadata())), **arrays)
        return path


def load_file(path: str | Path) -> LUTFile:
    """Read any table file hatast reads: a version 1 or 2 ``.npz`` or an SR-LUT authors' ``.npy`` (as an "srlut"
    file with one table, "sr"); every failure is one :class:`LUTError` naming the file and the problem (missing,
    empty or truncated, not a table, metadata and entries that disagree)."""
    return _read(path, None, None)


def load_table(path: str | Path, kind: str | None = None, scale: int | None = None) -> LUTTable:
    """The table of an SR-LUT file (hatast ``.npz`` or the authors' ``.npy``; ``kind`` and ``scale`` disambiguate an
    authors' file whose name does not say them)."""
    loaded = _read(path, kind, scale)
    if loaded.family != "srlut" or set(loaded.tables) != {"sr"}:
        raise LUTError(f"{path}: holds a {loaded.family} model ({', '.join(loaded.tables)} tables), not an SR-LUT "
                       "table")
    table = loaded.tables["sr"]
    table.info = loaded.info  # an SR-LUT file's provenance is its one table's
    return table


def _read(path: str | Path, kind: str | None, scale: int | None) -> LUTFile:
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
            return _load_hatast_file(path)
        entries = np.load(path, allow_pickle=False)
        if not isinstance(entries, np.ndarray):
            raise LUTError("not a single array (.npy)")
        return LUTFile("srlut", {"sr": _load_authors_table(path, entries, kind, scale)})
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


def check_runnable(loaded: LUTFile, where: str) -> LUTFile:
    """**The one validation of a table file before it is run or released** (``hatast upscale``, ``bench``,
    ``release``, ``figure``): beyond what :func:`load_file` checks (entries, arrays and metadata agree), what its
    family needs. SR-LUT: one ``sr`` table of patch outputs with the rotation ensemble and value scale 127 (what the
    SR-LUT kernels compute with); IM-LUT: weight, refiner and scale tables that fit its settings
    (:func:`hatast.lut.imlut.check_model`). Anything else is a :class:`LUTError` naming ``where``."""
    if loaded.family == "imlut":
        from .imlut import check_model

        check_model(loaded, where)
        return loaded
    if loaded.family != "srlut":
        raise LUTError(f"{where}: a {loaded.family!r} table file, which hatast does not run (it runs 'srlut' and "
                       "'imlut' tables)")
    table = loaded.tables.get("sr")
    if table is None or len(loaded.tables) != 1:
        raise LUTError(f"{where}: an SR-LUT file holds one table, 'sr'; this one holds {sorted(loaded.tables)}")
    if table.layout.kind != "patch" or table.rotations != 4 or table.value_scale != VALUE_SCALE:
        raise LUTError(f"{where}: table 'sr' has {table.layout.kind} outputs, {table.rotations} rotation(s) and "
                       f"value_scale {table.value_scale}; SR-LUT tables have patch outputs, 4 rotations and "
                       f"value_scale {VALUE_SCALE}")
    return loaded


def check_array(array: np.ndarray, where: str) -> np.ndarray:
    """An array a table file holds besides its tables: integers or finite floats (NaN or inf in a scale table
    would give black or meaningless images), else :class:`LUTError`."""
    if array.dtype.kind not in "iuf":
        raise LUTError(f"{where} holds {array.dtype} values; table files hold integers or floats")
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise LUTError(f"{where} holds {bad} non-finite value(s) (NaN or inf) of {array.size}: the file is damaged")
    return array


def _integer(meta: dict, key: str, where: str) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise LUTError(f"{where} {key} is {value!r}, expected an integer")
    return value


def _load_hatast_file(path: Path) -> LUTFile:
    with np.load(path, allow_pickle=False) as archive:
        if "metadata" not in archive:
            raise LUTError(f"{path}: not a hatast LUT file (no 'metadata')")
        meta = json.loads(str(archive["metadata"]))
        if not isinstance(meta, dict):
            raise LUTError(f"{path}: metadata is a JSON {type(meta).__name__}, expected an object")
        version = meta.get("format_version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise LUTError(f"{path}: metadata format_version is not an integer")
        if version > FORMAT_VERSION:
            raise LUTError(f"{path}: format version {version} is newer than this hatast reads")
        info = meta.get("info", {})
        info = info if isinstance(info, dict) else {}
        if version < 2:
            if "entries" not in archive:
                raise LUTError(f"{path}: not a hatast LUT file (needs 'entries' and 'metadata')")
            table = _version1_table(path, meta, archive["entries"], info)
            return LUTFile("srlut", {"sr": table}, info=info)
        arrays = {key: archive[key] for key in archive.files if key != "metadata"}
    tables_meta, arrays_meta = meta.get("tables"), meta.get("arrays", {})
    if not isinstance(tables_meta, dict) or not tables_meta or not isinstance(arrays_meta, dict):
        raise LUTError(f"{path}: metadata 'tables' must name at least one table (and 'arrays' be an object)")
    tables = {}
    for name, description in tables_meta.items():
        if f"table.{name}" not in arrays:
            raise LUTError(f"{path}: metadata describes table {name!r} but the file has no 'table.{name}' entries")
        tables[name] = _table_from_description(description, arrays[f"table.{name}"], f"{path}: table {name!r}")
    extra = {}
    for name, description in arrays_meta.items():
        array = arrays.get(f"array.{name}")
        if array is None:
            raise LUTError(f"{path}: metadata describes array {name!r} but the file has no 'array.{name}'")
        if not isinstance(description, dict) or list(array.shape) != description.get("shape"):
            raise LUTError(f"{path}: array {name!r} has shape {list(array.shape)}, the metadata says "
                           f"{description.get('shape') if isinstance(description, dict) else description!r}")
        extra[name] = check_array(array, f"{path}: array {name!r}")
    family, config = meta.get("family"), meta.get("config", {})
    if not isinstance(family, str) or not isinstance(config, dict):
        raise LUTError(f"{path}: metadata needs a 'family' name and a 'config' object")
    meaning = {name: str(d.get("meaning", "")) for name, d in arrays_meta.items()}
    return LUTFile(family, tables, extra, config, info, meaning)


def _table_from_description(description: dict, entries: np.ndarray, where: str) -> LUTTable:
    if not isinstance(description, dict):
        raise LUTError(f"{where}: description is {description!r}, expected an object")
    try:
        rf, outputs, values = description["receptive_field"], description["outputs"], description["values"]
        field_ = field_from_offsets(rf["offsets"], rf.get("kind"))
        layout = OutputLayout(outputs["layout"], _integer(outputs, "count", f"{where} outputs"),
                              _integer({"scale": 1, **outputs}, "scale", f"{where} outputs"),
                              tuple(outputs.get("names", ())))
        interval, rotations = _integer(description, "interval", where), _integer(description, "rotations", where)
        value_scale = _integer(values, "value_scale", f"{where} values")
        if values.get("dtype") != "int8":
            raise LUTError(f"{where}: values dtype {values.get('dtype')!r}; this hatast reads int8 tables")
    except LUTError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise LUTError(f"{where}: incomplete or malformed description ({err})") from None
    try:
        return LUTTable(field_, interval, entries, layout, rotations, value_scale)
    except (LUTError, ValueError) as err:
        raise LUTError(f"{where}: {err}") from None


def _version1_table(path: Path, meta: dict, entries: np.ndarray, info: dict) -> LUTTable:
    missing = [key for key in ("kind", "scale", "interval") if key not in meta]
    if missing:
        raise LUTError(f"{path}: metadata lacks {missing}")
    scale, interval = _integer(meta, "scale", f"{path}: metadata"), _integer(meta, "interval", f"{path}: metadata")
    if not isinstance(meta["kind"], str):
        raise LUTError(f"{path}: metadata kind is {meta['kind']!r}, expected a receptive-field letter")
    table = LUTTable.srlut(meta["kind"], scale, interval, entries, info)
    if "value_scale" in meta:  # written by every hatast version; the SR-LUT runner computes with 127
        table.value_scale = _integer(meta, "value_scale", f"{path}: metadata")
        table.__post_init__()
    stored = meta.get("offsets", [list(o) for o in table.field.offsets])  # optional: the kind's own
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
    return LUTTable.srlut(name, scale, bits, entries.reshape(entries.shape[0], -1))
