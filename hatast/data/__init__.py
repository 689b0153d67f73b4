"""Datasets. Importing this package registers every ``*_dataset.py`` with BasicSR's ``DATASET_REGISTRY``."""

import importlib
from pathlib import Path

_dataset_modules = [
    importlib.import_module(f"{__name__}.{path.stem}") for path in sorted(Path(__file__).parent.glob("*_dataset.py"))
]
