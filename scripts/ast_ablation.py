"""Reproducible ablation of HAT-S + AST: matched small HAT-S-shaped models, one budget, Set5/Set14.

    python scripts/ast_ablation.py --data ../shared/data --out results/ast_ablation [--iters 1000] [--scales 4 2]

Rows (x4, all from scratch, the same data, iterations, batch, patch and schedule):
    baseline at overlap 0.5 (HAT's OCAB); at overlap 0.75: baseline, +ASSA, +FRFN, +ASSA+FRFN;
    a second seed of the 0.75 baseline and of +ASSA+FRFN, to show run-to-run noise.
``--scales 4 2`` adds the x2 rows (baseline and +ASSA+FRFN at 0.75, seed 0).

The networks keep HAT-S's proportions (channel-attention compress/squeeze 24, 6 heads, MLP ratio 2, two HABs per
group) at a size a CPU can train: 48 channels, 2 groups, window 8. ASSA starts at the AST paper's even mixing
(``w = 0.5``). Each row trains with ``hatast train`` (data: ``<data>/train/BSDS400``, HR only, LR by bicubic
downsampling) and is evaluated by ``hatast bench``'s runner on ``<data>/benchmark/{Set5,Set14}``; finished rows are
skipped on a rerun, and an interrupted row resumes from its last checkpoint. Writes ``ablation.md`` (table) and
``crops.png`` (HR | bicubic | each x4 model on one Set14 crop) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NETWORK = dict(type="HATAST", in_chans=3, img_size=64, window_size=8, compress_ratio=24, squeeze_factor=24,
               conv_scale=0.01, img_range=1.0, depths=[2, 2], embed_dim=48, num_heads=[6, 6], mlp_ratio=2.0,
               upsampler="pixelshuffle", resi_connection="1conv", assa_weighting="sigmoid", assa_init_logit=0.0)
CROP = ("Set14", "barbara", (230, 120), 120)  # image, top-left (y, x) and side of the HR crop in the figure


@dataclass(frozen=True)
class Row:
    label: str
    overlap: float
    attention: str
    ffn: str
    seed: int = 0
    scale: int = 4

    @property
    def name(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.label).strip("-")
        return f"ast_ablation_x{self.scale}_{slug}_ov{int(self.overlap * 100)}_s{self.seed}"


def rows_for(scales: list[int]) -> list[Row]:
    rows = [
        Row("baseline (overlap 0.5)", 0.5, "softmax", "mlp"),
        Row("baseline", 0.75, "softmax", "mlp"),
        Row("+ASSA", 0.75, "assa", "mlp"),
        Row("+FRFN", 0.75, "softmax", "frfn"),
        Row("+ASSA+FRFN", 0.75, "assa", "frfn"),
        Row("baseline", 0.75, "softmax", "mlp", seed=1),
        Row("+ASSA+FRFN", 0.75, "assa", "frfn", seed=1),
    ]
    if 2 in scales:
        rows += [Row("baseline", 0.75, "softmax", "mlp", scale=2), Row("+ASSA+FRFN", 0.75, "assa", "frfn", scale=2)]
    return [r for r in rows if r.scale in scales]


def network(row: Row) -> dict:
    return dict(NETWORK, upscale=row.scale, overlap_ratio=row.overlap, ocab_attention=row.attention,
                ocab_ffn=row.ffn)


def option_files(row: Row, args) -> dict:
    """The training option file of one row (evaluation runs through ``hatast.eval``, not an option file)."""
    return {
        "name": row.name, "model_type": "HATModel", "scale": row.scale, "num_gpu": "auto",
        "manual_seed": row.seed,
        "datasets": {"train": {
            "name": "BSDS400", "type": "BicubicDownsampleDataset", "dataroot_gt": str(args.data / "train" / "BSDS400"),
            "io_backend": {"type": "disk"}, "gt_size": args.patch * row.scale, "use_hflip": True, "use_rot": True,
            "use_shuffle": True, "num_worker_per_gpu": 1, "batch_size_per_gpu": args.batch,
            "dataset_enlarge_ratio": 10, "prefetch_mode": None}},
        "network_g": network(row),
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"ema_decay": 0.99,
                  "optim_g": {"type": "Adam", "lr": args.lr, "weight_decay": 0, "betas": [0.9, 0.99]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [int(args.iters * 0.6), int(args.iters * 0.9)],
                                "gamma": 0.5},
                  "total_iter": args.iters, "warmup_iter": -1,
                  "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        "logger": {"print_freq": min(50, args.iters), "save_checkpoint_freq": max(args.iters // 4, 1),
                   "use_tb_logger": False},
    }


def run(cmd: list[str], cwd: Path, log: Path) -> float:
    start = time.time()
    with open(log, "a") as f:
        code = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}; see {log}")
    return time.time() - start


def evaluated_model(row: Row, args):
    """The trained row as a benchmark-runner method (the checkpoint's params_ema, by the one entry rule)."""
    from hatast.eval.runner import weights_method

    return weights_method(args.out / "experiments" / row.name / "models" / "net_g_latest.pth", "cpu")


def run_row(row: Row, args) -> dict:
    out = args.out
    result_file = out / "rows" / f"{row.name}.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    train_opt = option_files(row, args)
    opt_dir = out / "options"
    opt_dir.mkdir(parents=True, exist_ok=True)
    (opt_dir / f"{row.name}_train.yml").write_text(yaml.safe_dump(train_opt, sort_keys=False))
    hatast = [sys.executable, "-m", "hatast.cli.main"]
    log = out / "logs" / f"{row.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] training {row.label} x{row.scale} seed {row.seed} ({row.name})", flush=True)
    train_seconds = run(hatast + ["train", "-opt", str(opt_dir / f"{row.name}_train.yml"), "--auto_resume"], out,
                        log)
    from hatast.eval.runner import evaluate
    from hatast.eval.sets import find_pairs

    method = evaluated_model(row, args)
    metrics = {}
    for bench in ("Set5", "Set14"):  # hatast bench's runner: BasicSR's metrics, Y, border = scale, EMA weights
        done = evaluate(method, bench, find_pairs(args.data / "benchmark", bench, row.scale), row.scale,
                        out / "bench" / row.name, progress=False)
        metrics[bench] = {"psnr": done.mean("psnr"), "ssim": done.mean("ssim")}
    iter_times = [float(t) for t in re.findall(r"time \(data\): ([\d.]+)", log.read_text())]
    params, macs = method.parameters, method.macs / 1e9
    # BasicSR's logged iteration time; for runs too short to log one, the training process's wall time per iteration
    sec_per_iter = statistics.median(iter_times) if iter_times else train_seconds / args.iters
    result = {"row": row.__dict__, "name": row.name, "metrics": metrics, "params": params, "gmacs_64": macs,
              "sec_per_iter": sec_per_iter}
    from hatast.utils.files import write_bytes_atomic

    write_bytes_atomic(result_file, json.dumps(result, indent=2).encode())  # marks the row done: never half
    print(f"    Set5 {metrics['Set5']['psnr']:.2f} dB, Set14 {metrics['Set14']['psnr']:.2f} dB", flush=True)
    return result


