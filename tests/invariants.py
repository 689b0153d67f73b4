"""The invariants every hatast command keeps, as checks the property tests share (tests/test_invariant_*.py).

For any input a user can give:

* the command ends with exit status 0 (a correct result) or 2 and ``error:`` lines naming the problem (1 only where
  a batch command reports items it skipped); never a traceback, a signal or a hang (each run under a timeout);
* every file that existed before is byte-identical afterwards (inputs above all), except files inside the output
  folder that the run was told to replace (``--overwrite``);
* nothing is written outside the output folder the user named.

:func:`run` starts a command as a user would (a subprocess, ``python -m hatast.cli.main ...``), :func:`snapshot`
records a folder tree, :func:`check_run` asserts the invariants on a run and the trees before and after it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 180
"""Seconds a command may take before the run counts as a hang."""


@dataclass
class Run:
    argv: list[str]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"hatast {' '.join(self.argv)} -> {self.code}\nstdout:\n{self.out[-2000:]}\nstderr:\n{self.err[-3000:]}"


def run(argv: list[str], cwd: Path, timeout: float = TIMEOUT, env: dict | None = None) -> Run:
    """``hatast ARGV`` in ``cwd``, as a separate process (a crash or a signal cannot take the test run with it)."""
    environment = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    argv = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in argv]
    try:
        done = subprocess.run([sys.executable, "-m", "hatast.cli.main", *argv], cwd=cwd, env=environment,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as hung:
        raise AssertionError(f"hatast {' '.join(argv)} did not finish in {timeout} s (a hang)\n"
                             f"{(hung.stderr or b'').decode(errors='replace')[-2000:]}") from None
    return Run(argv, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (relative path -> kind and content): files by SHA-256, links by target, folders."""
    entries: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                entries[key] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[key] = ("dir",)
            else:
                entries[key] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


def error_lines(text: str) -> list[str]:
    """The lines of stderr that report a problem (``error: ...`` or argparse's ``hatast X: error: ...``)."""
    return [line for line in text.splitlines() if line.startswith("error: ") or ": error: " in line]


def check_run(result: Run, sandbox: Path, before: dict[str, tuple], output: Path | None, *,
              overwrite: bool = False, codes: tuple[int, ...] = (0, 2), one_line: bool = True) -> dict[str, tuple]:
    """Assert the invariants on ``result``: its exit status is one of ``codes`` (never a signal, never 70, the bug
    status), no traceback, a refusal is ``error:`` lines (exactly one with ``one_line``) and writes nothing, every
    entry of ``before`` is unchanged unless it lies in ``output`` (resolved after the run) and ``overwrite``, and
    every new entry lies in ``output`` (or is a folder made on the way to it). Returns the entries that are new or
    changed."""
    assert result.code >= 0, f"killed by signal {-result.code}\n{result}"
    assert "Traceback" not in result.err, f"a traceback\n{result}"
    assert result.code in codes, f"exit status {result.code}, expected one of {codes}\n{result}"
    if result.code == 2:
        lines = error_lines(result.err)
        assert lines, f"exit 2 without an error line\n{result}"
        if one_line:
            assert len(result.err.strip().splitlines()) == 1, f"expected one line\n{result}"
    after = snapshot(sandbox)
    root = Path(os.path.realpath(output)) if output is not None else None

    def inside(key: str) -> bool:
        if root is None:
            return False
        path = Path(os.path.realpath(sandbox / key)) if not (sandbox / key).is_symlink() else Path(
            os.path.realpath((sandbox / key).parent)) / Path(key).name
        return path == root or root in path.parents

    def above(key: str) -> bool:  # a folder made on the way to the output folder (``-o new/out`` makes ``new``)
        return root is not None and Path(os.path.realpath(sandbox / key)) in root.parents

    changed = {k: v for k, v in after.items() if before.get(k) != v}
    for key, old in before.items():
        if after.get(key) != old and old[0] != "dir":
            assert overwrite and inside(key), f"{key} changed or vanished ({old} -> {after.get(key)})\n{result}"
    for key, value in changed.items():
        if key in before:
            continue
        assert inside(key) or (value[0] == "dir" and above(key)), \
            f"{key} was written outside the output folder {output}\n{result}"
        if result.code == 2:
            assert value[0] == "dir", f"{key} was written although the command refused to run\n{result}"
    return changed
