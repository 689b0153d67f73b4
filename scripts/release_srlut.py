"""Train, transfer, fine-tune, evaluate and package the released SR-LUT tables, with a model card each.

For each model (default: V/F/S x4, S x2, S x3) this runs the two CPU-recipe stages through the training entry
point (``options/train/SRLUT-<K>_SRx<s>_CPU_net.yml``, then ``..._CPU_table.yml``; both resume with
``--auto_resume``), evaluates the table after each stage on Set5 and Set14 with the benchmark runner, times the
fused kernel on an RGB 320x180 photograph, and writes ``<out>/SRLUT-<K>_SRx<s>.npz`` and a model card
``<out>/SRLUT-<K>_SRx<s>.md``. Finished stages are kept, so rerunning the command continues where it stopped;
``--cards-only`` re-times the released tables and rewrites the cards (timings taken while other models train are
not representative).

Usage: ``python scripts/release_srlut.py --data ../shared/data [--models S4 V4] [--out weights/srlut] [--cards-only]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from release_stages import train_stages  # noqa: E402


def published_pair(kind: str, scale: int) -> tuple[float, float] | None:
    """Published Set5 / Set14 PSNR (Y) of SR-LUT-<kind> x<scale>, from the package's published figures."""
    from hatast.eval.published import published

    row = published(f"SR-LUT-{kind}", scale)
    return (row.psnr["Set5"], row.psnr["Set14"]) if row and {"Set5", "Set14"} <= set(row.psnr) else None


def score_table(table: Path, name: str, scale: int, data: Path, log: Path) -> dict:
    """Set5/Set14 PSNR/SSIM of a table through the benchmark runner (``hatast bench``'s: BasicSR's metrics, Y,
    border = scale)."""
    from hatast.eval.runner import evaluate, weights_method
    from hatast.eval.sets import find_pairs

    method = weights_method(table, "cpu")
    scores = {}
    with tempfile.TemporaryDirectory() as scratch:
        for bench in ("Set5", "Set14"):
            result = evaluate(method, bench, find_pairs(data / "benchmark", bench, scale), scale, Path(scratch),
                         progress=False)
            scores[bench] = {"psnr": result.mean("psnr"), "ssim": result.mean("ssim")}
    with open(log, "a") as f:
        f.write(f"{name}: {json.dumps(scores)}\n")
    return scores


def kernel_ms(table: Path, runs: int = 3, rounds: int = 3) -> float:
    """Median time of the fused kernel, x``scale`` with the rotation ensemble, on an RGB 320x180 photograph:
    ``benchmarks/bench_lut.py``'s measurement (the package's one timer: a fresh process per round, 2 threads)
    of this table file."""
    from hatast.eval.timing import median_ms
    from hatast.lut import load_table

    lut = load_table(table)
    return median_ms(REPO / "benchmarks" / "bench_lut.py", f"{lut.kind} x{lut.scale}", "fused", rounds, runs,
                     threads=2, env={"HATAST_LUT_TABLE": str(table)})


