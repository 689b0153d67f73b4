"""Receptive fields of the look-up-table models and the geometry of the rotation ensemble.

A table maps the values of ``n`` neighbouring pixels (its :class:`ReceptiveField`) to ``m`` values whose meaning and
place an :class:`OutputLayout` gives: an ``r x r`` HR patch (SR-LUT) or ``m`` same-size maps (IM-LUT's weights and
refiner). The SR-LUT authors evaluate a table on the four 90-degree rotations of the image (``np.rot90``
counter-clockwise, then padded at the bottom/right with reflection) and rotate each result back. Instead of rotating
images we express each rotation in the original image's coordinates: rotation ``k`` reads the neighbours at
``rotate_offset(offset, k)`` and its value ``t`` lands at ``OutputLayout.placement()[k, t]``. Both the vectorised torch
path and the fused CPU kernel use these maps, so the geometry lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReceptiveField:
    """Which LR pixels a table entry depends on.

    Attributes:
        kind: the model's letter ("V", "F", "S").
        offsets: ``(dy, dx)`` of each input pixel relative to the output pixel, in table-index order (first = most
            significant index digit).
    """

    kind: str
    offsets: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        offsets = tuple((int(dy), int(dx)) for dy, dx in self.offsets)
        if not offsets or (0, 0) not in offsets or min(min(o) for o in offsets) < 0 or len(set(offsets)) != len(
                offsets):
            raise ValueError(f"receptive field offsets must be distinct, non-negative and include (0, 0), got "
                             f"{list(self.offsets)}")
        object.__setattr__(self, "offsets", offsets)

    @property
    def size(self) -> int:
        """Number of input pixels ``n`` (the table has ``L**n`` rows)."""
        return len(self.offsets)

    @property
    def kernel_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the first convolution of the matching net."""
        return (max(dy for dy, _ in self.offsets) + 1, max(dx for _, dx in self.offsets) + 1)


RECEPTIVE_FIELDS: dict[str, ReceptiveField] = {
    "V": ReceptiveField("V", ((0, 0), (0, 1))),
    "F": ReceptiveField("F", ((0, 0), (0, 1), (0, 2))),
    "S": ReceptiveField("S", ((0, 0), (0, 1), (1, 0), (1, 1))),
}


