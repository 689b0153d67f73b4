"""Compatibility shims that must be in place before BasicSR is imported.

BasicSR 1.4.2 (the newest release) imports ``torchvision.transforms.functional_tensor``, a private module that
torchvision 0.17 renamed to ``_functional_tensor`` and later releases removed. :func:`install_torchvision_shim` adds
an import hook, consulted only after every other finder has failed to find that module, which answers with the
renamed module. Installing it imports nothing (importing torchvision costs about 700 MiB, which the look-up-table
path of ``hatast upscale`` never needs); where the old module exists the hook is never asked.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

_OLD_MODULE = "torchvision.transforms.functional_tensor"


def _replacement() -> types.ModuleType:
    try:
        return importlib.import_module("torchvision.transforms._functional_tensor")
    except ModuleNotFoundError:
        # Very new torchvision without the private module: BasicSR only needs rgb_to_grayscale from it.
        from torchvision.transforms import functional

        module = types.ModuleType(_OLD_MODULE)
        module.rgb_to_grayscale = functional.rgb_to_grayscale  # type: ignore[attr-defined]
        return module


class _TorchvisionAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torchvision.transforms.functional_tensor`` when nothing else does, as the renamed module."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        if fullname != _OLD_MODULE:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):  # noqa: D102
        return _replacement()

    def exec_module(self, module):  # noqa: D102  (the module is already loaded under its new name)
        pass


def install_torchvision_shim() -> bool:
    """Add the alias hook (last in ``sys.meta_path``) unless the module is already loaded or the hook is there.

    Returns True when the hook was added.
    """
    if _OLD_MODULE in sys.modules or any(isinstance(f, _TorchvisionAlias) for f in sys.meta_path):
        return False
    sys.meta_path.append(_TorchvisionAlias())
    return True
