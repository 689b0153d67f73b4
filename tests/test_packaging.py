"""An installed hatast writes nothing inside its own package folder (issue 24, the "Newcomer" case).

numba used to cache the compiled table kernels next to their sources, in ``site-packages/hatast/lut/__pycache__``;
``pip install -e .`` after ``pip install .`` then removed the package but not that folder, and every process started
outside the checkout imported ``hatast`` as an empty namespace package. These tests install a copy of the checkout
with pip (``--target``, no dependencies: they come from this environment), run the installed copy in subprocesses
from a folder outside the checkout, and hold that the package folder is exactly what pip put there while the kernel
cache lands in the per-user cache folder (:func:`hatast.utils.cache.cache_dir`).

What is checked is every file under the installed ``hatast/``: the numba cache (``.nbi``/``.nbc``) and anything
hatast writes itself. Python's own bytecode is included too, with ``PYTHONDONTWRITEBYTECODE`` removed from the
subprocesses: pip compiles the ``.pyc`` files at install time (``--compile``) and records them in ``RECORD``, so
they are uninstalled with the package and the interpreter finds them fresh and writes none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hatast.utils.cache import cache_dir, writable_dir

REPO = Path(__file__).resolve().parents[1]


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: relative path -> (size, mtime in ns)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _numba_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A ``pip install --target`` of the checkout (from a copy of its packaging files, so the build's ``build/``
    and ``*.egg-info`` never touch the checkout); returns the target folder."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "hatast", source / "hatast",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", "logs"))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", "--compile", "--target", str(target), str(source)],
                   check=True, cwd=root, env=_env(PIP_NO_COMPILE=None))
    return target


def _env(**changes: str | None) -> dict[str, str]:
    """This process's environment without the variables that would hide what is checked, with ``changes``
    (``None`` removes a variable)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "NUMBA_CACHE_DIR", "HATAST_CACHE", "PYTHONPATH")}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _run(site: Path, cwd: Path, *args: str, **env: str | None) -> subprocess.CompletedProcess:
    """``python *args`` on the installed copy, from ``cwd`` (outside the checkout)."""
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(PYTHONPATH=str(site), **env),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _small_png(path: Path) -> Path:
    import cv2

    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return path


def test_installed_package_is_left_as_pip_wrote_it(installed: Path, tmp_path: Path):
    """A table upscale through the installed copy compiles and caches the kernels in ``$HATAST_CACHE/numba``;
    the package folder keeps exactly the files pip wrote (and recorded, so uninstalling removes them all)."""
    package = installed / "hatast"
    before = _files(package)
    assert not _numba_files(installed)
    record = next(installed.glob("hatast-*.dist-info")) / "RECORD"
    recorded = {line.split(",")[0] for line in record.read_text().splitlines() if line}
    assert {f"hatast/{name}" for name in before} <= recorded, "files pip did not record (left by an uninstall)"

    where = _run(installed, tmp_path, "-c", "import hatast; print(hatast.__file__)").stdout.strip()
    assert Path(where) == package / "__init__.py"  # the installed copy, not the checkout

    cache = tmp_path / "cache"
    image = _small_png(tmp_path / "small.png")
    _run(installed, tmp_path, "-m", "hatast.cli.main", "upscale", str(image), "--model", "SRLUT-S_SRx4",
         "-o", str(tmp_path / "out"), HATAST_CACHE=str(cache))
    assert (tmp_path / "out" / "small.png").is_file()

    cached = _numba_files(cache)
    assert any(name.endswith(".nbi") for name in cached) and any(name.endswith(".nbc") for name in cached), cached
    assert all(name.startswith("numba/") for name in cached), cached
    assert not _numba_files(installed), "numba cached kernels inside the installed package"
    assert _files(package) == before, "the run added or changed files inside the installed package"


def test_unwritable_cache_compiles_in_memory(installed: Path, tmp_path: Path):
    """With no usable cache folder (a file where it would go: a read-only home behaves alike) the kernels are
    compiled in memory; numba does not fall back to the package's ``__pycache__``."""
    package = installed / "hatast"
    before = _files(package)
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    image = _small_png(tmp_path / "small.png")
    _run(installed, tmp_path, "-m", "hatast.cli.main", "upscale", str(image), "--model", "SRLUT-S_SRx4",
         "-o", str(tmp_path / "out"), HATAST_CACHE=str(blocker / "cache"))
    assert (tmp_path / "out" / "small.png").is_file()
    assert not _numba_files(installed)
    assert _files(package) == before


_WHERE = """
import numba
before = numba.config.CACHE_DIR
from hatast.lut import cpu_kernel
print(cpu_kernel.numba_cache_dir())
print(cpu_kernel._block_kernel._cache.cache_path)
print(repr(before), repr(numba.config.CACHE_DIR))
"""


@pytest.mark.parametrize("numba_cache_dir", [False, True])
def test_cache_folder_choice(installed: Path, tmp_path: Path, numba_cache_dir: bool):
    """numba imported before hatast: the kernels still cache in ``$HATAST_CACHE/numba``, and numba's own setting
    is left as it was for the user's functions; a ``NUMBA_CACHE_DIR`` the user set wins."""
    ours, theirs = tmp_path / "hatast-cache", tmp_path / "numba-cache"
    env = dict(HATAST_CACHE=str(ours), NUMBA_CACHE_DIR=str(theirs) if numba_cache_dir else None)
    folder, path, config = _run(installed, tmp_path, "-c", _WHERE, **env).stdout.splitlines()
    expected = theirs if numba_cache_dir else ours / "numba"
    assert Path(folder) == expected
    assert Path(path).parent == expected
    assert config == (f"{str(theirs)!r} {str(theirs)!r}" if numba_cache_dir else "'' ''")


def test_cache_dir_rule(monkeypatch, tmp_path: Path):
    for name in ("HATAST_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("numba") == tmp_path / "home" / ".cache" / "hatast" / "numba"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert cache_dir() == tmp_path / "home" / ".cache" / "hatast"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("numba") == tmp_path / "xdg" / "hatast" / "numba"
    monkeypatch.setenv("HATAST_CACHE", str(tmp_path / "mine"))
    assert cache_dir("numba") == tmp_path / "mine" / "numba"

    assert writable_dir(tmp_path / "mine" / "numba") and (tmp_path / "mine" / "numba").is_dir()
    (tmp_path / "file").write_bytes(b"")
    assert not writable_dir(tmp_path / "file" / "numba")
    assert not writable_dir(None)