def stage_recipe(option_file: Path) -> dict:
    """Iterations, batch, LR crop size and learning rate of one stage, for the model card."""
    opt = yaml.safe_load(option_file.read_text())
    train = opt["datasets"]["train"]
    return {"iterations": opt["train"]["total_iter"], "batch": train["batch_size_per_gpu"],
            "crop": train["gt_size"] // opt["scale"], "lr": opt["train"]["optim_g"]["lr"]}


def release(kind: str, scale: int, args) -> dict:
    stem = f"SRLUT-{kind}_SRx{scale}"
    log = args.out / "logs" / f"{stem}.log"
    results = train_stages(stem, args, lambda table: score_table(table, f"{stem}_eval", scale, args.data, log),
                           stage_recipe)
    from hatast.lut import load_table

    lut = load_table(args.out / f"{stem}.npz")
    ms = kernel_ms(args.out / f"{stem}.npz")
    write_card(kind, scale, lut, results, ms, args)
    print(summary_row(kind, scale, results), flush=True)
    return results


# Speed is in each card; the README quotes it once, from benchmarks/bench_lut.py (the same measurement).
SUMMARY_HEADER = ("| model | after stage 1 (net): Set5 / Set14 | after stage 2 (table) = released | stage 2 adds | "
                  "published | minutes (net + table) |\n|---|---|---|---|---|---|")


def summary_row(kind: str, scale: int, results: dict) -> str:
    """One markdown row of the release summary (PSNR in dB)."""
    net, table = results["net"]["metrics"], results["table"]["metrics"]

    def pair(values) -> str:
        return " / ".join(f"{v:.2f}" for v in values)

    gain = [table[s]["psnr"] - net[s]["psnr"] for s in ("Set5", "Set14")]
    known = published_pair(kind, scale)
    published = pair(known) if known else "-"
    return (f"| {kind} x{scale} | {pair(net[s]['psnr'] for s in ('Set5', 'Set14'))} | "
            f"{pair(table[s]['psnr'] for s in ('Set5', 'Set14'))} | {' / '.join(f'{g:+.2f}' for g in gain)} | "
            f"{published} | {results['net']['minutes']:.0f} + {results['table']['minutes']:.0f} |")


def write_card(kind: str, scale: int, lut, results: dict, ms: float, args) -> None:
    from hatast.eval.runner import baseline_method, evaluate
    from hatast.eval.sets import find_pairs

    stem = f"SRLUT-{kind}_SRx{scale}"
    net, table = results["net"], results["table"]
    bicubic = {}
    with tempfile.TemporaryDirectory() as scratch:  # the per-image CSVs are not release material
        for name in ("Set5", "Set14"):
            done = evaluate(baseline_method("bicubic", scale), name, find_pairs(args.data / "benchmark", name, scale),
                            scale, Path(scratch), progress=False)
            bicubic[name] = done.mean("psnr"), done.mean("ssim")

    def scores(stage: dict) -> str:
        m = stage["metrics"]
        return " | ".join(f"{m[s]['psnr']:.2f} / {m[s]['ssim']:.4f}" for s in ("Set5", "Set14"))

    lines = [
        f"# {stem}: SR-LUT {kind} x{scale} look-up table",
        "",
        f"- File: `{stem}.npz` ({lut.nbytes / 1024:.1f} KiB of int8 entries, {lut.entries.shape[0]} rows of "
        f"{scale}x{scale}; sampling interval 2^{lut.interval}). Inspect with `hatast lut info {stem}.npz`.",
        "- Data: BSDS400 (400 natural images, disjoint from BSD100), LR made by MATLAB-bicubic downsampling of each"
        " whole image, random crops with flips and rotations.",
        f"- Stage 1, net: {net['iterations']} iterations, batch {net['batch']} of {net['crop']}x{net['crop']} LR crops,"
        f" Adam {net['lr']:g} (`options/train/{stem}_CPU_net.yml`), {net['minutes']:.0f} min on a 2-core CPU"
        " (including start-up and validation); transferred to the table.",
        f"- Stage 2, table fine-tuning: {table['iterations']} iterations, batch {table['batch']} of "
        f"{table['crop']}x{table['crop']} LR crops, Adam {table['lr']:g} on the entries "
        f"(`options/train/{stem}_CPU_table.yml`), {table['minutes']:.0f} min.",
        f"- Speed: {ms:.1f} ms median for RGB 320x180 -> {320 * scale}x{180 * scale} with the rotation ensemble "
        "(fused CPU kernel, 2 threads; `benchmarks/bench_lut.py`'s measurement of this file: median of 3 processes x "
        "3 runs; the spread between such runs on the 2-core development machine is about 30%).",
        "",
        "PSNR (dB) / SSIM on Y, border = scale, BasicSR's metrics, measured by `hatast bench`'s runner:",
        "",
        "| | Set5 | Set14 |",
        "|---|---|---|",
        f"| after stage 1 (net transferred to the table) | {scores(net)} |",
        f"| after stage 2 (table fine-tuned) = this file | {scores(table)} |",
    ]
    if published_pair(kind, scale):
        p5, p14 = published_pair(kind, scale)
        m = table["metrics"]
        lines += [f"| published (DIV2K, 200k iterations) | {p5:.2f} | {p14:.2f} |",
                  f"| gap to published | {m['Set5']['psnr'] - p5:+.2f} | {m['Set14']['psnr'] - p14:+.2f} |"]
    lines.append("| bicubic (MATLAB imresize, `hatast bench`'s baseline, same metric) | "
                 + " | ".join(f"{p:.2f} / {q:.4f}" for p, q in bicubic.values()) + " |")
    lines += ["", f"Produced by `python scripts/release_srlut.py --data <root> --models {kind}{scale}`.", ""]
    (args.out / f"{stem}.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="root with train/BSDS400 and benchmark/Set5, Set14")
    parser.add_argument("--models", nargs="+", default=["V4", "F4", "S4", "S2", "S3"], help="kind + scale, e.g. S4")
    parser.add_argument("--out", type=Path, default=REPO / "weights" / "srlut")
    parser.add_argument("--cards-only", action="store_true",
                        help="train nothing: re-time the released tables and rewrite their cards (on a quiet machine)")
    args = parser.parse_args()
    args.data = args.data.resolve()
    for needed in ("train/BSDS400", "benchmark/Set5/HR", "benchmark/Set14/HR"):
        if not (args.data / needed).is_dir():
            print(f"error: --data {args.data}: {needed} not found", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    print(SUMMARY_HEADER, flush=True)
    for model in args.models:
        release(model[0].upper(), int(model[1:]), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
