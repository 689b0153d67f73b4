"""Train, transfer, fine-tune, evaluate and package the released SR-LUT tables, each with a manifest entry and the
model card rendered from it.

For each model (default: V/F/S x4, S x2, S x3) this runs the two CPU-recipe stages through the training entry
point (``options/train/SRLUT-<K>_SRx<s>_CPU_net.yml``, then ``..._CPU_table.yml``; both resume with
``--auto_resume``), evaluates the table after each stage on Set5 and Set14 with the benchmark runner, measures the
bicubic baseline with the same metric, times the fused kernel on an RGB 320x180 photograph, writes
``<out>/SRLUT-<K>_SRx<s>.npz`` and publishes its entry (``hatast.release.publish``): the entry goes into
``<out>/../manifest.json`` and the card ``<out>/SRLUT-<K>_SRx<s>.md`` is rendered from it. Stage results are kept in
``<out>/logs/<stem>_{net,table}.json`` and the other measurements of the released file (speed, bicubic) in
``<out>/logs/<stem>_release.json``, so rerunning the command continues where it stopped; ``--cards-only`` trains
nothing and re-renders from those records (measuring only what they lack), ``--remeasure`` re-times the tables
(timings taken while other models train are not representative).

Usage: ``python scripts/release_srlut.py --data ../shared/data [--models S4 V4] [--out hatast/weights/srlut]
[--cards-only] [--remeasure]``
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

from release_stages import check_out, stored_measurements, table_entry, train_stages  # noqa: E402


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
    table = args.out / f"{stem}.npz"
    measured = stored_measurements(args.out / "logs" / f"{stem}_release.json", table, {
        "speed_ms": lambda: kernel_ms(table), "bicubic": lambda: bicubic_scores(scale, args.data)}, args.remeasure)
    from hatast.release import publish

    publish(release_entry(kind, scale, table, results, measured), args.out.parent)
    print(summary_row(kind, scale, results), flush=True)
    return results


def bicubic_scores(scale: int, data: Path) -> dict:
    """``{set: [psnr, ssim]}`` of MATLAB-bicubic upsampling, ``hatast bench``'s baseline, with the tables' metric."""
    from hatast.eval.runner import baseline_method, evaluate
    from hatast.eval.sets import find_pairs

    out = {}
    with tempfile.TemporaryDirectory() as scratch:  # the per-image CSVs are not release material
        for name in ("Set5", "Set14"):
            done = evaluate(baseline_method("bicubic", scale), name, find_pairs(data / "benchmark", name, scale),
                            scale, Path(scratch), progress=False)
            out[name] = [done.mean("psnr"), done.mean("ssim")]
    return out


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


def release_entry(kind: str, scale: int, table: Path, results: dict, measured: dict):
    """The manifest entry of one released table: the file, the recipe and time of each stage, the runner's scores
    after each stage, the published and bicubic rows, the speed."""
    from hatast.lut import load_table
    from hatast.release import ScoreRow, Section, Stage

    stem = f"SRLUT-{kind}_SRx{scale}"
    lut = load_table(table)
    net, tuned = results["net"], results["table"]

    def row(label: str, metrics: dict) -> ScoreRow:
        return ScoreRow(label, {s: [metrics[s]["psnr"], metrics[s]["ssim"]] for s in ("Set5", "Set14")})

    rows = [row("after stage 1 (net transferred to the table)", net["metrics"]),
            row("after stage 2 (table fine-tuned) = this file", tuned["metrics"])]
    sections = []
    known = published_pair(kind, scale)
    if known:
        rows.append(ScoreRow("published (DIV2K, 200k iterations)",
                             {"Set5": [known[0], None], "Set14": [known[1], None]}))
        m = tuned["metrics"]
        sections.append(Section("Gap to published", f"This file minus the published PSNR (dB): Set5 "
                                f"{m['Set5']['psnr'] - known[0]:+.2f}, Set14 {m['Set14']['psnr'] - known[1]:+.2f}."))
    rows.append(ScoreRow("bicubic (MATLAB imresize, `hatast bench`'s baseline, same metric)",
                         {s: list(measured["bicubic"][s]) for s in ("Set5", "Set14")}))
    return table_entry(
        table, stem, title=f"SR-LUT {kind} x{scale} look-up table",
        summary=f"`{stem}.npz`: {lut.nbytes / 1024:.1f} KiB of int8 entries, {lut.entries.shape[0]} rows of "
                f"{scale}x{scale}; sampling interval 2^{lut.interval}. Inspect with `hatast lut info {stem}.npz`.",
        data="BSDS400 (400 natural images, disjoint from BSD100), LR made by MATLAB-bicubic downsampling of each "
             "whole image, random crops with flips and rotations.",
        stages=[Stage("Stage 1, net", net["iterations"], f"options/train/{stem}_CPU_net.yml", net["minutes"],
                      f"Batch {net['batch']} of {net['crop']}x{net['crop']} LR crops, Adam {net['lr']:g}; the time "
                      "includes start-up and validation; transferred to the table."),
                Stage("Stage 2, table fine-tuning", tuned["iterations"], f"options/train/{stem}_CPU_table.yml",
                      tuned["minutes"], f"Batch {tuned['batch']} of {tuned['crop']}x{tuned['crop']} LR crops, Adam "
                      f"{tuned['lr']:g} on the entries.")],
        results_protocol="PSNR (dB) / SSIM on Y, border = scale, BasicSR's metrics, measured by `hatast bench`'s "
                         "runner:",
        results=rows,
        speed=f"{measured['speed_ms']:.1f} ms median for RGB 320x180 -> {320 * scale}x{180 * scale} with the rotation "
              "ensemble (fused CPU kernel, 2 threads; `benchmarks/bench_lut.py`'s measurement of this file: median of "
              "3 processes x 3 runs; the spread between such runs on the 2-core development machine is about 30%).",
        produced_by=f"python scripts/release_srlut.py --data <root> --models {kind}{scale}",
        sections=sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="root with train/BSDS400 and benchmark/Set5, Set14")
    parser.add_argument("--models", nargs="+", default=["V4", "F4", "S4", "S2", "S3"], help="kind + scale, e.g. S4")
    parser.add_argument("--out", type=Path, default=REPO / "hatast" / "weights" / "srlut")
    parser.add_argument("--cards-only", action="store_true",
                        help="train nothing: publish the entries and cards again from the stored measurements")
    parser.add_argument("--remeasure", action="store_true",
                        help="time the tables and measure bicubic again (on a quiet machine)")
    args = parser.parse_args()
    check_out(args, "srlut")
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
