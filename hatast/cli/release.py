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
from pathlib import Path

from ..release import (
    MANIFEST_NAME,
    Release,
    ReleaseError,
    ScoreRow,
    Section,
    Stage,
    publish,
    read_manifest,
    write_release_files,
)
from ..utils.arguments import OneLineParser
from ..utils.errors import command
from ..utils.files import file_sha256
from ..utils.paths import OutputFolder, shown

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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a release of the same name in the release folder (its files are replaced, and "
                             "those the new release does not have are removed)")
    parser.add_argument("--bench-out", default="results/release",
                        help="--bench's per-image CSV files go to BENCH_OUT/<name> (default: %(default)s)")
    return parser


def card_fields(path: str) -> dict:
    """The manifest fields a ``--card`` YAML file sets, checked against :class:`Release`'s."""
    from ..utils.yaml_io import read_yaml_file

    raw = read_yaml_file(path, what="--card") or {}
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


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = args.name
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or name.startswith("."):
        raise ReleaseError(f"--name {name!r}: use letters, digits, '-', '_' and '.' only (not first)")
    source = Path(args.source)
    if not source.is_file():
        raise ReleaseError(f"{source}: no such file")
    outputs = OutputFolder(args.out, "-o", inputs=[source, args.card], overwrite=args.overwrite)
    fields = card_fields(args.card) if args.card else {}
    outputs.check_writable()
    manifest = outputs.path(MANIFEST_NAME, what="manifest")
    earlier = read_manifest(manifest).get(name)
    if earlier is not None and not args.overwrite:
        raise ReleaseError(f"{name} is already released in {shown(manifest)} (files "
                           f"{', '.join(f.name for f in earlier.files)}); add --overwrite to replace it, or choose "
                           "another --name")
    # staged: files, measurements and card move into place together, or the release folder is left as it was
    staging = outputs.folder(f".staging-{name}", what="staging folder")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        entry = write_release_files(source, name, staging, args.param_key)
        for key, value in fields.items():
            setattr(entry, key, value)
        targets = [outputs.path(f"{entry.folder}/{f.name}", what="release file") for f in entry.files]
        card = outputs.path(f"{entry.folder}/{entry.name}.md", what="model card")
        present = [t for t in [*targets, card] if outputs.exists(t, keep=False)]
        if present and not args.overwrite:
            raise ReleaseError(f"{shown(present[0])} exists (not from a release of {name} in {shown(manifest)}); add "
                               "--overwrite to replace it, or choose another --name or -o")
        if args.bench:
            measure(entry, staging / entry.folder / entry.files[0].name, args.bench, args.sets,
                    Path(args.bench_out) / entry.name)
        for file, target in zip(entry.files, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / entry.folder / file.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    publish(entry, outputs.root)
    removed = _remove_orphans(earlier, entry, outputs) if earlier is not None else []
    if earlier is not None:
        print(f"replaced the earlier release {name} (--overwrite)"
              + (f"; removed its files the new one does not have: {', '.join(map(shown, removed))}" if removed else ""))
    print(f"{entry.name}: " + ", ".join(f"{shown(t)} (sha256 {f.sha256[:12]}...)" for f, t in zip(entry.files, targets))
          + f"; card {shown(card)}; manifest {shown(manifest)}")
    return 0


def _remove_orphans(earlier: Release, entry: Release, outputs: OutputFolder) -> list[Path]:
    """The earlier release's files that the new one does not replace (another family's folder, another format),
    deleted when they are still what that release wrote (their SHA-256 matches its manifest entry)."""
    kept = {(entry.folder, f.name) for f in entry.files}
    removed = []
    for file in earlier.files:
        if (earlier.folder, file.name) in kept or file.sha256 is None:
            continue
        path = outputs.root / earlier.folder / file.name
        if path.is_file() and outputs.inside(path) and file_sha256(path) == file.sha256:
            path.unlink()
            removed.append(path)
    card = outputs.root / earlier.folder / f"{earlier.name}.md"
    if earlier.folder != entry.folder and card.is_file() and outputs.inside(card):
        card.unlink()
        removed.append(card)
    return removed
