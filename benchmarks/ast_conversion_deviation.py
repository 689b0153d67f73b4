"""How far a converted HAT-S + AST is from the HAT-S it came from, step by step.

    python benchmarks/ast_conversion_deviation.py [--size 48]

Builds HAT-S x4 twice: as initialised (small attention logits) and with every weight perturbed by N(0, 0.05^2)
(large logits, closer to a trained network's), converts each with `convert_hat_to_ast` under several settings, and
prints the max abs output difference on a crop of a real photograph (pixel values in [0, 1]).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hatast.archs.hat_arch import build_hat  # noqa: E402
from hatast.archs.hat_ast_arch import HATAST, convert_hat_to_ast  # noqa: E402

SETTINGS = [
    ("FRFN only (softmax, overlap 0.5)", dict(ocab_attention="softmax", overlap_ratio=0.5)),
    ("overlap 0.5 -> 0.75 only (softmax, MLP)", dict(ocab_attention="softmax", ocab_ffn="mlp")),
    ("ASSA only, logit 14 (MLP, overlap 0.5)", dict(ocab_ffn="mlp", overlap_ratio=0.5)),
    ("all: ASSA + FRFN + overlap 0.75, logit 14 (default)", dict()),
    ("all, logit 8", dict(assa_init_logit=8.0)),
    ("all, logit 20", dict(assa_init_logit=20.0)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=48, help="side of the photo crop")
    args = parser.parse_args()
    import skimage.data

    x = torch.from_numpy(skimage.data.astronaut()[100:100 + args.size, 180:180 + args.size] / 255).float()
    x = x.permute(2, 0, 1)[None]
    for title, scale in (("HAT-S as initialised", 0.0), ("HAT-S with weights perturbed by N(0, 0.05^2)", 0.05)):
        torch.manual_seed(0)
        hat = build_hat("HAT-S", 4).eval()
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in hat.parameters():
                p.add_(scale * torch.randn(p.shape, generator=g))
            reference = hat(x)
        print(f"{title}: max |HAT-S - converted| on a {args.size}x{args.size} photo crop")
        for name, options in SETTINGS:
            state, config = convert_hat_to_ast(hat.state_dict(), **options)
            ast = HATAST(**config).eval()
            ast.load_state_dict(state)
            with torch.no_grad():
                print(f"  {name:<52} {(ast(x) - reference).abs().max().item():.1e}", flush=True)


if __name__ == "__main__":
    main()
