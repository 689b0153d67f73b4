"""``hatast convert-ast``: turn a HAT checkpoint (e.g. the released HAT-S x4) into an HAT+AST checkpoint that starts
from (almost) the same function, then report how far the two outputs are apart on a sample photograph."""

from __future__ import annotations

import sys

import torch
import yaml

from ..archs.hat_arch import HAT, hat_config_from_state_dict
from ..archs.hat_ast_arch import HATAST, convert_hat_to_ast
from ..utils.arguments import OneLineParser, bounded
from ..utils.checkpoint import CheckpointError, check_fit, read_state_dict, save_atomic
from ..utils.errors import command
from ..utils.files import OutputError
from ..utils.paths import OutputFolder, shown


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="hatast convert-ast", description=__doc__.splitlines()[0])
    parser.add_argument("input", help="HAT checkpoint")
    parser.add_argument("output", help="where to write the HAT+AST checkpoint (params and params_ema); never the "
                        "input itself")
    parser.add_argument("--param-key", default=None, help="entry of the input to use (default: params_ema, params)")
    parser.add_argument("--overwrite", action="store_true", help="replace the output checkpoint if it exists")
    parser.add_argument("--overlap-ratio", type=bounded(float, 0, 2), default=0.75,
                        help="overlap of the cross-attention windows, 0 to 2, no narrower than the checkpoint's "
                             "(default: %(default)s)")
    parser.add_argument("--attention", choices=["assa", "softmax"], default="assa")
    parser.add_argument("--ffn", choices=["frfn", "mlp"], default="frfn")
    parser.add_argument("--assa-weighting", choices=["sigmoid", "softmax2"], default="sigmoid")
    parser.add_argument("--assa-init-logit", type=bounded(float, -50, 50), default=14.0,
                        help="start with softmax weight sigmoid(logit) (default: %(default)s)")
    parser.add_argument("--border-key-bias", type=bounded(float, -100, 100), default=-14.0,
                        help="starting bias of the keys the wider overlap adds (default: %(default)s)")
    parser.add_argument("--check-size", type=bounded(int, 0, 512), default=64,
                        help="side of the sample crop used to measure the deviation, up to 512 (0: skip the check)")
    return parser


def measure_deviation(state_in: dict, state_out: dict, config: dict, size: int) -> float:
    """Max abs difference of the two networks' outputs on a ``size`` x ``size`` crop of a real photograph."""
    import skimage.data

    img = skimage.data.astronaut()[:size, :size].astype("float32") / 255
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    before = HAT(**hat_config_from_state_dict(state_in)).eval()
    before.load_state_dict(state_in)
    after = HATAST(**config).eval()
    after.load_state_dict(state_out)
    with torch.no_grad():
        return (before(x) - after(x)).abs().max().item()


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    outputs, output = OutputFolder.for_file(args.output, "output", inputs=[args.input], overwrite=args.overwrite)
    state, entry = read_state_dict(args.input, args.param_key)
    try:
        hat = HAT(**hat_config_from_state_dict(state))
    except (KeyError, IndexError, ValueError, TypeError) as err:
        raise CheckpointError(f"{args.input} [{entry}]: not a HAT checkpoint ({type(err).__name__}: {err})") from None
    check_fit(hat, state, strict=True, source=f"{args.input} [{entry}]")  # the one validation of weights
    new_state, config = convert_hat_to_ast(
        state, overlap_ratio=args.overlap_ratio, ocab_attention=args.attention, ocab_ffn=args.ffn,
        assa_weighting=args.assa_weighting, assa_init_logit=args.assa_init_logit,
        border_key_bias=args.border_key_bias)
    outputs.check_writable()
    try:
        save_atomic({"params": new_state, "params_ema": new_state}, output)
    except OSError as err:
        raise OutputError(f"{shown(output)}: could not write the checkpoint ({err.strerror or err})") from None
    print(f"wrote {shown(output)} (from {args.input} [{entry}])"
          + (" replacing the earlier file (--overwrite)" if outputs.replaced else ""))
    if args.check_size:
        deviation = measure_deviation(state, new_state, config, args.check_size)
        print(f"max |HAT - HAT+AST| on a {args.check_size}x{args.check_size} photo crop: {deviation:.2e}")
    print("network_g for the option file:")
    print(yaml.safe_dump({"network_g": {"type": "HATAST", **config}}, sort_keys=False, default_flow_style=None), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
