"""IM-LUT through the entry points: IM-Net training (one scale per batch, tables with every checkpoint), LUT-aware
fine-tuning of the tables, ``hatast test`` at a non-integer scale, ``hatast upscale --scale/--size`` and
``hatast bench``'s runner."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, sample_image, write_image_folder

from hatast.archs.imlut_arch import IMNet
from hatast.data.degradations import bicubic_downsample, mod_crop
from hatast.lut.imlut import upscale as imlut_upscale
from hatast.lut.table import load_file
from hatast.models.imlut_model import draw_scale

NETWORK = {"type": "IMNet", "interpolations": "NLC", "num_feat": 8, "num_hidden": 1, "scale_hidden": 8,
           "refiner_rotations": 1, "scale_grid": {"start": 1.0, "stop": 4.0, "step": 0.5}}


def _run(cmd, cwd):
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def _pair_folder(tmp_path, scale: float):
    """HR crops cropped by the benchmark rule and their MATLAB-bicubic LR at ``scale`` (as ``hatast prepare``)."""
    hr_dir = write_image_folder(tmp_path / "val_hr", crops=2, size=30, start=10)
    lr_dir = tmp_path / "val_lr"
    lr_dir.mkdir()
    for p in sorted(hr_dir.iterdir()):
        hr = mod_crop(cv2.imread(str(p)), scale)
        cv2.imwrite(str(p), hr)
        cv2.imwrite(str(lr_dir / p.name), bicubic_downsample(hr, scale))
    return hr_dir, lr_dir


def _options(tmp_path, name: str, network: dict, iters: int, val: dict) -> dict:
    train = write_image_folder(tmp_path / "train_hr", crops=6, size=48) if not (tmp_path / "train_hr").exists() \
        else tmp_path / "train_hr"
    return {
        "name": name, "model_type": "IMLUTModel", "scale": 2.5, "num_gpu": 0, "manual_seed": 0,
        "imlut": {"interval": 4, "scales": {"range": [1.0, 3.0], "step": 0.5, "per_axis": 0.5},
                  "guide": {"lambda": 0.1, "beta": 100.0}},
        "datasets": {"train": {"name": "tiny", "type": "HRCropDataset", "dataroot_gt": str(train),
                               "io_backend": {"type": "disk"}, "gt_size": 30, "use_hflip": True, "use_rot": True,
                               "use_shuffle": True, "num_worker_per_gpu": 0, "batch_size_per_gpu": 2,
                               "dataset_enlarge_ratio": 1, "prefetch_mode": None},
                     "val": val},
        "network_g": network,
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {"optim_g": {"type": "Adam", "lr": 1e-3, "weight_decay": 0, "betas": [0.9, 0.999]},
                  "scheduler": {"type": "MultiStepLR", "milestones": [], "gamma": 0.5}, "total_iter": iters,
                  "warmup_iter": -1, "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"}},
        "val": {"val_freq": iters, "save_img": False,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 3, "test_y_channel": True}}},
        "logger": {"print_freq": 1, "save_checkpoint_freq": iters, "use_tb_logger": False},
    }


def test_scales_are_drawn_reproducibly_from_the_grid():
    drawn = [draw_scale(0, i, 1.0, 4.0, 0.1, 0.2) for i in range(400)]
    assert drawn == [draw_scale(0, i, 1.0, 4.0, 0.1, 0.2) for i in range(400)]
    values = {v for pair in drawn for v in pair}
    assert min(values) == 1.0 and max(values) == 4.0 and all(round(v * 10) == v * 10 for v in values)
    assert 0.1 < np.mean([a != b for a, b in drawn]) < 0.3  # about a fifth of the batches differ per axis
    assert len({a for a, _ in drawn}) > 20  # integer and non-integer scales alike


def test_net_then_tables_then_test_at_a_non_integer_scale(tmp_path):
    hr_dir, lr_dir = _pair_folder(tmp_path, 2.5)
    val = {"name": "tiny_val", "type": "PairedImageDataset", "dataroot_gt": str(hr_dir), "dataroot_lq": str(lr_dir),
           "filename_tmpl": "{}", "io_backend": {"type": "disk"}}
    train = [sys.executable, str(REPO / "hatast" / "train.py"), "-opt"]
    (tmp_path / "net.yml").write_text(yaml.safe_dump(_options(tmp_path, "imlut_net", NETWORK, 4, val)))
    log = _run(train + [str(tmp_path / "net.yml")], tmp_path)
    assert "l_guide" in log and "# psnr" in log
    models = tmp_path / "experiments" / "imlut_net" / "models"
    tables = load_file(models / "net_g_latest.npz")
    assert tables.family == "imlut" and tables.info["iteration"] == 4 and tables.config["interpolations"] == "NLC"

    network = {"type": "IMLUT", "lut_path": str(models / "net_g_latest.npz")}
    opt = _options(tmp_path, "imlut_table", network, 2, val)
    opt["train"]["optim_g"]["lr"] = 2.0
    (tmp_path / "table.yml").write_text(yaml.safe_dump(opt))
    _run(train + [str(tmp_path / "table.yml")], tmp_path)
    tuned = load_file(tmp_path / "experiments" / "imlut_table" / "models" / "net_g_latest.npz")
    assert not np.array_equal(tuned.tables["weight"].entries, tables.tables["weight"].entries)

    test_opt = {key: opt[key] for key in ("model_type", "scale", "num_gpu", "manual_seed", "network_g")}
    test_opt.update(name="imlut_eval", datasets={"test_1": val}, path={}, val={"save_img": True,
                    "metrics": opt["val"]["metrics"]})
    test_opt["network_g"]["lut_path"] = str(tmp_path / "experiments" / "imlut_table" / "models" / "net_g_latest.npz")
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test_opt))
    log = _run([sys.executable, str(REPO / "hatast" / "test.py"), "-opt", str(tmp_path / "test.yml")], tmp_path)
    metrics = json.loads((tmp_path / "results" / "imlut_eval" / "metrics.json").read_text())
    assert 10 < metrics["tiny_val"]["psnr"] < 60, log
    written = sorted((tmp_path / "results" / "imlut_eval" / "visualization" / "tiny_val").iterdir())
    assert cv2.imread(str(written[0])).shape[:2] == cv2.imread(str(sorted(hr_dir.iterdir())[0])).shape[:2]


def test_a_non_integer_scale_is_refused_for_fixed_scale_models(tmp_path):
    from hatast.options import OptionsError, validate_options

    opt = _options(tmp_path, "x", {"type": "SRLUTNet", "kind": "S", "upscale": 2}, 2, {})
    opt["datasets"].pop("val")
    opt["model_type"] = "SRLUTModel"
    opt.pop("imlut")
    with pytest.raises(OptionsError, match="only arbitrary-scale models"):
        validate_options(opt, True, "x.yml")


def test_upscale_command_and_runner_take_any_scale_or_a_size(tmp_path):
    from hatast.cli.upscale import main as upscale_command
    from hatast.eval.runner import weights_method
    from hatast.utils.image import Image

    torch.manual_seed(0)
    path = IMNet(**{k: v for k, v in NETWORK.items() if k != "type"}).to_tables(4).save(tmp_path / "t.npz")
    crop = sample_image()[40:60, 80:111]
    cv2.imwrite(str(tmp_path / "in.png"), crop[..., ::-1])
    tables = load_file(path)
    for extra, shape, name in ((["--scale", "2.5"], (50, 78), "a"), (["--scale", "1.5,2"], (30, 62), "b"),
                               (["--size", "100x45"], (45, 100), "c")):
        assert upscale_command([str(tmp_path / "in.png"), "-w", str(path), "-o", str(tmp_path / name), *extra]) == 0
        written = cv2.imread(str(tmp_path / name / "in.png"))
        assert written.shape[:2] == shape
    expected = imlut_upscale(tables, np.ascontiguousarray(crop[..., ::-1]), 2.5)
    assert np.array_equal(cv2.imread(str(tmp_path / "a" / "in.png")), expected)
    def status(argv) -> int:
        try:
            return upscale_command(argv)
        except SystemExit as stop:  # argument errors: argparse exits (one line, status 2)
            return stop.code

    for bad in ([], ["--scale", "0.5"], ["--scale", "2", "--size", "10x10"], ["--scale", "2", "--kernel",
                                                                               "gaussian:1"]):
        assert status([str(tmp_path / "in.png"), "-w", str(path), "-o", str(tmp_path / "x"), *bad]) == 2, bad
    # a target smaller than an input is that image's failure (others may fit): skipped, exit status 1
    assert status([str(tmp_path / "in.png"), "-w", str(path), "-o", str(tmp_path / "x"), "--size", "10x5"]) == 1
    method = weights_method(path, "cpu", scale=2.5)
    assert method.name == "IM-LUT-NLC" and method.published_name == "IM-LUT-NLC"
    out = method.run(Image(np.ascontiguousarray(crop[..., ::-1]), None, 255))
    assert out.shape == (50, 78, 3) and np.array_equal(out, expected)


def test_upscale_warns_in_one_line_above_the_trained_range(tmp_path, capsys):
    from hatast.cli.upscale import main as upscale_command

    torch.manual_seed(0)
    tables = IMNet(**{k: v for k, v in NETWORK.items() if k != "type"}).to_tables(4)
    tables.info["trained_scales"] = [1.0, 3.0]
    path = tables.save(tmp_path / "t.npz")
    cv2.imwrite(str(tmp_path / "in.png"), sample_image()[:12, :10])
    argv = [str(tmp_path / "in.png"), "-w", str(path), "-o", str(tmp_path / "o"), "--scale", "3.5"]
    assert upscale_command(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: scale 3.5 is above the range these IM-LUT tables were trained at (1-3); the result "
                   "extrapolates"]
    assert cv2.imread(str(tmp_path / "o" / "in.png")).shape[:2] == (42, 35)
