"""Package a trained USRNet checkpoint as release files, measure it, and publish its manifest entry and the model card
rendered from it.

Writes ``<out>/<name>.pth`` (``{"params": state dict}``, loadable with ``weights_only``) and
``<out>/<name>.safetensors`` (the architecture and its config in the metadata), and measures with the package's own
commands:

* USRNet's Table 1 protocol (``hatast bench --protocol usrnet_table1``) on Set5 and Set14 at x4 and noise 0 (the
  acceptance case) and on Set5 at x2/x3/x4 and noise 0/2.55/7.65, with the bicubic-upsampling baseline;
* the standard bicubic benchmark (the stored Set5/Set14 x4 LR, kernel ``bicubic:4``) through the BasicSR test
  options ``options/test/USRNet-tiny_SRx4_bicubic.yml`` (``hatast test``);
* the cost of tiled inference on Set14.

Everything measured, with the training record read from the run's log (iterations, wall time, validation history)
and the recipe read from the options, is stored in ``<out>/logs/<name>.json``; the entry (files with SHA-256 and
size, config, recipe, results, the protocol tables as sections) goes into ``<out>/../manifest.json`` and the card
``<out>/<name>.md`` is rendered from it (``hatast.release.publish``). ``--cards-only`` measures and writes nothing
but the entry and the card, from that JSON (after checking it is a record of the files in ``--out``). Evaluation
results are kept in ``--results``.

Usage: ``python scripts/release_usrnet.py --checkpoint experiments/USRNet-tiny_CPU_BSDS400/models/net_g_latest.pth
--log experiments/USRNet-tiny_CPU_BSDS400/train_<time>.log [--data ../shared/data] [--kernels kernels_12.mat]``, or
``python scripts/release_usrnet.py --cards-only``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_release(checkpoint: Path, out: Path, name: str) -> tuple[dict, dict[str, str]]:
    import torch
    from safetensors.torch import save_file

    import hatast.models  # noqa: F401
    from hatast.archs.detect import detect
    from hatast.utils.checkpoint import read_state_dict, save_atomic
    from hatast.utils.files import atomic_path, file_sha256

    state, _ = read_state_dict(checkpoint)
    model = detect(state)
    if model.name != "USRNet":
        raise SystemExit(f"{checkpoint}: not a USRNet checkpoint ({model.name})")
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    out.mkdir(parents=True, exist_ok=True)
    save_atomic({"params": state}, out / f"{name}.pth")
    metadata = {"architecture": "USRNet", "config": json.dumps({k: v for k, v in model.config.items() if k != "type"})}
    with atomic_path(out / f"{name}.safetensors") as tmp:
        save_file(state, str(tmp), metadata=metadata)
    sums = {suffix: file_sha256(out / f"{name}{suffix}") for suffix in (".pth", ".safetensors")}
    return model.config, sums


def table1(weights: Path, data: Path, kernels: str, sets: list[str], scales: list[int], noises: list[float],
           results: Path) -> str:
    cmd = [sys.executable, "-m", "hatast.cli.main", "bench", "--protocol", "usrnet_table1", "-w", str(weights),
           "--kernels", kernels, "--data", str(data / "benchmark"), "--sets", *sets, "--scale", *map(str, scales),
           "--noise", *map(str, noises), "-o", str(results), "--no-progress", "--threads", "2"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench failed:\n{done.stderr[-3000:]}")
    return (results / "summary.md").read_text()


def bicubic_benchmark(weights: Path, data: Path, log_dir: Path) -> dict[str, tuple[float, float]]:
    name = "USRNet-tiny_SRx4_bicubic_release"
    cmd = [sys.executable, "hatast/test.py", "-opt", "options/test/USRNet-tiny_SRx4_bicubic.yml", "--data-root",
           str(data), "--force_yml", f"path:pretrain_network_g={weights}", f"name={name}", "val:save_img=false"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"hatast test failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    text = done.stdout + done.stderr
    scores = {}
    for set_name, body in re.findall(r"Validation (\w+)\n(.*?)(?=\n\S|\Z)", text, flags=re.S):
        psnr = re.search(r"# psnr: ([\d.]+)", body)
        ssim = re.search(r"# ssim: ([\d.]+)", body)
        if psnr and ssim:
            scores[set_name] = (float(psnr.group(1)), float(ssim.group(1)))
    return scores


def tiling_cost(weights: Path, data: Path, kernels_file: str, kernel_ids=(1, 5, 9), scale: int = 4,
                tiles=((64, 16), (64, 32))) -> list[tuple[str, float, float]]:
    """PSNR (RGB, border s^2) of whole-image and tiled ``hatast upscale`` runs on Set14 LR images made with a few
    benchmark kernels (8-bit, reflect boundary: the photo mode), and the largest pixel difference between them."""
    import numpy as np

    from hatast.data.degradations import benchmark_kernels, blur_downsample_noise
    from hatast.eval.metrics import score
    from hatast.inference import Degradation, Upscaler
    from hatast.utils.image import Image, read_image, to_integers

    kernels = benchmark_kernels(kernels_file)
    hr_dir = data / "benchmark" / "Set14" / "HR"
    runs: dict[str, list[float]] = {"whole": []}
    diffs: dict[str, list[int]] = {}
    for tile, pad in tiles:
        runs[f"tile {tile}, pad {pad}"] = []
        diffs[f"tile {tile}, pad {pad}"] = []
    for k in kernel_ids:
        upscaler = Upscaler.load(str(weights), None, "cpu", scale, Degradation(kernels[k], 0.0, "reflect"))
        for path in sorted(hr_dir.iterdir()):
            image = read_image(path)
            h, w = image.size
            hr8 = np.ascontiguousarray(image.bgr[: h - h % scale, : w - w % scale])
            lr = blur_downsample_noise(hr8 / 255.0, kernels[k], scale, 0.0, None)
            lr8 = np.clip(np.round(lr * 255), 0, 255).astype(np.uint8)
            whole = to_integers(upscaler(Image(lr8, None, 255), 0, 0, "cpu"), 255)
            runs["whole"].append(score(whole, hr8, scale, "rgb")["psnr"])
            for tile, pad in tiles:
                tiled = to_integers(upscaler(Image(lr8, None, 255), tile, pad, "cpu"), 255)
                runs[f"tile {tile}, pad {pad}"].append(score(tiled, hr8, scale, "rgb")["psnr"])
                diffs[f"tile {tile}, pad {pad}"].append(int(np.abs(tiled.astype(int) - whole).max()))
    base = float(np.mean(runs["whole"]))
    return [(name, float(np.mean(values)), float(np.mean(values)) - base, max(diffs.get(name, [0])))
            for name, values in runs.items()]


def training_record(logs: list[Path]) -> dict:
    """Iterations, wall time and validation history from the run's log files (one per start or resumption)."""
    text = "\n".join(log.read_text() for log in sorted(logs))
    iters = [int(m.replace(",", "")) for m in re.findall(r"epoch:\s*\d+, iter:\s*([\d,]+)", text)]
    start = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ INFO: Start training", text)
    end = re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ INFO: End of training", text)
    vals, last_iter = [], 0
    for line in text.splitlines():
        if (found := re.search(r"epoch:\s*\d+, iter:\s*([\d,]+)", line)) is not None:
            last_iter = int(found.group(1).replace(",", ""))
        elif (found := re.search(r"# psnr: ([\d.]+)", line)) is not None:
            vals.append((last_iter, float(found.group(1))))
    spans = re.findall(r"Time consumed: ([\d:]+)", text)
    resumed = re.findall(r"Resuming training from epoch \d+, iteration (\d+)", text)
    return {"iterations": max(iters) if iters else 0, "start": start.group(1) if start else "?",
            "end": end[-1] if end else "?", "time": " + ".join(spans) if spans else "?",
            "resumed": [int(r) for r in resumed], "validation": sorted(set(vals))}


