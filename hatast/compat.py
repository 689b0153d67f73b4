"""Compatibility shims that must run before BasicSR is imported.

BasicSR 1.4.2 (the newest release) imports ``torchvision.transforms.functional_tensor``, a private module that
torchvision 0.17 renamed to ``_functional_tensor`` and later releases removed. Where the old module is missing we
register an alias so ``import basicsr`` succeeds; where it exists we touch nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

_OLD_MODULE = "torchvision.transforms.functional_tensor"


def install_torchvision_shim() -> bool:
    """Alias the removed torchvision module if needed. Returns True when an alias was installed."""
    if _OLD_MODULE in sys.modules:
        return False
    try:
        if importlib.util.find_spec(_OLD_MODULE) is not None:
            return False
    except ModuleNotFoundError:  # torchvision itself missing: nothing we can alias
        return False
    try:
        replacement = importlib.import_module("torchvision.transforms._functional_tensor")
    except ModuleNotFoundError:
        # Very new torchvision without the private module: BasicSR only needs rgb_to_grayscale from it.
        import types

        from torchvision.transforms import functional

        replacement = types.ModuleType(_OLD_MODULE)
        replacement.rgb_to_grayscale = functional.rgb_to_grayscale  # type: ignore[attr-defined]
    sys.modules[_OLD_MODULE] = replacement
    return True
