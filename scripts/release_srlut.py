"""Train, transfer, fine-tune, evaluate and package the released SR-LUT tables, with a model card each.

For each model (default: V/F/S x4, S x2, S x3) this runs the two CPU-recipe stages through the training entry
point (``options/train/SRLUT-<K>_SRx<s>_CPU_net.yml``, then ``..._CPU_table.yml``; both resume with
``--auto_resume``), evaluates the table after each stage on Set5 and Set14 through the test entry point, times the
fused kernel on an RGB 320x180 photograph, and writes ``<out>/SRLUT-<K>_SRx<s>.npz`` and a model card
``<out>/SRLUT-<K>_SRx<s>.md``. Finished stages are kept, so rerunning the command continues where it stopped;
``--cards-only`` re-times the released tables and rewrites the cards (timings taken while other models train are
not representative).

Usage: ``python scripts/release_srlut.py --data ../shared/data [--models S4 V4] [--out weights/srlut] [--cards-only]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

# Published x4 PSNR (Y) on Set5 / Set14 (SR-LUT paper, Table 2), for the card's comparison.
PUBLISHED = {("V", 4): (29.22, 26.65), ("F", 4): (29.77, 26.99), ("S", 4): (29.82, 27.01)}


def run(cmd: list[str], log: Path) -> None:
    with open(log, "a") as f:
        code = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}; see {log}")


def evaluate(table: Path, name: str, scale: int, data: Path, log: Path) -> dict:
    """Set5/Set14 PSNR/SSIM of a table through ``hatast test`` (BasicSR's metrics, Y, border = scale)."""
    def dataset(bench: str) -> dict:
        return {"name": bench, "type": "PairedImageDataset", "dataroot_gt": str(data / "benchmark" / bench / "HR"),
                "dataroot_lq": str(data / "benchmark" / bench / "LR_bicubic" / f"X{scale}"),
                "filename_tmpl": f"{{}}x{scale}", "io_backend": {"type": "disk"}}

    opt = {"name": name, "model_type": "SRLUTModel", "scale": scale, "num_gpu": 0,
           "datasets": {"test_1": dataset("Set5"), "test_2": dataset("Set14")},
           "network_g": {"type": "LUTNet", "lut_path": str(table)}, "path": {},
           "val": {"save_img": False, "metrics": {
               m: {"type": f"calculate_{m}", "crop_border": scale, "test_y_channel": True} for m in ("psnr", "ssim")}}}
    opt_file = log.parent / f"{name}.yml"
    opt_file.write_text(yaml.safe_dump(opt, sort_keys=False))
    run([sys.executable, "-m", "hatast.cli.main", "test", "-opt", str(opt_file)], log)
    return json.loads((REPO / "results" / name / "metrics.json").read_text())


def kernel_ms(table: Path, runs: int = 9) -> float:
    """Median time of the fused kernel, x``scale`` with the rotation ensemble, on an RGB 320x180 photograph."""
    import cv2
    import skimage.data

    from hatast.lut import load_table, upscale

    lut = load_table(table)
    image = cv2.resize(skimage.data.astronaut(), (320, 180), interpolation=cv2.INTER_AREA)
    upscale(lut, image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        upscale(lut, image)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def stage_recipe(option_file: Path) -> dict:
    """Iterations, batch, LR crop size and learning rate of one stage, for the model card."""
    opt = yaml.safe_load(option_file.read_text())
    train = opt["datasets"]["train"]
    return {"iterations": opt["train"]["total_iter"], "batch": train["batch_size_per_gpu"],
            "crop": train["gt_size"] // opt["scale"], "lr": opt["train"]["optim_g"]["lr"]}


def release(kind: str, scale: int, args) -> dict:
    stem = f"SRLUT-{kind}_SRx{scale}"
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{stem}.log"
    results = {}
    for stage in ("net", "table"):
        option_file = REPO / "options" / "train" / f"{stem}_CPU_{stage}.yml"
        table = REPO / "experiments" / f"{stem}_CPU_{stage}" / "models" / "net_g_latest.npz"
        done = logs / f"{stem}_{stage}.json"
        if done.exists():
            results[stage] = json.loads(done.read_text())
            continue
        if args.cards_only:
            raise SystemExit(f"--cards-only: {stem} has no finished {stage} stage ({done} is missing)")
        start = time.time()
        run([sys.executable, "-m", "hatast.cli.main", "train", "-opt", str(option_file), "--auto_resume",
             "--data-root", str(args.data)], log)
        minutes = (time.time() - start) / 60
        results[stage] = {"metrics": evaluate(table, f"{stem}_{stage}_eval", scale, args.data, log),
                          "minutes": minutes, **stage_recipe(option_file)}
        from hatast.utils.files import write_bytes_atomic

        write_bytes_atomic(done, json.dumps(results[stage], indent=2).encode())  # the resume marker: never half
    if not args.cards_only:
        from hatast.utils.files import write_bytes_atomic

        final = REPO / "experiments" / f"{stem}_CPU_table" / "models" / "net_g_latest.npz"
        write_bytes_atomic(args.out / f"{stem}.npz", final.read_bytes())
    from hatast.lut import load_table

    lut = load_table(args.out / f"{stem}.npz")
    ms = kernel_ms(args.out / f"{stem}.npz")
    write_card(kind, scale, lut, results, ms, args)
    print(summary_row(kind, scale, results, ms), flush=True)
    return results


SUMMARY_HEADER = ("| model | after stage 1 (net): Set5 / Set14 | after stage 2 (table) = released | stage 2 adds | "
                  "published | minutes (net + table) | ms, 320x180 RGB |\n|---|---|---|---|---|---|---|")


def summary_row(kind: str, scale: int, results: dict, ms: float) -> str:
    """One markdown row of the release summary (PSNR in dB)."""
    net, table = results["net"]["metrics"], results["table"]["metrics"]

    def pair(values) -> str:
        return " / ".join(f"{v:.2f}" for v in values)

    gain = [table[s]["psnr"] - net[s]["psnr"] for s in ("Set5", "Set14")]
    published = pair(PUBLISHED[kind, scale]) if (kind, scale) in PUBLISHED else "-"
    return (f"| {kind} x{scale} | {pair(net[s]['psnr'] for s in ('Set5', 'Set14'))} | "
            f"{pair(table[s]['psnr'] for s in ('Set5', 'Set14'))} | {' / '.join(f'{g:+.2f}' for g in gain)} | "
            f"{published} | {results['net']['minutes']:.0f} + {results['table']['minutes']:.0f} | {ms:.1f} |")


def write_card(kind: str, scale: int, lut, results: dict, ms: float, args) -> None:
    from bicubic_psnr import bicubic_scores

    stem = f"SRLUT-{kind}_SRx{scale}"
    net, table = results["net"], results["table"]
    bicubic = {s: bicubic_scores(args.data / "benchmark" / s, scale)[:2] for s in ("Set5", "Set14")}

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
        "(fused CPU kernel, 2 threads).",
        "",
        "PSNR (dB) / SSIM on Y, border = scale, BasicSR's metrics, measured by `hatast test`:",
        "",
        "| | Set5 | Set14 |",
        "|---|---|---|",
        f"| after stage 1 (net transferred to the table) | {scores(net)} |",
        f"| after stage 2 (table fine-tuned) = this file | {scores(table)} |",
    ]
    if (kind, scale) in PUBLISHED:
        p5, p14 = PUBLISHED[kind, scale]
        m = table["metrics"]
        lines += [f"| published (DIV2K, 200k iterations) | {p5:.2f} | {p14:.2f} |",
                  f"| gap to published | {m['Set5']['psnr'] - p5:+.2f} | {m['Set14']['psnr'] - p14:+.2f} |"]
    lines.append("| bicubic (`benchmarks/bicubic_psnr.py`, same metric) | "
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
