"""Receptive fields of the look-up-table models and the geometry of the rotation ensemble.

A table maps the values of ``n`` neighbouring LR pixels to an ``r x r`` HR patch. The authors evaluate it on the four
90-degree rotations of the image (``np.rot90`` counter-clockwise, then padded at the bottom/right with reflection) and
rotate each result back. Instead of rotating images we express each rotation in the original image's coordinates:
rotation ``k`` reads the neighbours at ``rotate_offset(offset, k)`` and writes its patch entry ``(u, v)`` at
``rotate_patch_index(u, v, r, k)``. Both the vectorised torch path and the fused CPU kernel use these two maps, so the
geometry lives here once.
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


def rotation_geometry(field: ReceptiveField, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-rotation neighbour offsets and patch placement as integer arrays.

    Returns:
        offsets: ``[4, n, 2]`` int64, ``(dy, dx)`` of input ``j`` for rotation ``k`` in original coordinates.
        placement: ``[4, r*r]`` int64, flat index in the original-frame patch of rotated-frame entry ``u * r + v``.
    """
    offsets = np.array([[rotate_offset(o, k) for o in field.offsets] for k in range(4)], dtype=np.int64)
    placement = np.empty((4, scale * scale), dtype=np.int64)
    for k in range(4):
        for u in range(scale):
            for v in range(scale):
                y, x = rotate_patch_index(u, v, scale, k)
                placement[k, u * scale + v] = y * scale + x
    return offsets, placement


def padding(field: ReceptiveField) -> int:
    """Reflection margin needed on every side so that all four rotations read inside the padded image."""
    return max(max(abs(dy), abs(dx)) for dy, dx in field.offsets)
