"""Train, transfer, fine-tune, evaluate and package the released IM-LUT tables (NL, NLC, NLCZ), each with a manifest
entry and the model card rendered from it.

For each variant this runs the two CPU-recipe stages through the training entry point
(``options/train/IMLUT-<V>_CPU_net.yml``, then ``..._CPU_table.yml``; both resume with ``--auto_resume``), evaluates
the tables after each stage with the benchmark runner on Set5 and Set14 at x2, x3, x4 (stored LR) and x1.5, x2.5,
x3.5 (LR made by ``hatast prepare benchmark`` into ``--work``), next to bicubic and Lanczos-2 and the published rows,
times the fused CPU path (``benchmarks/bench_imlut.py``'s measurement of this file), writes ``<out>/IMLUT-<V>.npz``
and publishes its entry (``hatast.release.publish``: the entry goes into ``<out>/../manifest.json`` and the card
``<out>/IMLUT-<V>.md`` is rendered from it). Stage results are kept in ``<out>/logs/IMLUT-<V>_{net,table}.json`` and
the other measurements of the released file (speed, baselines) in ``<out>/logs/IMLUT-<V>_release.json``, so
rerunning continues where it stopped; ``--cards-only`` trains nothing and re-renders from those records (measuring
only what they lack), ``--remeasure`` re-times.

Usage: ``python scripts/release_imlut.py --data ../shared/data [--variants NLC] [--out hatast/weights/imlut]
[--cards-only] [--remeasure]``
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from release_stages import check_out, run, stored_measurements, table_entry, train_stages  # noqa: E402

SETS = ("Set5", "Set14")
SCALES = (2, 3, 4, 1.5, 2.5, 3.5)


@functools.cache
def benchmark_root(data: Path, work: Path) -> Path:
    """Set5 and Set14 with LR at every evaluated scale (stored x2-x4 copied by the same rule, the rest made); only
    prepared when something is to be measured."""
    root = work / "benchmark"
    work.mkdir(parents=True, exist_ok=True)
    for name in SETS:
        if not (root / name / "LR_bicubic" / "X3.5").is_dir():
            run([sys.executable, "-m", "hatast.cli.main", "prepare", "benchmark", str(data / "benchmark" / name /
                 "HR"), "-o", str(root / name), "--scales", *map(str, SCALES)], work / "prepare.log")
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
                out[name][scale_tag(scale)] = [done.mean("psnr"), done.mean("ssim")]
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


def release(variant: str, args) -> dict:
    stem = f"IMLUT-{variant}"
    def root() -> Path:
        return benchmark_root(args.data, args.work)

    results = train_stages(stem, args, lambda tables: table_scores(tables, root()), stage_recipe)
    tables = args.out / f"{stem}.npz"
    measured = stored_measurements(args.out / "logs" / f"{stem}_release.json", tables, {
        "speed_ms": lambda: speed_ms(tables, variant), "baselines": lambda: baselines(root())}, args.remeasure)
    from hatast.release import publish

    publish(release_entry(variant, tables, results, measured), args.out.parent)
    return results


@functools.cache
def baselines(root: Path) -> dict:
    """Bicubic and Lanczos-2 (MATLAB imresize) with the tables' metric, at every evaluated scale (measured once for
    all variants)."""
    from hatast.eval.runner import baseline_method

    return {kind: scores(lambda scale, k=kind: baseline_method(k, scale), root) for kind in ("bicubic", "lanczos2")}


def release_entry(variant: str, tables: Path, results: dict, measured: dict):
    """The manifest entry of one released variant: the file, the recipe and time of each stage, the x4 rows as the
    results (the stored LR, comparable with the x4 tables of other families) and every evaluated scale in a section
    per set."""
    from hatast.eval.published import published
    from hatast.lut.table import load_file
    from hatast.release import ScoreRow, Section, Stage

    stem = f"IMLUT-{variant}"
    model = load_file(tables)
    net, table = results["net"], results["table"]
    reference = measured["baselines"]
    tags = list(table["metrics"]["Set5"])
    labels = {"net": "after stage 1 (IM-Net transferred to tables)",
              "table": "after stage 2 (tables fine-tuned) = this file",
              "bicubic": "bicubic (MATLAB imresize)", "lanczos2": "Lanczos-2 (MATLAB imresize)"}
    measured_rows = [("net", net["metrics"]), ("table", table["metrics"]), ("bicubic", reference["bicubic"]),
                     ("lanczos2", reference["lanczos2"])]
    known = {t: published(f"IM-LUT-{variant}", float(t)) for t in tags}

    def cell(values) -> str:
        return f"{values[0]:.2f} / {values[1]:.4f}"

    rows = [ScoreRow(labels[key], {name: list(metrics[name]["4"]) for name in SETS}) for key, metrics in measured_rows]
    if known.get("4") and "Set5" in known["4"].psnr:
        rows.append(ScoreRow(f"published (IM-LUT paper, {variant})",
                             {name: [known["4"].psnr[name], None] for name in SETS if name in known["4"].psnr}))
    sections = []
    for name in SETS:
        lines = ["PSNR (dB) / SSIM on Y, border = ceil(scale), BasicSR's metrics, `hatast bench`'s runner (published: "
                 "PSNR only):", "", "| | " + " | ".join(f"x{t}" for t in tags) + " |", "|---|" + "---:|" * len(tags)]
        lines += [f"| {labels[key]} | " + " | ".join(cell(metrics[name][t]) for t in tags) + " |"
                  for key, metrics in measured_rows]
        if name == "Set5" and any(known.values()):
            lines.append(f"| published (IM-LUT paper, {variant}) | " + " | ".join(
                f"{k.psnr['Set5']:.2f}" if k and "Set5" in k.psnr else "-" for k in known.values()) + " |")
        sections.append(Section(f"{name} at every evaluated scale", "\n".join(lines)))

    sizes = ", ".join(f"{name} {t.nbytes / 1024:.1f} KiB" for name, t in model.tables.items())
    trained = net["network"]
    # A card says when the option file has moved on since its tables were trained (the record is the truth).
    now = stage_recipe(REPO / "options" / "train" / f"{stem}_CPU_net.yml")["network"]
    changed = ", ".join(f"{k} {trained.get(k)} (now {now.get(k)})" for k in sorted(set(trained) | set(now))
                        if trained.get(k) != now.get(k))
    moved = f" This file was trained before the option file changed: {changed}." if changed else ""
    guide = net["imlut"].get("guide", {})
    ms = measured["speed_ms"]
    return table_entry(
        tables, stem, title=f"IM-LUT {variant} look-up tables (arbitrary-scale SR)",
        summary=f"`{stem}.npz`: {model.nbytes / 1024:.1f} KiB of tables ({sizes}, scale table "
                f"{model.arrays['scale'].nbytes / 1024:.1f} KiB float16); inspect with `hatast lut info {stem}.npz`. "
                f"Interpolations {variant}; its settings are the config below.",
        usage="--scale 2.5",
        data="BSDS400 (400 natural images, disjoint from BSD100); HR crops, one scale per batch from the 0.1 grid on "
             f"{net['imlut'].get('scales', {}).get('range')}, LR by MATLAB-bicubic downsampling of the 8-bit crop.",
        stages=[Stage(f"Stage 1, IM-Net ({trained['num_feat']} features, {trained['num_hidden']} hidden layers)",
                      net["iterations"], f"options/train/{stem}_CPU_net.yml", net["minutes"],
                      f"Batch {net['batch']} of {net['crop']}x{net['crop']} HR crops, Adam {net['lr']:g}, L1 + "
                      f"{guide.get('lambda', 0):g} x guide loss (beta {guide.get('beta', 0):g}); transferred to "
                      f"tables.{moved}"),
                Stage("Stage 2, LUT-aware fine-tuning", table["iterations"], f"options/train/{stem}_CPU_table.yml",
                      table["minutes"], f"Batch {table['batch']} of {table['crop']}x{table['crop']} HR crops, Adam "
                      f"{table['lr']:g} on the entries.")],
        results_protocol="x4 (the stored LR): PSNR (dB) / SSIM on Y, border = ceil(scale), BasicSR's metrics, "
                         "`hatast bench`'s runner (published: PSNR only); every evaluated scale is in the tables "
                         "below.",
        results=rows,
        speed=f"Fused CPU path, 2 threads, `benchmarks/bench_imlut.py`'s measurement of this file: {ms['x4']:.1f} ms "
              f"for RGB 320x180 -> 1280x720 (x4), {ms['x1.5']:.1f} ms for 1280x720 -> 1920x1080 (x1.5).",
        produced_by=f"python scripts/release_imlut.py --data <root> --variants {variant}",
        sections=sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="root with train/BSDS400 and benchmark/Set5, Set14")
    parser.add_argument("--variants", nargs="+", default=["NL", "NLC", "NLCZ"])
    parser.add_argument("--out", type=Path, default=REPO / "hatast" / "weights" / "imlut")
    parser.add_argument("--work", type=Path, default=REPO / "results" / "imlut_release",
                        help="where the non-integer benchmark LR is prepared")
    parser.add_argument("--cards-only", action="store_true",
                        help="train nothing: publish the entries and cards again from the stored measurements")
    parser.add_argument("--remeasure", action="store_true",
                        help="time the tables and measure the baselines again (on a quiet machine)")
    args = parser.parse_args()
    check_out(args, "imlut")
    args.data, args.work = args.data.resolve(), args.work.resolve()
    for needed in ("train/BSDS400", "benchmark/Set5/HR", "benchmark/Set14/HR"):
        if not (args.data / needed).is_dir():
            print(f"error: --data {args.data}: {needed} not found", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for variant in args.variants:
        release(variant, args)
        print(f"{variant}: done ({args.out / f'IMLUT-{variant}.md'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