def training_recipe(options: Path) -> dict:
    """What the card says of the recipe, read from the option file the run trained with."""
    import yaml

    opt = yaml.safe_load(options.read_text())
    train, data = opt["train"], opt["datasets"]["train"]
    return {"options": str(options.relative_to(REPO) if options.is_relative_to(REPO) else options),
            "data": {k: data[k] for k in ("name", "dataroot_gt", "gt_size", "batch_size_per_gpu", "scales",
                                          "kernel_size", "variance_range", "noise_range")},
            "loss": train["pixel_opt"]["type"], "lr": train["optim_g"]["lr"],
            "milestones": train["scheduler"]["milestones"], "gamma": train["scheduler"]["gamma"]}


def release_sums(out: Path, name: str) -> dict[str, str]:
    from hatast.utils.files import file_sha256

    return {f"{name}{suffix}": file_sha256(out / f"{name}{suffix}") for suffix in (".pth", ".safetensors")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--log", type=Path, nargs="+",
                        help="the training run's log files (one per start or resumption)")
    parser.add_argument("--options", type=Path, default=REPO / "options/train/USRNet-tiny_CPU.yml")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--kernels", default=str(REPO.parent / "shared" / "fixtures" / "kernels_12.mat"))
    parser.add_argument("--name", default="USRNet-tiny_CPU")
    parser.add_argument("--out", type=Path, default=REPO / "hatast" / "weights" / "usrnet")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "usrnet_release")
    parser.add_argument("--quick", action="store_true", help="only the x4 noise-0 Set5/Set14 table")
    parser.add_argument("--cards-only", action="store_true",
                        help="measure nothing: publish the entry and the card again from <out>/logs/<name>.json")
    args = parser.parse_args()
    if args.out.name != "usrnet":
        parser.error(f"--out {args.out}: must be a folder named 'usrnet' (<weights folder>/usrnet); the manifest goes "
                     "in its parent")
    from hatast.release import card, publish
    from hatast.utils.files import write_bytes_atomic

    stored = args.out / "logs" / f"{args.name}.json"
    if args.cards_only:
        if not stored.is_file():
            raise SystemExit(f"--cards-only: {stored} is missing (run once without --cards-only to measure)")
        measured = json.loads(stored.read_text())
        if release_sums(args.out, args.name) != measured["sha256"]:
            raise SystemExit(f"--cards-only: {stored} records other files than those in {args.out} (SHA-256 "
                             "differs); measure again without --cards-only")
    else:
        if args.checkpoint is None or not args.log:
            parser.error("--checkpoint and --log are needed to make and measure a release (or pass --cards-only)")
        write_release(args.checkpoint, args.out, args.name)
        weights = args.out / f"{args.name}.pth"
        print(f"wrote {weights} and .safetensors", flush=True)
        main_table = table1(weights, args.data, args.kernels, ["Set5", "Set14"], [4], [0.0], args.results)
        full_table = None if args.quick else table1(weights, args.data, args.kernels, ["Set5"], [2, 3, 4],
                                                    [0.0, 2.55, 7.65], args.results)
        measured = {"sha256": release_sums(args.out, args.name), "recipe": training_recipe(args.options),
                    "record": training_record(args.log), "table1_x4": main_table, "table1_set5_every_scale": full_table,
                    "bicubic_benchmark": {k: list(v) for k, v in bicubic_benchmark(weights, args.data,
                                                                                    args.results).items()},
                    "tiling": [list(row) for row in tiling_cost(weights, args.data, args.kernels)]}
        stored.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(stored, (json.dumps(measured, indent=2) + "\n").encode())
    entry = release_entry(args, measured)
    publish(entry, args.out.parent)
    print(card(entry))
    return 0


