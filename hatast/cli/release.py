"""``hatast release``: a training checkpoint or a table -> release files, a manifest entry and a model card.

Networks become ``<name>.safetensors`` (architecture and config in the metadata) and ``<name>.pth``
(``{"params_ema": ...}``, loadable with ``weights_only``): the EMA weights only, no optimizer state, the authors' key
names and persistent buffers kept. Tables are copied as ``<name>.npz``. The entry (files with SHA-256, architecture,
config, parameters) is completed from ``--card`` (a YAML file with any of the manifest's fields: title, summary,
data, stages, licence, sections...) and from ``--bench`` (the benchmark runner's PSNR/SSIM of the file and of
bicubic on Set5/Set14 at the model's scale, and its median time per image), then written to ``<out>/manifest.json``
with the card ``<out>/<family>/<name>.md``. ``hatast upscale --model NAME --weights-dir OUT`` then finds it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from pathlib import Path

from ..release import Release, ReleaseError, ScoreRow, Section, Stage, publish, write_release_files
from ..utils.arguments import OneLineParser

CARD_FIELDS = {"title", "summary", "usage", "data", "stages", "results_protocol", "results", "speed", "licence",
               "produced_by", "sections", "source"}


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="hatast release", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="training checkpoint (.pth, .safetensors) or table (.npz)")
    parser.add_argument("--name", required=True, help="release name, e.g. HAT-tiny_SRx4_CPU (letters, digits, -_.)")
    parser.add_argument("-o", "--out", default="releases", help="release folder (default: %(default)s)")
    parser.add_argument("--param-key", default=None, help="checkpoint entry (default: params_ema, then params)")
    parser.add_argument("--card", default=None, help="YAML with the card's fields (title, data, stages, ...)")
    parser.add_argument("--bench", default=None, metavar="ROOT",
                        help="benchmark root (ROOT/Set5/HR, ROOT/Set5/LR_bicubic/X4, ...): measure the results")
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14"], help="sets for --bench")
    parser.add_argument("--bench-out", default="results/release",
                        help="--bench's per-image CSV files go to BENCH_OUT/<name> (default: %(default)s)")
    return parser


def card_fields(path: str) -> dict:
    """The manifest fields a ``--card`` YAML file sets, checked against :class:`Release`'s."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ReleaseError(f"--card {path}: not a readable YAML file ({err})") from None
    if not isinstance(raw, dict):
        raise ReleaseError(f"--card {path}: expected a mapping of card fields")
    unknown = sorted(set(raw) - CARD_FIELDS)
    if unknown:
        raise ReleaseError(f"--card {path}: unknown field(s) {', '.join(unknown)} (known: "
                           f"{', '.join(sorted(CARD_FIELDS))})")
    try:
        raw["stages"] = [Stage(**s) for s in raw.get("stages", [])]
        raw["results"] = [ScoreRow(**r) for r in raw.get("results", [])]
        raw["sections"] = [Section(**s) for s in raw.get("sections", [])]
    except TypeError as err:
        raise ReleaseError(f"--card {path}: {err}") from None
    return raw


def measure(entry: Release, weights: Path, root: str, sets: list[str], out: Path) -> None:
    """The benchmark runner's PSNR/SSIM (Y, border = scale) of ``weights`` and of bicubic, and its median time."""
    from ..eval.runner import baseline_method, evaluate, weights_method
    from ..eval.sets import find_pairs

    if not isinstance(entry.scale, int):
        raise ReleaseError(f"--bench: {entry.name} takes the scale as an input; measure it with hatast bench")
    scale = entry.scale
    rows = {}
    times = []
    for method in (weights_method(weights, "cpu", scale=scale), baseline_method("bicubic", scale)):
        scores = {}
        for name in sets:
            result = evaluate(method, name, find_pairs(root, name, scale), scale, out, warmed=set())
            scores[name] = [round(result.mean("psnr"), 2), round(result.mean("ssim"), 4)]
            if method.name != "bicubic":
                times += result.times()
        rows[method.name] = scores
    own, bicubic = rows.values()
    entry.results = [ScoreRow(f"{entry.name} = this file", own), ScoreRow("bicubic (MATLAB imresize)", bicubic)]
    entry.results_protocol = (f"PSNR (dB) / SSIM on Y, border {scale}, BasicSR's metrics, measured by "
                              f"`hatast release --bench` (the benchmark runner) at x{scale}:")
    import torch

    entry.speed = (f"{statistics.median(times):.1f} ms median per image over {', '.join(sets)} on the CPU, "
                   f"{torch.get_num_threads()} threads (the benchmark runner's timing of each image once, after a "
                   "warm-up call).")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    try:
        if not args.name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ReleaseError(f"--name {args.name!r}: use letters, digits, '-', '_' and '.' only")
        fields = card_fields(args.card) if args.card else {}
        source = Path(args.source)
        if not source.is_file():
            raise ReleaseError(f"{source}: no such file")
        # staged: files, measurements and card move into place together, or the release folder is left as it was
        staging = out / f".staging-{args.name}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            entry = write_release_files(source, args.name, staging, args.param_key)
            for key, value in fields.items():
                setattr(entry, key, value)
            if args.bench:
                measure(entry, staging / entry.folder / entry.files[0].name, args.bench, args.sets,
                        Path(args.bench_out) / entry.name)
            folder = out / entry.folder
            folder.mkdir(parents=True, exist_ok=True)
            for file in entry.files:
                os.replace(staging / entry.folder / file.name, folder / file.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        card = publish(entry, out)
    except ValueError as err:  # ReleaseError, checkpoint and table errors
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{entry.name}: " + ", ".join(f"{folder / f.name} (sha256 {f.sha256[:12]}...)" for f in entry.files)
          + f"; card {card}; manifest {out / 'manifest.json'}")
    return 0
