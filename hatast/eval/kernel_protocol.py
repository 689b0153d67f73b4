"""USRNet's Table 1 protocol (``hatast bench --protocol usrnet_table1``): every HR image of a set degraded by each
blur kernel of a bank (``kernels_12.mat``: 4 isotropic, 4 anisotropic Gaussians, 4 motion blurs) at each scale and
noise level, super-resolved knowing the kernel and noise level, scored per kernel.

* HR: the stored image cropped to a multiple of lcm(s, 8);
* LR: circular (wrap-around) blur, upper-left s-fold decimation, Gaussian noise drawn with seed 0 per image
  (:func:`hatast.data.degradations.blur_downsample_noise`); float, neither clipped nor quantised;
* score: the 8-bit result against the HR image, RGB, border s^2 (:mod:`.metrics`, protocol ``rgb``).

One CSV per method, set, scale and noise level (``<method>/<set>_x<s>_n<noise>.csv``, one row per image and
kernel), resumable like the bicubic runner; the summary is a kernel x setting table as in the paper, with the
paper's BSD68 rows beside (their set differs: BSD68 is not in the shared data).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.degradations import benchmark_kernels, blur_downsample_noise, imresize
from ..utils.errors import UsageError
from ..utils.image import IMAGE_EXTENSIONS, read_image, to_integers
from ..utils.paths import OutputFolder
from .metrics import score
from .published import published
from .sets import BenchmarkError
from .timing import timed

FIELDS = ["image", "kernel", "psnr", "ssim", "ms"]
NOISE_LEVELS = (0.0, 2.55, 7.65)
"""The paper's noise levels, on the 0-255 scale."""
SCALES = (2, 3, 4)

DegradedRun = Callable[[np.ndarray, np.ndarray, float, int], np.ndarray]
"""``run(lr, kernel, sigma, scale)``: float ``[h, w, 3]`` BGR LR (0-1), the kernel, the noise level (0-1 scale) and
the scale -> uint8 ``[h*s, w*s, 3]`` BGR."""


@dataclass
class KernelMethod:
    name: str
    run: DegradedRun
    source: str
    published_name: str | None = None


def bicubic_method() -> KernelMethod:
    """The baseline of the protocol: MATLAB-bicubic upsampling of the (blurred, noisy) LR, blind to the kernel."""
    def run(lr: np.ndarray, kernel: np.ndarray, sigma: float, scale: int) -> np.ndarray:
        return _to_uint8(imresize(lr, float(scale), kernel="bicubic"))

    return KernelMethod("bicubic", run, "baseline bicubic (upsampling of the degraded LR)")


def network_method(weights: str, device) -> KernelMethod:
    """A USRNet checkpoint (any network whose descriptor takes ``kernel``, ``sigma`` and ``scale``)."""
    import torch

    from ..inference import is_table, load_network
    from ..utils.files import file_sha256

    model = None if is_table(weights) else load_network(weights, None, device)[0]
    if model is None or "kernel" not in model.extra_inputs:
        what = "a look-up table" if model is None else model.name
        raise UsageError(f"{weights}: the usrnet_table1 protocol needs a network that takes a blur kernel "
                         f"(USRNet); this is {what}")

    def run(lr: np.ndarray, kernel: np.ndarray, sigma: float, scale: int) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(lr[..., ::-1].transpose(2, 0, 1), dtype=np.float32))[None]
        with torch.inference_mode():
            out = model(x.to(device), kernel=torch.from_numpy(kernel.astype(np.float32)).to(device),
                        sigma=torch.tensor([sigma], dtype=torch.float32, device=device), scale=scale)
        return to_integers(out, 255)

    return KernelMethod(model.name, run, f"{Path(weights).resolve()} sha256:{file_sha256(weights)}", model.name)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(image, np.float64) * 255), 0, 255).astype(np.uint8)


def hr_images(root: str | Path, name: str) -> list[Path]:
    """The HR images of set ``name`` under ``root`` (``<root>/<name>/HR``)."""
    folder = Path(root) / name / "HR"
    if not folder.is_dir():
        raise BenchmarkError(f"{name}: no HR folder {folder} (the usrnet_table1 protocol needs HR images only)")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise BenchmarkError(f"{name}: {folder} holds no images")
    return images


