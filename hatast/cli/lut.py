"""``hatast lut``: transfer a trained SR-LUT net or IM-Net to a table file, and show what a table file holds.

  hatast lut transfer net_g_latest.pth -o SRLUT-S_x4.npz [--interval 4]
  hatast lut transfer net_g_latest.pth -o IMLUT-NLC.npz        (an IM-Net: weight, refiner and scale tables)
  hatast lut info SRLUT-S_x4.npz
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..lut.table import LUTError, load_file
from ..utils.arguments import OneLineParser, bounded
from ..utils.errors import UsageError, command
from ..utils.files import OutputError
from ..utils.paths import OutputFolder, shown


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="hatast lut", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    transfer = commands.add_parser("transfer", help="SR-LUT net or IM-Net checkpoint -> table file")
    transfer.add_argument("checkpoint", help="SRLUTNet or IMNet checkpoint (.pth or .safetensors)")
    transfer.add_argument("-o", "--output", required=True, help="table file to write (.npz)")
    transfer.add_argument("--interval", type=bounded(int, 0, 8), default=4, help="sample every 2**N levels, N in 0..8 "
                          "(default: %(default)s; 0 stores the full table)")
    transfer.add_argument("--param-key", default=None, help="entry to use (default: params_ema, then params)")
    transfer.add_argument("--overwrite", action="store_true", help="replace the table file if it exists")
    info = commands.add_parser("info", help="print a table file's metadata")
    info.add_argument("table", help=".npz (hatast) or .npy (SR-LUT authors) table")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "info":
        loaded = load_file(args.table)
        rows = {name: table.entries.shape[0] for name, table in loaded.tables.items()}
        print(json.dumps({**loaded.metadata(), "rows": rows, "bytes": loaded.nbytes}, indent=2))
        return 0
    if Path(args.output).suffix.lower() != ".npz":
        raise LUTError(f"-o {args.output}: LUT files are written as .npz")
    outputs, output = OutputFolder.for_file(args.output, "-o", inputs=[args.checkpoint], overwrite=args.overwrite)
    from ..archs.detect import UnknownArchitecture  # torch: only the transfer needs it ('lut info' stays light)
    from ..archs.imlut_arch import IMNet
    from ..inference import load_network

    try:
        model, _ = load_network(args.checkpoint, args.param_key, "cpu")  # read, recognised, validated, loaded
    except UnknownArchitecture:
        raise UsageError(f"{args.checkpoint}: not an SRLUTNet or IMNet checkpoint (no architecture hatast "
                         "recognises)") from None
    if model.name not in ("SRLUTNet", "IMNet"):
        raise UsageError(f"{args.checkpoint}: not an SRLUTNet or IMNet checkpoint (it holds a {model.name})")
    net = model.network
    tables = net.to_tables(args.interval) if isinstance(net, IMNet) else net.to_table(args.interval)
    tables.info = {"source": str(args.checkpoint), "network_g": model.config}
    outputs.check_writable()
    try:
        tables.save(output)
    except OSError as err:
        raise OutputError(f"{shown(output)}: could not write the table ({err.strerror or err})") from None
    again = " replacing the earlier file (--overwrite)" if outputs.replaced else ""
    if isinstance(net, IMNet):
        print(f"wrote {shown(output)}{again}: IM-LUT {net.interpolations}, interval 2**{args.interval}, weight + "
              f"refiner + scale tables, {tables.nbytes / 1024:.1f} KiB")
    else:
        print(f"wrote {shown(output)}{again}: SR-LUT {tables.kind} x{tables.scale}, interval 2**{tables.interval}, "
              f"{tables.entries.shape[0]} rows, {tables.nbytes / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
