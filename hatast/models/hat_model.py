"""HATModel: BasicSR's SR model for HAT and its variants.

Padding to the window multiple happens inside ``HAT.forward`` (one place, any input size, including images
smaller than a window), so this class only adds window-aligned tiling on top of :class:`HatastSRModel`.
"""

from __future__ import annotations

from basicsr.utils.registry import MODEL_REGISTRY

from .base import HatastSRModel


@MODEL_REGISTRY.register()
class HATModel(HatastSRModel):
    """Train and test HAT-family networks; options as in the HAT authors' ``HATModel``, plus ``tile``."""

    def tile_multiple(self) -> int:
        return int(getattr(self.get_bare_model(self.net_g), "window_size", 1))
