"""Train, transfer, fine-tune, evaluate and package the released IM-LUT tables (NL, NLC, NLCZ), with a model card
each.

For each variant this runs the two CPU-recipe stages through the training entry point
(``options/train/IMLUT-<V>_CPU_net.yml``, then ``..._CPU_table.yml``; both resume with ``--auto_resume``), evaluates
the tables after each stage with the benchmark runner on Set5 and Set14 at x2, x3, x4 (stored LR) and x1.5, x2.5,
x3.5 (LR made by ``hatast prepare benchmark`` into ``--work``), next to bicubic and Lanczos-2 and the published rows,
times the fused CPU path (``benchmarks/bench_imlut.py``'s measurement of this file), and writes
``<out>/IMLUT-<V>.npz`` and a model card ``<out>/IMLUT-<V>.md``. Finished stages are kept, so rerunning continues
where it stopped; ``--cards-only`` re-times and rewrites the cards.

Usage: ``python scripts/release_imlut.py --data ../shared/data [--variants NLC] [--out weights/imlut]``
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

from release_stages import run, train_stages  # noqa: E402

SETS = ("Set5", "Set14")
SCALES = (2, 3, 4, 1.5, 2.5, 3.5)


def benchmark_root(args) -> Path:
    """Set5 and Set14 with LR at every evaluated scale (stored x2-x4 copied by the same rule, the rest made)."""
    root = args.work / "benchmark"
    for name in SETS:
        if not (root / name / "LR_bicubic" / "X3.5").is_dir():
            run([sys.executable, "-m", "hatast.cli.main", "prepare", "benchmark", str(args.data / "benchmark" / name /
                 "HR"), "-o", str(root / name), "--scales", *map(str, SCALES)], args.work / "prepare.log")
    return root


def scores(method, root: Path) -> dict:
    """``{set: {scale tag: (psnr, ssim)}}`` through ``hatast bench``'s runner (Y, border = ceil(scale))."""
    from hatast.eval.runner import evaluate
    from hatast.eval.sets import find_pairs, scale_tag

    out = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in SETS:
            out[name] = {}
            for scale in SCALES:
                m = method(scale)
                done = evaluate(m, name, find_pairs(root, name, scale), scale, Path(scratch), progress=False)
                out[name][scale_tag(scale)] = (done.mean("psnr"), done.mean("ssim"))
    return out


def table_scores(tables: Path, root: Path) -> dict:
    from hatast.eval.runner import weights_method

    return scores(lambda scale: weights_method(tables, "cpu", scale=scale), root)


def stage_recipe(option_file: Path) -> dict:
    opt = yaml.safe_load(option_file.read_text())
    train = opt["datasets"]["train"]
    return {"iterations": opt["train"]["total_iter"], "batch": train["batch_size_per_gpu"],
            "crop": train["gt_size"], "lr": opt["train"]["optim_g"]["lr"], "imlut": opt.get("imlut", {}),
            "network": opt["network_g"]}


def speed_ms(tables: Path, variant: str, rounds: int = 3, runs: int = 3) -> dict:
    """``benchmarks/bench_imlut.py``'s measurement of this file: median ms of the fused CPU path, 2 threads."""
    from hatast.eval.timing import median_ms

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / f"IMLUT-{variant}.npz").write_bytes(tables.read_bytes())
        return {case: median_ms(REPO / "benchmarks" / "bench_imlut.py", case, f"IM-LUT {variant}", rounds, runs,
                                threads=2, env={"HATAST_IMLUT_TABLES": folder}) for case in ("x4", "x1.5")}


def release(variant: str, args, root: Path) -> dict:
    stem = f"IMLUT-{variant}"
    results = train_stages(stem, args, lambda tables: table_scores(tables, root), stage_recipe)
    write_card(variant, results, speed_ms(args.out / f"{stem}.npz", variant), root, args)
    return results


def baselines(root: Path) -> dict:
    from hatast.eval.runner import baseline_method

    return {kind: scores(lambda scale, k=kind: baseline_method(k, scale), root) for kind in ("bicubic", "lanczos2")}


