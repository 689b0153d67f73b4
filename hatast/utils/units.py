"""How counts and sizes are written in tables (the benchmark runner's, the model cards, the README's)."""

from __future__ import annotations


def count(n: int | None) -> str:
    """A count with its unit (``9.62M``, ``565.91K``), ``-`` for unknown."""
    if n is None:
        return "-"
    for unit, step in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= step:
            return f"{n / step:.2f}{unit}"
    return str(n)


def storage(n: int | None) -> str:
    """Bytes as MiB or KiB, ``-`` for unknown."""
    if n is None:
        return "-"
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"
