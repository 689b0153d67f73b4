"""The published figures the package knows (``published.yml``, each row with its source)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml


@dataclass(frozen=True)
class PublishedRow:
    model: str
    scale: float
    paper: str
    source: str
    psnr: dict[str, float]
    """Per set; under a per-kernel protocol (``usrnet_table1``), per set a list with one PSNR per kernel."""
    ssim: dict[str, float]


@lru_cache(maxsize=1)
def _entries() -> list[dict]:
    return yaml.safe_load((Path(__file__).with_name("published.yml")).read_text())


def published(model: str, scale: float, protocol: str = "bicubic") -> PublishedRow | None:
    """The published row of ``model`` at ``scale`` under ``protocol`` (names as in ``published.yml``: HAT-S,
    SR-LUT-S, bicubic...)."""
    for entry in _entries():
        if entry["model"] != model or entry.get("protocol", "bicubic") != protocol:
            continue
        figures = entry["scales"].get(scale if scale != int(scale) else int(scale))
        if figures and protocol != "bicubic":
            return PublishedRow(model, scale, entry["paper"], entry["source"], figures, {})
        if figures:
            psnr = {name: float(v[0] if isinstance(v, list) else v) for name, v in figures.items()}
            ssim = {name: float(v[1]) for name, v in figures.items() if isinstance(v, list)}
            return PublishedRow(model, scale, entry["paper"], entry["source"], psnr, ssim)
    return None