def evaluate_setting(method: KernelMethod, set_name: str, images: list[Path], kernels: list[np.ndarray], scale: int,
                     noise: float, out: Path | OutputFolder, progress: bool = True) -> np.ndarray:
    """Mean PSNR per kernel (``[len(kernels)]``) of ``method`` on ``images`` at one scale and noise level."""
    from .runner import claim, read_rows, write_rows

    outputs = out if isinstance(out, OutputFolder) else OutputFolder(out, "-o", inputs=images)
    folder = method.name.replace("/", "_")
    claim(outputs, folder, method.source)
    path = outputs.path(f"{folder}/{set_name}_x{scale}_n{noise:g}.csv", what="results table",
                        source=("csv", method.source))
    rows = read_rows(path, FIELDS, key=lambda row: (row["image"], int(row["kernel"])))
    todo = [(img, k) for img in images for k in range(len(kernels)) if (img.stem, k) not in rows]
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"{method.name} {set_name} x{scale} noise {noise:g}", unit="LR",
                   leave=False, dynamic_ncols=True)
    step = scale * 8 // math.gcd(scale, 8)
    for image_path in images:
        pending = [k for k in range(len(kernels)) if (image_path.stem, k) not in rows]
        if not pending:
            continue
        image = read_image(image_path)
        h, w = image.size
        hr8 = np.ascontiguousarray(image.bgr[: h - h % step, : w - w % step])
        if image.max_value != 255:
            hr8 = np.round(hr8 / 257).astype(np.uint8)
        hr = hr8.astype(np.float64) / 255
        for k in pending:
            lr = blur_downsample_noise(hr, kernels[k], scale, noise / 255, np.random.default_rng(0))
            sr, ms = timed(lambda: method.run(lr, kernels[k], noise / 255, scale))  # noqa: B023
            scores = score(sr, hr8, scale, "rgb")
            rows[(image_path.stem, k)] = {"image": image_path.stem, "kernel": k, "psnr": f"{scores['psnr']:.4f}",
                                          "ssim": f"{scores['ssim']:.6f}", "ms": f"{ms:.1f}"}
            if bar is not None:
                bar.update(1)
        write_rows(path, rows, FIELDS)
    if bar is not None:
        bar.close()
    return np.array([statistics.mean(float(rows[(p.stem, k)]["psnr"]) for p in images) for k in range(len(kernels))])


@dataclass
class Setting:
    set_name: str
    scale: int
    noise: float
    per_kernel: np.ndarray


def run_protocol(methods: list[KernelMethod], sets: dict[str, list[Path]], kernels_file: str, scales=SCALES,
                 noises=NOISE_LEVELS, out: Path | OutputFolder = Path("results/bench/usrnet_table1"),
                 progress: bool = True) -> dict[str, list[Setting]]:
    kernels = benchmark_kernels(kernels_file)
    results: dict[str, list[Setting]] = {}
    for method in methods:
        results[method.name] = [
            Setting(name, s, n, evaluate_setting(method, name, images, kernels, s, n, out, progress))
            for name, images in sets.items() for s in scales for n in noises]
    return results


def markdown(results: dict[str, list[Setting]], methods: list[KernelMethod], n_kernels: int) -> str:
    """Kernel x setting tables, one per set, methods as row groups; the paper's BSD68 rows where it has them."""
    header = ["method", "scale", "noise", *[f"k{i + 1}" for i in range(n_kernels)], "mean"]
    lines, notes = [], []
    sets = list(dict.fromkeys(s.set_name for rows in results.values() for s in rows))
    for set_name in sets:
        lines += [f"\n**{set_name}** (PSNR dB, RGB, border s^2)\n", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for method in methods:
            for setting in (s for s in results[method.name] if s.set_name == set_name):
                cells = [method.name, f"x{setting.scale}", f"{setting.noise:g}",
                         *[f"{v:.2f}" for v in setting.per_kernel], f"{setting.per_kernel.mean():.2f}"]
                lines.append("| " + " | ".join(cells) + " |")
    for method in methods:
        if not method.published_name:
            continue
        for scale in sorted({s.scale for s in results[method.name]}):
            row = published(method.published_name, scale, "usrnet_table1")
            if row is None:
                continue
            for published_set, values in row.psnr.items():
                if not any(s.noise == 0 and s.scale == scale for s in results[method.name]):
                    continue
                if not notes:
                    lines += ["\n**Published** (the paper's full model; their set, noise 0)\n",
                              "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                cells = [f"{method.published_name} (published, {published_set})", f"x{scale}", "0",
                         *[f"{v:.2f}" for v in values], f"{np.mean(values):.2f}"]
                lines.append("| " + " | ".join(cells) + " |")
                notes.append(f"{method.published_name} x{scale} (published): {row.paper}; {row.source}")
    return "\n".join(lines).lstrip("\n") + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "") + "\n"