def release_entry(args, measured: dict):
    """The manifest entry: the files, config and recipe as fields, the standard bicubic benchmark as the results,
    the Table 1 protocol, tiling and the gap to the paper as sections."""
    import numpy as np

    import hatast.models  # noqa: F401
    from hatast.archs.detect import detect
    from hatast.eval.published import published
    from hatast.release import Release, ReleaseFile, ScoreRow, Section, Stage
    from hatast.utils.checkpoint import read_state_dict

    state, _ = read_state_dict(args.out / f"{args.name}.pth")
    model = detect(state)
    config = {k: v for k, v in model.config.items() if k != "type"}
    parameters = sum(int(np.prod(s)) for s in _shapes(args.out / f"{args.name}.pth"))
    recipe, record, data = measured["recipe"], measured["record"], measured["recipe"]["data"]
    paper = published("USRNet", 4, "usrnet_table1")
    files = [ReleaseFile(name, digest, (args.out / name).stat().st_size) for name, digest in measured["sha256"].items()]
    validation = ", ".join(f"{p:.2f} dB @ {i}" for i, p in record["validation"])
    sections = [Section("USRNet's Table 1 protocol, x4, noise 0 (`hatast bench --protocol usrnet_table1`)",
                        "LR = circular blur by each of the 12 kernels of kernels_12.mat, upper-left decimation; "
                        "PSNR on RGB with border s^2; bicubic = MATLAB-bicubic upsampling of the same LR.\n\n"
                        + measured["table1_x4"].strip())]
    if measured.get("table1_set5_every_scale"):
        sections.append(Section("Set5 at every scale and noise level of the paper",
                                measured["table1_set5_every_scale"].strip()))
    sections.append(Section("Tiled inference (`hatast upscale --tile`)", "\n".join([
        "USRNet's data step is global (an FFT over the whole image), so tiles are approximate. Set14, x4, benchmark "
        "kernels 2, 6 and 10 (one of each kind), LR rounded to 8 bits, reflect boundary; PSNR on RGB, border 16, mean "
        "over the 42 images:", "", "| run | PSNR | vs whole | largest pixel difference |", "|---|---|---|---|",
        *[f"| {name} | {p:.4f} | {d:+.4f} dB | {m} |" for name, p, d, m in measured["tiling"]]])))
    sections.append(Section("How far from the paper",
                            f"The paper's full USRNet averages {np.mean(paper.psnr['BSD68']):.2f} dB over the 12 "
                            "kernels at x4, noise 0 (BSD68; " + paper.source + "). This model differs in every factor "
                            "that matters: 0.59 M instead of 17.0 M parameters (USRNet-tiny's size), "
                            f"{record['iterations']} iterations of batch {data['batch_size_per_gpu']} instead of "
                            "hundreds of thousands of batch 48, and 400 BSDS photos instead of DIV2K + Flickr2K. The "
                            "full recipe is `options/train/train_USRNet_SRx1234.yml` (and "
                            "`train_USRNet-tiny_SRx1234.yml`); it needs a GPU."))
    resumed = (f" (resumed at iteration {', '.join(map(str, record['resumed']))}: the first start was stopped to "
               "shorten the run)" if record["resumed"] else "")
    return Release(
        name=args.name, title="USRNet-tiny, this repository's CPU recipe (BSDS400)", family="usrnet",
        architecture=model.name, scale=list(model.scale) if isinstance(model.scale, tuple) else model.scale,
        files=files, config=config, parameters=parameters, source="hatast",
        summary="USRNet-tiny (Zhang, Van Gool, Timofte, *Deep Unfolding Network for Image Super-Resolution*, CVPR "
                "2020) trained by hatast on this repository's CPU recipe. **A small CPU-scale model, not the "
                f"paper's**: see \"How far from the paper\" below. {parameters} parameters. Inputs: the LR image, the "
                "blur kernel, the noise level (0-1 scale) and the scale (1-4). In BasicSR: `type: USRNet` with the "
                "config below.",
        usage="--scale 4 --kernel gaussian:1.6",
        data=f"{data['name']} (`{data['dataroot_gt']}`), HR crops of {data['gt_size']}, batch "
             f"{data['batch_size_per_gpu']}, scales {data['scales']} (one per batch), kernels {data['kernel_size']}x"
             f"{data['kernel_size']} (half anisotropic Gaussians with eigenvalues {data['variance_range']}, half "
             f"motion blurs), noise {data['noise_range']}/255.",
        stages=[Stage("Training", record["iterations"], recipe["options"], None,
                      f"{recipe['loss']}, Adam lr {recipe['lr']}, MultiStepLR {recipe['milestones']} "
                      f"x{recipe['gamma']}; {record['start']} to {record['end']} on 2 CPU cores{resumed}. Validation "
                      f"(Set5, kernel 5 of kernels_12.mat, x4, noise 0, PSNR RGB border 16): {validation}.")],
        results_protocol="Standard bicubic benchmark (`hatast test -opt options/test/USRNet-tiny_SRx4_bicubic.yml`): "
                         "the stored x4 LR files with the kernel of MATLAB bicubic downsampling (`bicubic:4`), noise "
                         "0; PSNR (dB) / SSIM on Y, border 4.",
        results=[ScoreRow("x4, kernel `bicubic:4`, noise 0 = this file",
                          {k: list(v) for k, v in measured["bicubic_benchmark"].items()})],
        licence="Apache-2.0",
        produced_by="python scripts/release_usrnet.py --checkpoint <net_g_latest.pth> --log <train logs>",
        sections=sections)


def _shapes(path: Path):
    import torch

    return [tuple(v.shape) for v in torch.load(path, weights_only=True)["params"].values()]


if __name__ == "__main__":
    sys.exit(main())
