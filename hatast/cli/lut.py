"""``hatast lut``: transfer a trained SR-LUT net to a table file, and show what a table file holds.

  hatast lut transfer net_g_latest.pth -o SRLUT-S_x4.npz [--interval 4]
  hatast lut info SRLUT-S_x4.npz
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..archs.srlut_arch import SRLUTNet, is_srlut_state_dict, srlut_config_from_state_dict
from ..lut.table import LUTError, load_table
from ..utils.arguments import OneLineParser, non_negative_int
from ..utils.checkpoint import CheckpointError, load_into, load_state_dict
from ..utils.files import OutputError, check_output_file


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="hatast lut", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    transfer = commands.add_parser("transfer", help="SR-LUT net checkpoint -> table file")
    transfer.add_argument("checkpoint", help="SRLUTNet checkpoint (.pth or .safetensors)")
    transfer.add_argument("-o", "--output", required=True, help="table file to write (.npz)")
    transfer.add_argument("--interval", type=non_negative_int, default=4, help="sample every 2**N levels, N in 0..8 "
                          "(default: %(default)s; 0 stores the full table)")
    transfer.add_argument("--param-key", default=None, help="entry to use (default: params_ema, then params)")
    info = commands.add_parser("info", help="print a table file's metadata")
    info.add_argument("table", help=".npz (hatast) or .npy (SR-LUT authors) table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            table = load_table(args.table)
            print(json.dumps({**table.metadata(), "rows": table.entries.shape[0], "bytes": table.nbytes}, indent=2))
            return 0
        if Path(args.output).suffix.lower() != ".npz":
            raise LUTError(f"-o {args.output}: LUT files are written as .npz")
        check_output_file(args.output, [args.checkpoint], option="-o")
        state = load_state_dict(args.checkpoint, args.param_key)
        if not is_srlut_state_dict(state):
            raise ValueError(f"{args.checkpoint}: not an SRLUTNet checkpoint (no 'net.body.0.weight' grey conv)")
        config = srlut_config_from_state_dict(state)
        net = SRLUTNet(**config).eval()
        load_into(net, state, strict=True, source=args.checkpoint)
        table = net.to_table(args.interval)
        table.info = {"source": str(args.checkpoint), "network_g": {"type": "SRLUTNet", **config}}
        table.save(args.output)
    except (CheckpointError, LUTError, OutputError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {args.output}: could not write the table ({err.strerror or err})", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: SR-LUT {table.kind} x{table.scale}, interval 2**{table.interval}, "
          f"{table.entries.shape[0]} rows, {table.nbytes / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
