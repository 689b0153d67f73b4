"""USRNet through the package's entry points: training and testing from option files, `hatast upscale` with a
kernel (reflect/wrap boundaries, centre alignment, tiling, refusals), `hatast bench --protocol usrnet_table1`."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import FIXTURES, REPO, need, single_error_line, write_image_folder

from hatast.archs.usrnet_arch import USRNet
from hatast.data import degradations as deg

TINY = dict(n_iter=2, h_nc=8, nc=[4, 8, 8, 8], nb=1)


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    return env


def _run(cmd, cwd, ok=True):
    out = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)
    if ok:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture
def usrnet_weights(tmp_path):
    torch.manual_seed(0)
    net = USRNet(**TINY, init="identity")
    path = tmp_path / "usrnet.pth"
    torch.save({"params": net.state_dict()}, path)
    return path


def test_identity_start_makes_the_prior_an_identity():
    net = USRNet(**TINY, init="identity").eval()
    x = torch.rand(2, 4, 13, 19)
    with torch.no_grad():
        assert torch.allclose(net.p(x), x[:, :3], atol=1e-6)
    assert USRNet(**TINY).state_dict().keys() == net.state_dict().keys()


def test_train_and_test_from_option_files(tmp_path):
    hr = write_image_folder(tmp_path / "hr", 3, 60)
    val = write_image_folder(tmp_path / "val", 2, 40)
    opt = yaml.safe_load((REPO / "options/train/USRNet-tiny_CPU.yml").read_text())
    opt["name"] = "usrnet_pipeline"
    opt["datasets"]["train"].update(dataroot_gt=str(hr), gt_size=24, batch_size_per_gpu=2)
    opt["datasets"]["val"].update(dataroot_gt=str(val), kernel="gaussian:1.5")
    opt["network_g"].update(TINY)
    opt["train"].update(total_iter=4)
    opt["train"]["scheduler"]["milestones"] = [2]
    opt["val"]["val_freq"] = 2
    opt["logger"].update(print_freq=1, save_checkpoint_freq=2)
    (tmp_path / "train.yml").write_text(yaml.safe_dump(opt))
    out = _run([sys.executable, str(REPO / "hatast/train.py"), "-opt", str(tmp_path / "train.yml")], tmp_path)
    log = out.stdout + out.stderr
    psnr = [float(v) for v in re.findall(r"# psnr: ([\d.]+)", log)]
    assert len(psnr) >= 2 and all(5 < v < 60 for v in psnr)
    models = tmp_path / "experiments" / "usrnet_pipeline" / "models"
    assert (models / "net_g_latest.pth").is_file()

    # the bicubic benchmark's test options: stored LR files and the bicubic kernel, tiled
    test = yaml.safe_load((REPO / "options/test/USRNet-tiny_SRx4_bicubic.yml").read_text())
    lr_dir = tmp_path / "val_lr"
    lr_dir.mkdir()
    for path in sorted(val.iterdir()):
        img = cv2.imread(str(path))
        cv2.imwrite(str(lr_dir / f"{path.stem}x4.png"), deg.bicubic_downsample(img, 4))
    test["datasets"] = {"test_1": {**test["datasets"]["test_1"], "dataroot_gt": str(val), "dataroot_lq": str(lr_dir)}}
    test["network_g"].update(TINY)
    test["path"]["pretrain_network_g"] = str(models / "net_g_latest.pth")
    test["tile"] = {"tile_size": 6, "tile_pad": 4}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    out = _run([sys.executable, str(REPO / "hatast/test.py"), "-opt", str(tmp_path / "test.yml")], tmp_path)
    assert re.search(r"# psnr: [\d.]+", out.stdout + out.stderr)


def _lr_photo(tmp_path, kernel, scale=2, size=48):
    folder = write_image_folder(tmp_path / "photos", 1, size)
    hr = cv2.imread(str(next(folder.iterdir()))).astype(np.float64) / 255
    lr = np.clip(np.round(deg.decimate(deg.circular_blur(hr, kernel), scale) * 255), 0, 255).astype(np.uint8)
    path = tmp_path / "lr.png"
    cv2.imwrite(str(path), lr)
    return path


def test_upscale_with_a_kernel(tmp_path, usrnet_weights):
    kernel = deg.gaussian_kernel((2.0, 2.0))
    np.save(tmp_path / "k.npy", kernel)
    lr = _lr_photo(tmp_path, kernel)
    cmd = [sys.executable, "-m", "hatast.cli.main", "upscale", str(lr), "-w", str(usrnet_weights), "--scale", "2",
           "--kernel", str(tmp_path / "k.npy"), "--noise", "1"]
    outputs = {}
    for name, extra in (("reflect", []), ("wrap", ["--boundary", "wrap"]), ("tiled", ["--tile", "12"]),
                        ("centre", ["--centre-aligned"])):
        _run(cmd + ["-o", str(tmp_path / name)] + extra, tmp_path)
        outputs[name] = cv2.imread(str(tmp_path / name / "lr.png"))
        assert outputs[name].shape == (48, 48, 3)
    assert not np.array_equal(outputs["reflect"], outputs["wrap"])
    assert not np.array_equal(outputs["reflect"], outputs["centre"])
    # tiles of 12 with 32 pixels of context cover this 24x24 image: the tiled result is the whole-image one
    assert np.abs(outputs["tiled"].astype(int) - outputs["reflect"]).max() <= 1


def test_upscale_refuses_what_does_not_fit(tmp_path, usrnet_weights):
    lr = _lr_photo(tmp_path, deg.gaussian_kernel((2.0, 2.0)))
    base = [sys.executable, "-m", "hatast.cli.main", "upscale", str(lr), "-o", str(tmp_path / "out")]
    cases = [
        ([ "-w", str(usrnet_weights)], "needs --scale"),
        (["-w", str(usrnet_weights), "--scale", "5", "--kernel", "gaussian:1"], "runs at scales 1, 2, 3, 4"),
        (["-w", str(usrnet_weights), "--scale", "2", "--kernel", "gaussian:x"], "not a number"),
        (["-w", str(usrnet_weights), "--scale", "2", "--noise", "3"], "give --kernel too"),
        (["-w", str(REPO / "hatast/weights/srlut/SRLUT-S_SRx4.npz"), "--kernel", "gaussian:1"], "takes no blur kernel"),
    ]
    for extra, message in cases:
        out = _run(base + extra, tmp_path, ok=False)
        assert out.returncode == 2
        single_error_line(out.stderr, message)
    assert not (tmp_path / "out").exists()


def test_bench_usrnet_table1(tmp_path, usrnet_weights):
    kernels = need(FIXTURES / "kernels_12.mat", "USRNet benchmark kernels")
    data = tmp_path / "sets"
    write_image_folder(data / "Tiny" / "HR", 2, 40)
    cmd = [sys.executable, "-m", "hatast.cli.main", "bench", "--protocol", "usrnet_table1", "-w", str(usrnet_weights),
           "--kernels", str(kernels), "--data", str(data), "--sets", "Tiny", "--scale", "2", "4", "--noise", "0",
           "-o", str(tmp_path / "res"), "--no-progress"]
    out = _run(cmd, tmp_path)
    rows = [line for line in out.stdout.splitlines() if line.startswith("| USRNet | x") or line.startswith("| bicubic")]
    assert len(rows) == 4 and all(len(r.split("|")) == 12 + 6 for r in rows)
    assert "USRNet (published, BSD68) | x4" in out.stdout and "25.96" in out.stdout
    csv = (tmp_path / "res" / "USRNet" / "Tiny_x4_n0.csv").read_text().splitlines()
    assert len(csv) == 1 + 2 * 12
    # resumable: a planted value survives a rerun
    planted = csv[1].split(",")
    planted[2] = "99.0000"
    (tmp_path / "res" / "USRNet" / "Tiny_x4_n0.csv").write_text("\n".join([csv[0], ",".join(planted), *csv[2:]]) + "\n")
    out = _run(cmd, tmp_path)
    assert "99.0000" in (tmp_path / "res" / "USRNet" / "Tiny_x4_n0.csv").read_text()
    # a network that takes no kernel is refused on one line
    table = str(REPO / "hatast/weights/srlut/SRLUT-S_SRx4.npz")
    bad = _run([table if part == str(usrnet_weights) else part for part in cmd], tmp_path, ok=False)
    assert bad.returncode == 2 and "needs a network that takes a blur kernel" in bad.stderr


def test_released_usrnet_tiny_matches_its_card():
    """The shipped files load strictly (pth and safetensors hold the same tensors, the config in the metadata), their
    SHA-256 sums and sizes are the manifest's, and the model card is the one rendered from the manifest entry."""
    import hashlib
    import json

    from safetensors import safe_open

    from hatast.archs.detect import detect
    from hatast.release import PACKAGE_WEIGHTS, card, read_manifest
    from hatast.utils.checkpoint import read_state_dict

    folder = REPO / "hatast" / "weights" / "usrnet"
    release = read_manifest(PACKAGE_WEIGHTS / "manifest.json")["USRNet-tiny_CPU"]
    assert (folder / "USRNet-tiny_CPU.md").read_text() == card(release)
    files = {f.name: f for f in release.files}
    for suffix in (".pth", ".safetensors"):
        data = (folder / f"USRNet-tiny_CPU{suffix}").read_bytes()
        record = files[f"USRNet-tiny_CPU{suffix}"]
        assert (record.sha256, record.bytes) == (hashlib.sha256(data).hexdigest(), len(data))
    state, entry = read_state_dict(folder / "USRNet-tiny_CPU.pth")
    model = detect(state)
    model.network.load_state_dict(state, strict=True)
    assert entry == "params" and model.name == "USRNet" and model.config["nc"] == [16, 32, 64, 64]
    with safe_open(str(folder / "USRNet-tiny_CPU.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["config"]) == {k: v for k, v in model.config.items() if k != "type"}
        assert all(torch.equal(f.get_tensor(k), v) for k, v in state.items())
    assert release.config == {k: v for k, v in model.config.items() if k != "type"}
    assert release.parameters == sum(v.numel() for v in state.values())
