"""Manifest entries (and cards) for the authors' released checkpoints hatast loads: HAT-S, HAT, HAT-L x4 and USRNet.

hatast does not redistribute them and has no checksum for them (``sha256: null``); the entries say which file to
fetch, what it holds (architecture and config read by :func:`hatast.archs.detect.detect` from the key lists in
``shared/fixtures/reference/keys``, parameter count) and the published figures (``hatast/eval/published.yml``),
so that ``hatast upscale --model HAT-S_SRx4 --weights-dir FOLDER`` finds and checks them (keys and shapes are still
checked strictly when loaded).

Usage: ``python scripts/authors_releases.py --keys ../shared/fixtures/reference/keys``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HAT_REPO = "XPixelGroup/HAT (GitHub), its README's Google Drive / Baidu links"
USRNET_REPO = "cszn/KAIR and cszn/USRNet (GitHub), their model_zoo links"
AUTHORS = [  # name, file, keys file, family, title, published model name, where
    ("HAT-S_SRx4", "HAT-S_SRx4.pth", "keys_HAT-S_x4.txt", "hat", "the authors' HAT-S x4", "HAT-S", HAT_REPO),
    ("HAT_SRx4", "HAT_SRx4.pth", "keys_HAT_x4.txt", "hat", "the authors' HAT x4", "HAT", HAT_REPO),
    ("HAT_SRx4_ImageNet-pretrain", "HAT_SRx4_ImageNet-pretrain.pth", "keys_HAT_x4.txt", "hat",
     "the authors' HAT x4, ImageNet pre-training", None, HAT_REPO),
    ("HAT-L_SRx4_ImageNet-pretrain", "HAT-L_SRx4_ImageNet-pretrain.pth", "keys_HAT-L_x4.txt", "hat",
     "the authors' HAT-L x4, ImageNet pre-training", "HAT-L", HAT_REPO),
    ("USRNet", "usrnet.pth", "keys_USRNet.txt", "usrnet", "the authors' USRNet", None, USRNET_REPO),
    ("USRNet-tiny", "usrnet_tiny.pth", "keys_USRNet_tiny.txt", "usrnet", "the authors' USRNet-tiny", None,
     USRNET_REPO),
]


def shapes(path: Path) -> dict:
    """A state dict of empty meta tensors with the listed keys and shapes (``key<TAB>(shape)[<TAB>dtype]``)."""
    import torch

    state = {}
    for line in path.read_text().splitlines():
        key, shape, *dtype = line.split("\t")
        size = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
        kind = torch.int64 if dtype and "int" in dtype[0] else torch.float32
        state[key] = torch.empty(size, dtype=kind, device="meta")
    return state


def entry_for(name, file, keys, family, title, published_name, where):
    import hatast.models  # noqa: F401
    from hatast.archs.detect import detect
    from hatast.eval.published import published
    from hatast.release import Release, ReleaseFile, ScoreRow

    state = shapes(keys)
    model = detect(state)
    config = {k: v for k, v in model.config.items() if k != "type"}
    scale = model.scale
    rows = []
    row = published(published_name, 4) if published_name else None
    if row is not None:
        scores = {s: [p, row.ssim.get(s)] for s, p in row.psnr.items()}
        rows.append(ScoreRow(f"published ({row.source})", scores))
    usage = "--scale 4 --kernel gaussian:1.6" if family == "usrnet" else ""
    return Release(
        name=name, title=title, family=family, architecture=model.name,
        scale=list(scale) if isinstance(scale, tuple) else scale, files=[ReleaseFile(file, None)], config=config,
        parameters=sum(v.numel() for k, v in state.items() if v.is_floating_point()), source="authors",
        summary=(f"The authors' checkpoint `{file}` ({len(state)} entries under `params_ema`/`params`/bare; "
                 f"get it from {where}); not redistributed by hatast, which loads it unchanged and checks every "
                 "key and shape against the architecture below. No checksum is published, so none is checked."),
        usage=usage, results_protocol="Figures published by the authors (not measured here: the package does "
                                      "not have these weights):" if rows else "",
        results=rows, licence="the authors' (see their repository)",
        produced_by="python scripts/authors_releases.py --keys ../shared/fixtures/reference/keys")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=Path, default=REPO.parent / "shared" / "fixtures" / "reference" / "keys")
    parser.add_argument("--out", type=Path, default=REPO / "hatast" / "weights")
    args = parser.parse_args()
    from hatast.release import publish

    for name, file, keys, family, title, published_name, where in AUTHORS:
        entry = entry_for(name, file, args.keys / keys, family, title, published_name, where)
        print(f"{name}: {entry.architecture} x{entry.scale}, {entry.parameters} parameters -> "
              f"{publish(entry, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
