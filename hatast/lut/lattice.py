"""The sampling lattice of a look-up table, shared by the torch path (:mod:`.simplex`) and the fused CPU kernel
(:mod:`.cpu_kernel`); plain numpy, so the CPU path runs without torch.

A table samples every input pixel at ``L = 2**(8 - interval) + 1`` levels ``0, q, 2q, ..., 255`` (``q = 2**interval``;
the last level stands for 256, as in the authors' transfer). A row index is the input digits read in base ``L``, the
first input the most significant. The four-rotation sum of interpolated entries is turned into a pixel by one
lookup (:func:`rounding_map`).
"""

from __future__ import annotations

import numpy as np

AUTHORS_S_ORDER = (2, 0, 3, 1)
"""Corner order the SR-LUT authors' 4-simplex code uses when the remainders satisfy ``f_c > f_d > f_a > f_b``
(their branch tests ``f_c > f_d`` where it should test ``f_a > f_d``); the correct order there is ``(2, 3, 0, 1)``."""


def levels(interval: int) -> int:
    """Number of sampled levels per input pixel for a sampling interval of ``2**interval``."""
    if not 0 <= interval <= 8:
        raise ValueError(f"sampling interval must be 2**0 .. 2**8, got 2**{interval}")
    return (256 >> interval) + 1


def index_strides(n: int, interval: int) -> list[int]:
    """Row stride of each input digit: the first input is the most significant."""
    count = levels(interval)
    return [count ** (n - 1 - j) for j in range(n)]


def rounding_map(interval: int, bound: int) -> np.ndarray:
    """uint8 output for every ensemble sum ``s`` in ``[-bound, bound]`` (index ``s + bound``), computed with the
    authors' float64 operations: ``round(clip(s / q / 255, 0, 1) * 255)``, rounding half to even like ``np.round``."""
    sums = np.arange(-bound, bound + 1, dtype=np.float64)
    return np.round(np.clip(sums / (1 << interval) / 255.0, 0, 1) * 255).astype(np.uint8)


def ensemble_bound(interval: int, authors_order: bool) -> int:
    """Largest ``|s|`` the four-rotation sum of an int8 table can reach (the authors' wrong corners can give weights
    of both signs summing in absolute value up to ``3q``)."""
    return 4 * 128 * (3 if authors_order else 1) * (1 << interval)
