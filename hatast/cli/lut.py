"""``hatast lut``: transfer a trained SR-LUT net or IM-Net to a table file, and show what a table file holds.

  hatast lut transfer net_g_latest.pth -o SRLUT-S_x4.npz [--interval 4]
  hatast lut transfer net_g_latest.pth -o IMLUT-NLC.npz        (an IM-Net: weight, refiner and scale tables)
  hatast lut info SRLUT-S_x4.npz
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..archs.detect import detect
from ..archs.imlut_arch import IMNet
from ..lut.table import LUTError, load_file
from ..utils.arguments import OneLineParser, non_negative_int
from ..utils.checkpoint import CheckpointError, load_into, load_state_dict
from ..utils.files import OutputError, check_output_file


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="hatast lut", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    transfer = commands.add_parser("transfer", help="SR-LUT net or IM-Net checkpoint -> table file")
    transfer.add_argument("checkpoint", help="SRLUTNet or IMNet checkpoint (.pth or .safetensors)")
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
            loaded = load_file(args.table)
            rows = {name: table.entries.shape[0] for name, table in loaded.tables.items()}
            print(json.dumps({**loaded.metadata(), "rows": rows, "bytes": loaded.nbytes}, indent=2))
            return 0
        if Path(args.output).suffix.lower() != ".npz":
            raise LUTError(f"-o {args.output}: LUT files are written as .npz")
        check_output_file(args.output, [args.checkpoint], option="-o")
        state = load_state_dict(args.checkpoint, args.param_key)
        try:
            model = detect(state)
        except ValueError:
            model = None
        if model is None or model.name not in ("SRLUTNet", "IMNet"):
            raise ValueError(f"{args.checkpoint}: not an SRLUTNet or IMNet checkpoint"
                             + (f" (it holds a {model.name})" if model is not None else ""))
        net = model.network.eval()
        load_into(net, state, strict=True, source=args.checkpoint)
        tables = net.to_tables(args.interval) if isinstance(net, IMNet) else net.to_table(args.interval)
        tables.info = {"source": str(args.checkpoint), "network_g": model.config}
        tables.save(args.output)
    except (CheckpointError, LUTError, OutputError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {args.output}: could not write the table ({err.strerror or err})", file=sys.stderr)
        return 2
    if isinstance(net, IMNet):
        print(f"wrote {args.output}: IM-LUT {net.interpolations}, interval 2**{args.interval}, weight + refiner + "
              f"scale tables, {tables.nbytes / 1024:.1f} KiB")
    else:
        print(f"wrote {args.output}: SR-LUT {tables.kind} x{tables.scale}, interval 2**{tables.interval}, "
              f"{tables.entries.shape[0]} rows, {tables.nbytes / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
