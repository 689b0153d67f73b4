"""The model contract every family shares: what an architecture is recognised by, and what a built network needs
from the code that runs it (spandrel's ``KeyCondition`` + ``ImageModelDescriptor``, for hatast's families).

Code that runs networks (inference, tiling, ``hatast upscale`` and ``bench``, option validation) asks the
:class:`ModelDescriptor` for the scale, the input size multiple, whether tiles are exact, the dtypes and the extra
inputs, instead of calling ``net(lq)`` and reading ``upscale`` / ``window_size`` attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor, nn

Tiling = Literal["exact", "approximate", "none"]
"""``exact``: away from seams, tiled output equals whole-image output (local receptive field, window-aligned
tiles); ``approximate``: close but not equal (a global step such as USRNet's FFT); ``none``: do not tile."""


@dataclass(frozen=True)
class KeyCondition:
    """A state dict matches when it holds every ``required`` key, at least one key starting with each of the
    ``any_prefix`` groups, and passes ``check`` (for what key names cannot say, e.g. a channel count)."""

    required: frozenset[str]
    any_prefix: tuple[tuple[str, ...], ...] = ()
    check: Callable[[Mapping[str, Tensor]], bool] | None = None

    def matches(self, state: Mapping[str, Tensor]) -> bool:
        if not self.required <= state.keys():
            return False
        if any(not any(k.startswith(group) for k in state) for group in self.any_prefix):
            return False
        return self.check is None or self.check(state)


@dataclass(frozen=True)
class Architecture:
    """One architecture: how to recognise its state dicts and read its constructor arguments from them, and what
    its networks need (functions of the built network, since the scale and window are constructor arguments)."""

    name: str
    cls: type[nn.Module]
    condition: KeyCondition | None
    """None: not recognisable from a state dict (a table file is loaded by its own reader)."""
    read_config: Callable[[Mapping[str, Tensor]], dict] | None
    scale: Callable[[nn.Module], int | Literal["any"] | tuple[int, ...]]
    """One integer scale; "any" (float scales, IM-LUT); or the integer scales the network takes as its ``scale``
    input (USRNet)."""
    size_multiple: Callable[[nn.Module], int] = lambda net: 1
    tiling: Tiling = "exact"
    dtypes: tuple[str, ...] = ("float32",)
    """The dtypes a test runs the network in; others are refused rather than trusted."""
    extra_inputs: tuple[str, ...] = ()
    """Inputs besides the LR image, by name (USRNet: ``kernel``, ``sigma``)."""

    def canonical(self, state: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        """``state`` with ``cls``'s own key names: what :func:`~hatast.archs.detect.detect` matches and reads the
        configuration from. A class whose state dicts come in other spellings too (e.g. its authors' code at some
        settings) says so with a static ``canonical_keys(state)``, which every loader applies
        (:func:`hatast.utils.checkpoint.canonical_state`)."""
        from ..utils.checkpoint import canonical_state

        return canonical_state(self.cls, state)


@dataclass
class ModelDescriptor:
    """A built network and what running it takes."""

    architecture: Architecture
    network: nn.Module
    config: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.architecture.name

    @property
    def scale(self) -> int | Literal["any"] | tuple[int, ...]:
        return self.architecture.scale(self.network)

    @property
    def size_multiple(self) -> int:
        """Tiles start and end on multiples of this (the attention window), so they see what the whole image sees."""
        return self.architecture.size_multiple(self.network)

    @property
    def tiling(self) -> Tiling:
        return self.architecture.tiling

    @property
    def dtypes(self) -> tuple[str, ...]:
        return self.architecture.dtypes

    @property
    def extra_inputs(self) -> tuple[str, ...]:
        return self.architecture.extra_inputs

    def __call__(self, lq: Tensor, **extra: Tensor) -> Tensor:
        """Run the network on ``lq`` ``[B, C, H, W]`` (plus the extra inputs it declares, by name)."""
        missing = [name for name in self.extra_inputs if name not in extra]
        unknown = [name for name in extra if name not in self.extra_inputs]
        if missing or unknown:
            raise ValueError(f"{self.name} takes {', '.join(('lq',) + self.extra_inputs)}; "
                             + (f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(unknown)}"))
        return self.network(lq, **extra)
