"""``hatast`` command: one entry for training, testing, upscaling images and the quick-start demo."""

from __future__ import annotations

import sys

USAGE = """usage: hatast COMMAND [ARGS]

commands:
  train     train from an option file          (hatast train -opt options/train/X.yml)
  test      test from an option file           (hatast test -opt options/test/X.yml)
  upscale   upscale images with a checkpoint   (hatast upscale -w weights.pth image.png ...)
  convert-ast  HAT checkpoint -> HAT+AST checkpoint starting from the same function
  lut       SR-LUT tables: 'lut transfer' (net -> table file), 'lut info' (what a table file holds)
  demo      train a tiny HAT on sample images shipped with scikit-image, then test it

'hatast COMMAND --help' describes each command.
"""


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command in ("train", "test"):
        from ..engine import run_cli, test, train

        sys.exit(run_cli(train if command == "train" else test, rest))
    if command == "upscale":
        from .upscale import main as upscale

        sys.exit(upscale(rest))
    if command == "convert-ast":
        from .convert_ast import main as convert_ast

        sys.exit(convert_ast(rest))
    if command == "lut":
        from .lut import main as lut

        sys.exit(lut(rest))
    if command == "demo":
        from .demo import main as demo

        sys.exit(demo(rest))
    print(f"hatast: unknown command '{command}'\n\n{USAGE}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