def write_card(variant: str, results: dict, ms: dict, root: Path, args) -> None:
    from hatast.eval.published import published
    from hatast.lut.table import load_file

    stem = f"IMLUT-{variant}"
    model = load_file(args.out / f"{stem}.npz")
    net, table = results["net"], results["table"]
    reference = baselines(root)
    tags = list(table["metrics"]["Set5"])

    def row(label: str, metrics: dict, name: str) -> str:
        cells = (f"{metrics[name][t][0]:.2f} / {metrics[name][t][1]:.4f}" for t in tags)
        return f"| {label} | " + " | ".join(cells) + " |"

    sizes = ", ".join(f"{name} {t.nbytes / 1024:.1f} KiB" for name, t in model.tables.items())
    trained = net["network"]
    # A card says when the option file has moved on since its tables were trained (the record is the truth).
    now = stage_recipe(REPO / "options" / "train" / f"{stem}_CPU_net.yml")["network"]
    changed = ", ".join(f"{k} {trained.get(k)} (now {now.get(k)})" for k in sorted(set(trained) | set(now))
                        if trained.get(k) != now.get(k))
    moved = f" This file was trained before the option file changed: {changed}." if changed else ""
    lines = [
        f"# {stem}: IM-LUT {variant} look-up tables (arbitrary-scale SR)",
        "",
        f"- File: `{stem}.npz`: {model.nbytes / 1024:.1f} KiB of tables ({sizes}, scale table "
        f"{model.arrays['scale'].nbytes / 1024:.1f} KiB float16); inspect with `hatast lut info {stem}.npz`. "
        f"Interpolations {variant}; settings: `{json.dumps(model.config)}`.",
        "- Data: BSDS400 (400 natural images, disjoint from BSD100); HR crops, one scale per batch from the 0.1 grid "
        f"on {net['imlut'].get('scales', {}).get('range')}, LR by MATLAB-bicubic downsampling of the 8-bit crop.",
        f"- Stage 1, IM-Net ({trained['num_feat']} features, {trained['num_hidden']} hidden layers): "
        f"{net['iterations']} iterations, batch {net['batch']} of {net['crop']}x{net['crop']} HR "
        f"crops, Adam {net['lr']:g}, L1 + {net['imlut'].get('guide', {}).get('lambda', 0):g} x guide loss (beta "
        f"{net['imlut'].get('guide', {}).get('beta', 0):g}) (`options/train/{stem}_CPU_net.yml`), "
        f"{net['minutes']:.0f} min on a 2-core CPU; transferred to tables.{moved}",
        f"- Stage 2, LUT-aware fine-tuning: {table['iterations']} iterations, batch {table['batch']} of "
        f"{table['crop']}x{table['crop']} HR crops, Adam {table['lr']:g} on the entries "
        f"(`options/train/{stem}_CPU_table.yml`), {table['minutes']:.0f} min.",
        f"- Speed (fused CPU path, 2 threads, `benchmarks/bench_imlut.py`'s measurement of this file): "
        f"{ms['x4']:.1f} ms for RGB 320x180 -> 1280x720 (x4), {ms['x1.5']:.1f} ms for 1280x720 -> 1920x1080 (x1.5).",
        "",
    ]
    for name in SETS:
        lines += [f"{name} PSNR (dB) / SSIM on Y, border = ceil(scale), BasicSR's metrics, `hatast bench`'s runner "
                  "(published: PSNR only):", "",
                  "| | " + " | ".join(f"x{t}" for t in tags) + " |", "|---|" + "---:|" * len(tags),
                  row("after stage 1 (IM-Net transferred to tables)", net["metrics"], name),
                  row("after stage 2 (tables fine-tuned) = this file", table["metrics"], name),
                  row("bicubic (MATLAB imresize)", reference["bicubic"], name),
                  row("Lanczos-2 (MATLAB imresize)", reference["lanczos2"], name)]
        known = [published(f"IM-LUT-{variant}", float(t)) for t in tags]
        if name == "Set5" and any(known):
            lines.append(f"| published (IM-LUT paper, {variant}) | " + " | ".join(
                f"{k.psnr['Set5']:.2f}" if k and "Set5" in k.psnr else "-" for k in known) + " |")
        lines.append("")
    lines += [f"Produced by `python scripts/release_imlut.py --data <root> --variants {variant}`.", ""]
    (args.out / f"{stem}.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="root with train/BSDS400 and benchmark/Set5, Set14")
    parser.add_argument("--variants", nargs="+", default=["NL", "NLC", "NLCZ"])
    parser.add_argument("--out", type=Path, default=REPO / "weights" / "imlut")
    parser.add_argument("--work", type=Path, default=REPO / "results" / "imlut_release",
                        help="where the non-integer benchmark LR is prepared")
    parser.add_argument("--cards-only", action="store_true", help="train nothing: re-time and rewrite the cards")
    args = parser.parse_args()
    args.data, args.work = args.data.resolve(), args.work.resolve()
    for needed in ("train/BSDS400", "benchmark/Set5/HR", "benchmark/Set14/HR"):
        if not (args.data / needed).is_dir():
            print(f"error: --data {args.data}: {needed} not found", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    root = benchmark_root(args)
    for variant in args.variants:
        release(variant, args, root)
        print(f"{variant}: done ({args.out / f'IMLUT-{variant}.md'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