def write_table(results: list[dict], args) -> Path:
    lines = [
        "# HAT-S + AST ablation",
        "",
        f"Budget per row: {args.iters} iterations, batch {args.batch}, LR patch {args.patch}x{args.patch} "
        f"(BSDS400 HR crops, MATLAB-bicubic LR), Adam {args.lr:g} halved at 60% and 90%, EMA 0.99, L1; "
        "models of HAT-S's proportions at 48 channels, 2 groups of 2 HABs, window 8, trained from scratch.",
        "Evaluation: PSNR/SSIM on Y, border = scale, BasicSR's metrics, EMA weights. MACs: one 64x64 LR forward.",
        f"Command: `python scripts/ast_ablation.py --data <root> --out <dir> --iters {args.iters} "
        f"--scales {' '.join(map(str, args.scales))}`.",
        "",
        "| scale | row | overlap | attention | FFN | seed | params | GMACs | s/iter | Set5 PSNR / SSIM "
        "| Set14 PSNR / SSIM |",
        "|---|---|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in results:
        row, m = r["row"], r["metrics"]
        lines.append(
            f"| x{row['scale']} | {row['label']} | {row['overlap']} | {row['attention']} | {row['ffn']} | "
            f"{row['seed']} | {r['params'] / 1e6:.3f} M | {r['gmacs_64']:.2f} | {r['sec_per_iter']:.2f} | "
            f"{m['Set5']['psnr']:.2f} / {m['Set5']['ssim']:.4f} | "
            f"{m['Set14']['psnr']:.2f} / {m['Set14']['ssim']:.4f} |")
    lines += ["", *noise_summary(results)]
    path = args.out / "ablation.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def noise_summary(results: list[dict]) -> list[str]:
    """Seed-to-seed differences, the yardstick for calling any other difference real."""
    by_key = {}
    for r in results:
        row = r["row"]
        by_key.setdefault((row["scale"], row["label"], row["overlap"]), []).append(r)
    out = []
    for (scale, label, overlap), runs in by_key.items():
        if len(runs) > 1:
            for bench in ("Set5", "Set14"):
                values = [x["metrics"][bench]["psnr"] for x in runs]
                out.append(f"- Seed spread of {label} (x{scale}, overlap {overlap}) on {bench}: "
                           f"{max(values) - min(values):.2f} dB over {len(values)} seeds.")
    return out


def write_figure(results: list[dict], args) -> Path | None:
    """One Set14 crop: HR | bicubic | every x4 seed-0 model, with the crop's PSNR (Y) under each panel."""
    from hatast.eval.baselines import interpolate
    from hatast.eval.figure import side_by_side
    from hatast.utils.image import read_image

    bench, image, (top, left), side = CROP
    hr_path = args.data / "benchmark" / bench / "HR" / f"{image}.png"
    lr_path = args.data / "benchmark" / bench / "LR_bicubic" / "X4" / f"{image}x4.png"
    if not hr_path.exists():
        return None
    hr = cv2.imread(str(hr_path))
    lr = cv2.imread(str(lr_path))
    hr = hr[: lr.shape[0] * 4, : lr.shape[1] * 4]
    bicubic = interpolate(lr, 4)
    panels = [("bicubic", bicubic)]
    for r in results:
        row = r["row"]
        if row["scale"] == 4 and row["seed"] == 0:
            method = evaluated_model(Row(**row), args)
            panels.append((row["label"], method.run(read_image(lr_path))))
    path = args.out / "crops.png"
    cv2.imwrite(str(path), side_by_side(hr, panels, (top, left, side, side)))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train/BSDS400 and benchmark/Set5|Set14")
    parser.add_argument("--out", type=Path, default=Path("results/ast_ablation"))
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=24, help="LR patch side (GT patch = patch x scale)")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--scales", type=int, nargs="+", default=[4], choices=[2, 4])
    args = parser.parse_args()
    args.data, args.out = args.data.resolve(), args.out.resolve()
    benchmarks = args.data / "benchmark"
    for needed in (args.data / "train" / "BSDS400", benchmarks / "Set5", benchmarks / "Set14"):
        if not needed.is_dir():
            raise SystemExit(f"error: {needed} does not exist (--data must hold train/BSDS400 and benchmark/)")
    args.out.mkdir(parents=True, exist_ok=True)
    results = [run_row(row, args) for row in rows_for(args.scales)]
    print(f"table: {write_table(results, args)}")
    figure = write_figure(results, args)
    if figure:
        print(f"figure: {figure}")


if __name__ == "__main__":
    main()
