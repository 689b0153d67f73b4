"""Safe file writing, shared by every writer in hatast (checkpoints, tables, images, logs of results).

* :func:`atomic_write` / :func:`atomic_path`: data go to a temporary file in the target's folder
  (``.<name>.<random>.tmp[.ext]``), are flushed to disk, then renamed over the target. A killed process leaves
  the old file or the new one, never half of one; what it leaves is a temporary file that
  :func:`remove_stale_temporaries` recognises and deletes.
* :func:`check_output_file` / :func:`check_output_folder`: before any compute, refuse an output that is one of the
  inputs, a folder where a file is expected (or the reverse), or a place this process cannot write.
* :func:`damage_report`: why a file that should hold data cannot be read (empty, truncated archive, ...), in words.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import HatastError

_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp(\.\w+)?$")


class OutputError(HatastError):
    """An output path that must not or cannot be written, with the path and the reason."""


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file under the current umask (``mkstemp``'s files are 0600; outputs must be
    as readable as any other file the user makes)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A temporary file next to ``path`` that replaces ``path`` when the ``with`` block finishes without error.

    For writers that take a file name (``cv2.imwrite`` chooses the format by ``suffix``, e.g. ``'.png'``). The
    parent folder is created if needed; on any exception (or a kill) ``path`` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(tmp)
        handle = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a binary stream whose content replaces ``path`` only when the ``with`` block finishes without error
    (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        yield stream


def write_bytes_atomic(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """Replace ``path`` by ``data`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as stream:
        stream.write(data)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_temporaries(folder: str | os.PathLike, names: Iterable[str] | None = None) -> list[Path]:
    """Delete temporary files that an interrupted :func:`atomic_write` left in ``folder``.

    Args:
        names: only the temporaries of these target names (all of them when None).
    Returns:
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if names is None else set(names)
    removed = []
    for entry in folder.iterdir():
        match = _TEMP_NAME.match(entry.name)
        if match and entry.is_file() and (wanted is None or match["name"] in wanted):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def file_identities(paths: Iterable[str | os.PathLike]) -> dict[tuple[int, int], Path]:
    """``{(device, inode): path}`` of the existing files among ``paths``: what an output must not be."""
    identities = {}
    for path in map(Path, paths):
        try:
            stat = path.stat()
        except OSError:
            continue
        identities[(stat.st_dev, stat.st_ino)] = path
    return identities


def overwritten_input(output: str | os.PathLike, identities: dict[tuple[int, int], Path]) -> Path | None:
    """The input that writing ``output`` would replace (same file through any name or link), or None."""
    try:
        stat = Path(output).stat()
    except OSError:
        return None
    return identities.get((stat.st_dev, stat.st_ino))


def check_output_folder(folder: str | os.PathLike, option: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove it writable by creating and deleting a file in it.

    Raises :class:`OutputError` naming the folder (and ``option``) when it is a file, cannot be created or is not
    writable; the check runs before any compute, so a batch never fails after its first result.
    """
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{option} {folder}: {parent} is a file, not a folder")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".hatast-write-check.", suffix=".tmp", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"{option} {folder} is not writable ({err.strerror or err})") from None
    return folder


def check_output_file(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (),
                      option: str = "output") -> Path:
    """Refuse to write ``path`` when it is one of ``inputs``, a folder, or in a folder that cannot be written."""
    path = Path(path)
    item = overwritten_input(path, file_identities(inputs))
    if item is not None:
        raise OutputError(f"{option} {path} is the input file {item}; hatast never writes onto its inputs "
                          "(choose another output name)")
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    check_output_folder(path.parent if str(path.parent) else Path("."), option=f"{option} {path}: folder")
    return path


def damage_report(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot hold a complete data file, or None when nothing obvious is wrong.

    Recognises an empty file and an incomplete or damaged zip archive (``.npz``, PyTorch's checkpoint format): the
    usual results of an interrupted download or copy.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes): an interrupted download or copy?"
    with open(path, "rb") as stream:
        head = stream.read(4)
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        return f"is a truncated or damaged zip archive ({size} bytes): an interrupted download or copy?"
    return None
