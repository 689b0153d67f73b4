"""hatast: HAT, HAT+AST, look-up-table SR and USRNet as a BasicSR plugin.

Importing the package is cheap: it adds the import hook BasicSR 1.4.2 needs with current torchvision
(:mod:`hatast.compat`) and nothing else, so commands load only what they use (the look-up-table path of
``hatast upscale`` never imports PyTorch or BasicSR). ``import hatast.models`` registers hatast's architectures,
datasets and models with BasicSR's registries (``hatast.archs`` and ``hatast.data`` register their own part).
"""

from .compat import install_torchvision_shim

install_torchvision_shim()

from .version import __version__  # noqa: E402

__all__ = ["__version__", "upscale"]


def __getattr__(name: str):
    """``hatast.upscale`` (:func:`hatast.upscaling.upscale`), imported on first use so ``import hatast`` stays
    cheap."""
    if name == "upscale":
        from .upscaling import upscale

        return upscale
    raise AttributeError(f"module 'hatast' has no attribute {name!r}")
