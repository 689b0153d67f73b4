"""Models. Importing this package registers every ``*_model.py`` with BasicSR's ``MODEL_REGISTRY``."""

import importlib
from pathlib import Path

_model_modules = [
    importlib.import_module(f"{__name__}.{path.stem}") for path in sorted(Path(__file__).parent.glob("*_model.py"))
]
