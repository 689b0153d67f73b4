"""hatast: HAT, HAT+AST, look-up-table SR and USRNet as a BasicSR plugin.

Importing the package installs the torchvision shim BasicSR 1.4.2 needs, then registers hatast's architectures,
models and datasets with BasicSR's registries.
"""

from .compat import install_torchvision_shim

install_torchvision_shim()

from . import archs, data, models  # noqa: E402,F401  (registration side effects)
from .version import __version__  # noqa: E402

__all__ = ["__version__"]
