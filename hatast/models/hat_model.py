"""HATModel: BasicSR's SR model for HAT and its variants.

Padding to the window multiple happens inside ``HAT.forward`` (one place, any input size, including images
smaller than a window) and tiles follow the architecture's descriptor (window-aligned), so this class is
:class:`HatastSRModel` under the model name the authors' option files use.
"""

from __future__ import annotations

from basicsr.utils.registry import MODEL_REGISTRY

from .base import HatastSRModel


@MODEL_REGISTRY.register()
class HATModel(HatastSRModel):
    """Train and test HAT-family networks; options as in the HAT authors' ``HATModel``, plus ``tile``."""

