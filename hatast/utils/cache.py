"""Where hatast keeps what it caches on disk: a per-user folder, never inside the installed package.

An install (``pip install .``, a wheel, ``--target``) must hold only what pip put there, so upgrading or
uninstalling leaves nothing behind and a later ``pip install -e .`` is not shadowed by a stray
``site-packages/hatast`` folder. The one cache so far is numba's compiled table kernels
(:func:`hatast.lut.cpu_kernel._jit`), in :func:`cache_dir` ``("numba")``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ENV_CACHE = "HATAST_CACHE"


def cache_dir(*parts: str) -> Path | None:
    """hatast's cache folder (``parts`` joined below it), not created here:

    1. ``$HATAST_CACHE`` when set;
    2. else ``$XDG_CACHE_HOME/hatast`` when ``XDG_CACHE_HOME`` is an absolute path (the XDG rule: a relative one is
       ignored);
    3. else ``~/.cache/hatast``.

    ``None`` when none applies (no ``HATAST_CACHE``, no ``XDG_CACHE_HOME`` and no known home folder): callers then
    keep nothing on disk.
    """
    root = os.environ.get(ENV_CACHE)
    if root:
        base = Path(os.path.expanduser(root)).absolute()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        if xdg and os.path.isabs(xdg):
            base = Path(xdg) / "hatast"
        else:
            home = os.path.expanduser("~")
            if not home or home == "~" or not os.path.isabs(home):
                return None
            base = Path(home) / ".cache" / "hatast"
    return base.joinpath(*parts)


def writable_dir(path: str | os.PathLike | None) -> bool:
    """Create ``path`` (and its parents) if needed; whether a file can be written in it. ``False`` instead of an
    error for ``None``, a read-only file system, a missing permission or a file in the way."""
    if not path:
        return False
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True
