"""``hatast`` command: one entry for training, testing, upscaling images and the quick-start demo."""

from __future__ import annotations

import importlib
import sys

USAGE = """usage: hatast COMMAND [ARGS]

commands:
  train     train from an option file          (hatast train -opt options/train/X.yml)
  test      test from an option file           (hatast test -opt options/test/X.yml)
  quickstart  upscale sample photos with the default released model; PSNR/SSIM next to bicubic
  upscale   upscale images                     (hatast upscale photo.png --model SRLUT-S_SRx4)
  models    the released models (--model names), where their files are, whether they are present
  export    a network as ONNX with dynamic size (HAT, HAT+AST, USRNet), checked with onnxruntime
  release   a checkpoint or table -> release files (.safetensors + .pth or .npz), manifest entry, model card
  convert-ast  HAT checkpoint -> HAT+AST checkpoint starting from the same function
  lut       SR-LUT tables: 'lut transfer' (net -> table file), 'lut info' (what a table file holds)
  bench     PSNR/SSIM, size and speed on the benchmark sets, next to bicubic and the published figures
  prepare   'prepare benchmark' (HR folder -> standard LR set), 'prepare train' (sub-images, LMDB)
  figure    side-by-side crops (HR | bicubic | each model) with PSNR, for READMEs and papers
  demo      train a tiny HAT on sample images shipped with scikit-image, then test it

'hatast COMMAND --help' describes each command.
"""


COMMANDS = {"quickstart": "quickstart", "upscale": "upscale", "models": "models", "export": "export",
            "release": "release", "convert-ast": "convert_ast", "lut": "lut", "bench": "bench", "prepare": "prepare",
            "figure": "figure", "demo": "demo"}
"""Command -> module of ``hatast.cli`` whose ``main(argv) -> int`` runs it (train and test go to the engine)."""


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command in ("train", "test"):
        from ..engine import run_cli, test, train

        sys.exit(run_cli(train if command == "train" else test, rest))
    if command in COMMANDS:  # each command's module is imported only when it runs (a table upscale loads no torch)
        module = importlib.import_module(f"{__package__}.{COMMANDS[command]}")
        sys.exit(module.main(rest))
    print(f"hatast: unknown command '{command}'\n\n{USAGE}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