def receptive_field(kind: str) -> ReceptiveField:
    """The receptive field of model ``kind`` ("V", "F" or "S"), with a clear error for anything else."""
    try:
        return RECEPTIVE_FIELDS[kind.upper()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown LUT kind {kind!r}; expected one of {sorted(RECEPTIVE_FIELDS)}") from None


def field_from_offsets(offsets, kind: str | None = None) -> ReceptiveField:
    """The receptive field with these offsets: a named one (V, F, S) where they match, else ``kind`` or "custom"."""
    offsets = tuple((int(dy), int(dx)) for dy, dx in offsets)
    for known in RECEPTIVE_FIELDS.values():
        if known.offsets == offsets:
            return known
    return ReceptiveField(kind or "custom", offsets)


def rotate_offset(offset: tuple[int, int], k: int) -> tuple[int, int]:
    """Displacement ``(dy, dx)`` in the image rotated ``k`` times by ``np.rot90``, expressed in the original image."""
    dy, dx = offset
    for _ in range(k % 4):
        dy, dx = dx, -dy
    return dy, dx


def rotate_patch_index(u: int, v: int, r: int, k: int) -> tuple[int, int]:
    """Where entry ``(u, v)`` of an ``r x r`` output patch computed on the ``k``-times rotated image lands once the
    result is rotated back."""
    for _ in range(k % 4):
        u, v = v, r - 1 - u
    return u, v


def rotated_offsets(field: ReceptiveField) -> np.ndarray:
    """``[4, n, 2]`` int64: ``(dy, dx)`` of input ``j`` for rotation ``k``, in original-image coordinates."""
    return np.array([[rotate_offset(o, k) for o in field.offsets] for k in range(4)], dtype=np.int64)


def square_blocks(field: ReceptiveField) -> tuple[np.ndarray, np.ndarray] | None:
    """For a field that covers a 2x2 block in every rotation (S): ``(anchors [4, 2], slots [4, n])`` int64, where
    rotation ``k`` at pixel ``(y, x)`` reads the block whose top-left is ``(y, x) - anchors[k]`` and input ``j`` is the
    block's pixel ``slots[k, j]`` (``2 * row + column``); None for any other field.

    The four rotations of the four pixels that share a block read the same four values, so a kernel can walk each
    block once for all of them (:func:`hatast.lut.cpu_kernel.ensemble`)."""
    offsets = rotated_offsets(field)
    anchors = -offsets.min(axis=1)
    inside = offsets + anchors[:, None, :]
    if field.size != 4 or inside.max() > 1:
        return None
    return anchors, inside[:, :, 0] * 2 + inside[:, :, 1]


def padding(field: ReceptiveField) -> int:
    """Reflection margin needed on every side so that all four rotations read inside the padded image."""
    return max(max(abs(dy), abs(dx)) for dy, dx in field.offsets)


LAYOUTS = ("patch", "channels")


@dataclass(frozen=True)
class OutputLayout:
    """What the ``m`` values of a table row are and where they go.

    * ``patch``: an ``r x r`` HR patch per input pixel (SR-LUT), ``m = r * r`` in row-major order; a rotation of the
      input rotates the patch, so each rotation's entries are moved back (:meth:`placement`).
    * ``channels``: ``m`` maps at the input's resolution (IM-LUT's mixing weights, a refiner's residual: ``m = 1``);
      their meaning does not turn with the image, so rotations only add up.

    Attributes:
        kind: "patch" or "channels".
        count: ``m``, values per row.
        scale: ``r`` of a patch (1 for channels).
        names: what each channel means (e.g. the interpolations whose weights they are); empty for patches.
    """

    kind: str
    count: int
    scale: int = 1
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in LAYOUTS:
            raise ValueError(f"unknown output layout {self.kind!r}; expected one of {LAYOUTS}")
        if self.kind == "patch" and self.count != self.scale * self.scale:
            raise ValueError(f"a patch layout of scale {self.scale} has {self.scale ** 2} values, not {self.count}")
        if self.kind == "channels" and (self.scale != 1 or (self.names and len(self.names) != self.count)):
            raise ValueError(f"a channels layout has scale 1 and one name per channel, got scale {self.scale} and "
                             f"names {list(self.names)} for {self.count} channels")

    @classmethod
    def patch(cls, scale: int) -> OutputLayout:
        return cls("patch", scale * scale, scale)

    @classmethod
    def channels(cls, count: int, names: tuple[str, ...] = ()) -> OutputLayout:
        return cls("channels", count, 1, tuple(names))

    def placement(self) -> np.ndarray:
        """``[4, m]`` int64: the original-frame position of rotated-frame value ``t`` for each rotation."""
        if self.kind == "channels":
            return np.tile(np.arange(self.count, dtype=np.int64), (4, 1))
        r = self.scale
        placement = np.empty((4, r * r), dtype=np.int64)
        for k in range(4):
            for u in range(r):
                for v in range(r):
                    y, x = rotate_patch_index(u, v, r, k)
                    placement[k, u * r + v] = y * r + x
        return placement

    def output_shape(self, planes: int, height: int, width: int) -> tuple[int, ...]:
        """Shape of the placed result for ``[planes, height, width]`` input: ``[P, H*r, W*r]`` (patch) or
        ``[P, m, H, W]`` (channels)."""
        if self.kind == "patch":
            return (planes, height * self.scale, width * self.scale)
        return (planes, self.count, height, width)

    def write_offsets(self, planes: int, height: int, width: int,
                      channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Flat positions in the contiguous placed result: ``(steps, offsets)`` with ``steps = (plane, row, col)``
        element strides of input pixel ``(p, y, x)`` and ``offsets[t]`` of value ``t``, so value ``t`` of pixel
        ``(p, y, x)`` goes to ``p * steps[0] + y * steps[1] + x * steps[2] + offsets[t]``. ``channels_last``
        (patches only) places into ``[H*r, W*r, P]``, the layout of an HWC image.

        One writer for every layout is what lets one fused kernel serve SR-LUT and IM-LUT tables."""
        r, m = self.scale, self.count
        t = np.arange(m, dtype=np.int64)
        if self.kind == "channels":
            if channels_last:
                raise ValueError("channels_last applies to patch layouts only")
            return np.array([m * height * width, width, 1], np.int64), t * height * width
        u, v = t // r, t % r
        if channels_last:
            return np.array([1, r * width * r * planes, r * planes], np.int64), (u * width * r + v) * planes
        return np.array([height * r * width * r, r * width * r, r], np.int64), u * width * r + v
