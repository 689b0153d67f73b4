"""The one output-path policy: every command that writes asks an :class:`OutputFolder` for each path it writes.

A command builds one ``OutputFolder`` from the folder the user named (``-o``; for a command that writes one file,
that file's folder) and the files it reads, then obtains every output path from :meth:`OutputFolder.path`. That
one call is where these hold, for every spelling of a path:

* **Resolved before compared.** Symlinks and ``..`` are resolved (folders that do not exist yet included:
  ``new/../in`` is ``in``, whether or not ``new`` exists), and file names are compared without regard to letter
  case, so ``Photo.png`` next to the input ``Photo.PNG`` is refused: on a case-insensitive file system (macOS,
  Windows by default) it *is* the input. A symlink is read before the ``..`` after it (``link/..`` is where the
  kernel goes: the parent of the link's target), and a path that goes through a file (``afile/x``, ``afile/..``,
  ``link_to_a_file/..``; an output whose sub-folder is a file) is refused, as the kernel refuses it.
* **Inside the folder the user named.** A name built from a ``--suffix``, an option ``name``, a manifest entry or a
  model name can never move an output out of it (``../x``, an absolute name, a link inside the folder that points
  out of it).
* **Never onto an input, never twice.** Not onto any file the command reads (the same directory entry, the same
  file through another name, a symlink or a hard link, or a case variant of its name), and not onto a path this
  run already wrote.
* **Writable before any compute** (:meth:`OutputFolder.check_writable`).
* **Existing results kept unless ``overwrite``** (:meth:`OutputFolder.exists`): the command keeps (or refuses) an
  existing output, and one that replaces outputs says so (:attr:`OutputFolder.replaced`).

Writing itself is atomic (:mod:`hatast.utils.files`): a temporary file in the same folder, renamed into place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .files import OutputError


def resolve(path: str | os.PathLike) -> Path:
    """``path`` made absolute with every symlink and ``..`` resolved, whether or not it exists yet, in the kernel's
    order: a symlink is followed before the ``..`` after it (``link/..`` is the parent of the link's target, not the
    folder holding the link), and ``..`` after a folder that does not exist cancels it, as the kernel will once the
    folder is made. (Never ``os.path.abspath`` first: it drops ``link/..`` as text, before the link is read.)"""
    return Path(os.path.realpath(os.fspath(path)))


def resolve_entry(path: str | os.PathLike) -> Path:
    """The directory entry ``path`` names: its folder resolved (:func:`resolve`), its last component kept as it is
    (an atomic write replaces a symlink there, not the file it points to)."""
    folder, name = os.path.split(os.fspath(path))
    if name in ("", ".", ".."):
        return resolve(path)
    return resolve(folder or os.curdir) / name


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return None
    return stat.st_dev, stat.st_ino


def _entry_key(entry: Path) -> tuple:
    """Two spellings of one directory entry get one key: the folder by identity when it exists (case-insensitive
    file systems, bind mounts), else by its resolved name; the file name case-folded."""
    folder = _identity(entry.parent)
    return (folder if folder is not None else str(entry.parent).casefold(), entry.name.casefold())


def file_on_the_way(path: str | os.PathLike, base: str | os.PathLike | None = None) -> Path | None:
    """The first existing file (not a folder) that ``path`` goes through with more components after it (``afile/x``,
    ``afile/..``, ``new/../afile/..``, ``link_to_a_file/..``), resolved; None when there is none. The kernel refuses
    such a path (``ENOTDIR``) whatever :func:`resolve` makes of a ``..`` after the file, so a folder given that way
    is refused too, never quietly taken as another folder. ``base``: the folder a relative ``path`` starts from."""
    text = os.fspath(path)
    separators = {os.sep, os.altsep} - {None}
    for end in range(1, len(text)):
        if text[end] in separators and text[end - 1] not in separators:
            step = resolve(text[:end] if base is None else os.path.join(base, text[:end]))
            if step.exists() and not step.is_dir():
                return step
    return None


def _file_below(root: Path, folder: Path) -> Path | None:
    """The first existing non-folder on the way from ``root`` down to ``folder`` (both resolved, ``root`` excluded):
    where a folder would have to be entered or made."""
    for step in reversed([folder, *folder.parents][:[folder, *folder.parents].index(root)]):
        if not step.exists():
            return None
        if not step.is_dir():
            return step
    return None


def shown(path: str | os.PathLike) -> str:
    """A path for a message, relative to the working folder when it lies inside it."""
    path = Path(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class OutputFolder:
    """The folder a command writes into and the files it must never write onto (see the module's docstring).

    Args:
        folder: the folder the user named.
        option: how the user named it (``-o``), for messages.
        inputs: files (or folders) the command reads; more can be added with :meth:`protect`.
        overwrite: existing results are replaced (else kept or refused, as the command says).
    """

    def __init__(self, folder: str | os.PathLike, option: str = "-o", inputs: Iterable[str | os.PathLike] = (),
                 overwrite: bool = False) -> None:
        text = os.fspath(folder)
        if not str(text).strip():
            raise OutputError(f"{option}: the output folder is empty; name a folder")
        if "\0" in str(text):
            raise OutputError(f"{option} {text!r}: a path cannot hold a NUL character")
        blocker = file_on_the_way(text)
        if blocker is not None:
            raise OutputError(f"{option} {text}: {shown(blocker)} is a file, not a folder")
        self.option = option
        self.given = Path(text)
        self.root = resolve(text)
        self.overwrite = overwrite
        self.replaced: list[Path] = []
        """Existing outputs this run replaced (``overwrite``), for the command's summary."""
        self._inputs: dict[tuple, Path] = {}
        self._input_ids: dict[tuple[int, int], Path] = {}
        self._claimed: dict[tuple, tuple[Path, object]] = {}
        self._folders_checked: set[str] = set()  # sub-folders (as named) found free of files on the way
        self.protect(*inputs)

    @classmethod
    def for_file(cls, file: str | os.PathLike, option: str = "-o", inputs: Iterable[str | os.PathLike] = (),
                 overwrite: bool = False) -> tuple[OutputFolder, Path]:
        """A command that writes one file: its folder, and the file's checked path. An existing file is refused
        unless ``overwrite`` (a result is never replaced without being asked)."""
        text = os.fspath(file)
        if not str(text).strip():
            raise OutputError(f"{option}: the output file name is empty")
        entry = resolve_entry(text)
        if entry.name in ("", ".", "..") or str(text).endswith(("/", os.sep)) or os.path.isdir(text):
            raise OutputError(f"{option} {text} is a folder; give a file name")
        blocker = file_on_the_way(text)
        if blocker is not None:
            raise OutputError(f"{option} {text}: {shown(blocker)} is a file, not a folder")
        folder = cls(entry.parent, option, inputs, overwrite)
        path = folder.path(entry.name, what=option)
        if folder.exists(path):  # with overwrite: recorded in replaced, and False
            raise OutputError(f"{option} {text} exists; hatast keeps existing results: add --overwrite to replace "
                              "it, or choose another name")
        return folder, path

    def protect(self, *paths: str | os.PathLike) -> None:
        """Files (or folders) that no output may replace: the given spelling and, for a link, what it points to."""
        for item in paths:
            if item is None:
                continue
            for entry in {resolve_entry(item), resolve(item)}:
                self._inputs.setdefault(_entry_key(entry), Path(item))
            identity = _identity(Path(item))
            if identity is not None:
                self._input_ids.setdefault(identity, Path(item))

    def inside(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` (resolved) lies in this folder."""
        target = resolve(path)
        return target == self.root or self.root in target.parents

    def path(self, relative: str | os.PathLike, what: str = "output", source: object = None) -> Path:
        """The path of output ``relative`` (a name, or ``sub/folder/name``) in this folder, checked and claimed for
        this run. Raises :class:`OutputError` (naming ``what``) when it would leave the folder, replace an input,
        be a folder, or be written by two producers (``source``: the input it is made from, or what writes it; the
        same ``source`` may ask again for a file it rewrites, such as a results table that grows row by row)."""
        text = os.fspath(relative)
        if not str(text).strip() or "\0" in str(text):
            raise OutputError(f"{what}: {text!r} is not a file name")
        if os.path.isabs(text):
            raise OutputError(f"{what} {text}: an absolute path where a name inside {self.option} {shown(self.root)} "
                              "is expected")
        entry = resolve_entry(self.root / text)
        if entry.name in ("", ".", "..") or self.root not in entry.parents:
            raise OutputError(f"{what} {text} would be written to {shown(entry)}, outside the output folder "
                              f"{shown(self.root)} ({self.option}); names cannot leave it")
        key = _entry_key(entry)
        victim = self._inputs.get(key)
        if victim is None:
            identity = _identity(entry)
            victim = self._input_ids.get(identity) if identity is not None else None
        if victim is not None:
            if victim.name != entry.name and victim.name.casefold() == entry.name.casefold():
                raise OutputError(f"{what} {shown(entry)} differs from the input {victim} only in letter case: on a "
                                  "case-insensitive file system (macOS, Windows) it is that file; choose another "
                                  f"output folder ({self.option}) or a suffix")
            raise OutputError(f"{what} {shown(entry)} would overwrite the input {victim}; hatast never writes onto its "
                              f"inputs (choose another output folder ({self.option}) or name)")
        if entry.is_dir():
            raise OutputError(f"{what} {shown(entry)} is a folder; it cannot be replaced by a file")
        if os.path.dirname(text) not in self._folders_checked:  # once per folder (thousands of crops share one)
            blocker = file_on_the_way(text, self.root) or _file_below(self.root, entry.parent)
            if blocker is not None:
                raise OutputError(f"{what} {shown(entry)}: {shown(blocker)} is a file, not a folder")
            self._folders_checked.add(os.path.dirname(text))
        earlier = self._claimed.get(key)
        if earlier is not None:
            first, first_source = earlier
            if source is not None and source == first_source:
                return first  # the same producer again (a results file rewritten as rows are added)
            if source is not None and first_source is not None:
                raise OutputError(f"{first_source} and {source} would both be written to {shown(entry)}; process "
                                  "them in separate runs or rename one")
            raise OutputError(f"{what} {shown(entry)} would be written twice in one run (also as {shown(first)})")
        self._claimed[key] = (entry, source)
        return entry

    def folder(self, relative: str | os.PathLike = "", what: str = "output folder") -> Path:
        """A sub-folder of this folder (checked to stay inside it, never an input), not claimed as a file."""
        if not os.fspath(relative):
            return self.root
        entry = resolve(self.root / relative)
        if entry != self.root and self.root not in entry.parents:
            raise OutputError(f"{what} {relative} would be {shown(entry)}, outside the output folder "
                              f"{shown(self.root)} ({self.option})")
        source = self._inputs.get(_entry_key(entry))
        if source is not None and not Path(source).is_dir():
            raise OutputError(f"{what} {shown(entry)} is the input file {source}")
        blocker = file_on_the_way(relative, self.root) or _file_below(self.root, entry)
        if blocker is not None:
            raise OutputError(f"{what} {shown(entry)}: {shown(blocker)} is a file, not a folder")
        return entry

    def exists(self, path: Path, keep: bool = True) -> bool:
        """Whether an output exists that this run must keep: True when ``path`` exists and not ``overwrite``. With
        ``overwrite`` an existing output is recorded in :attr:`replaced` and False is returned (the command
        replaces it). ``keep=False``: only report, record nothing."""
        present = os.path.lexists(path)
        if present and self.overwrite:
            if keep and path not in self.replaced:
                self.replaced.append(path)
            return False
        return present

    def adopt(self, command: str) -> bool:
        """For a command that fills a folder of its own and replaces its own earlier results there (``hatast
        quickstart``, ``hatast demo``): a new or empty folder, or one an earlier run of ``command`` marked as its
        own, is used (True when that earlier run's results are there, to be replaced); a folder holding anything
        else is refused, since those files may be the user's. Creates the folder and marks it."""
        marker = self.root / f".hatast-{command}"
        present = [p for p in self.root.iterdir()] if self.root.is_dir() else []
        if present and not marker.is_file():
            raise OutputError(f"{self.option} {shown(self.root)} already holds files that hatast {command} did not "
                              f"make ({present[0].name}, ...); hatast {command} replaces its own results there, so "
                              "give a new or empty folder")
        self.check_writable()
        if not marker.is_file():
            from .files import write_bytes_atomic

            write_bytes_atomic(marker, f"made by hatast {command}; its results here are replaced by the next run\n"
                               .encode())
        return bool(present)

    def check_writable(self) -> Path:
        """Create the folder if needed and prove it writable, before any compute; returns it."""
        for parent in [self.root, *self.root.parents]:
            if parent.exists():
                if not parent.is_dir():
                    raise OutputError(f"{self.option} {shown(self.given)}: {shown(parent)} is a file, not a folder")
                break
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(prefix=".hatast-write-check.", suffix=".tmp", dir=self.root)
            os.close(handle)
            os.unlink(probe)
        except OSError as err:
            raise OutputError(f"{self.option} {shown(self.given)} is not writable ({err.strerror or err})") from None
        return self.root
