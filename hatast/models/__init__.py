"""Models. Importing this package registers every ``*_model.py`` with BasicSR's ``MODEL_REGISTRY``, and, through
``hatast.archs`` and ``hatast.data``, the architectures and datasets they build: one import registers all three."""

import importlib
from pathlib import Path

from .. import archs, data  # noqa: F401  (registration side effects)

_model_modules = [
    importlib.import_module(f"{__name__}.{path.stem}") for path in sorted(Path(__file__).parent.glob("*_model.py"))
]
