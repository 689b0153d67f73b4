"""Architectures. Importing this package registers every ``*_arch.py`` with BasicSR's ``ARCH_REGISTRY``."""

import importlib
from pathlib import Path

_arch_modules = [
    importlib.import_module(f"{__name__}.{path.stem}") for path in sorted(Path(__file__).parent.glob("*_arch.py"))
]
