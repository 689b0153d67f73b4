"""SR-LUT nets, their transfer to tables, LUT-aware fine-tuning, training through the entry points, and the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import DATA, REPO, need, sample_image, write_options

from hatast.archs.detect import detect
from hatast.archs.lut_arch import LUTNet
from hatast.archs.srlut_arch import SRLUTNet, srlut_config_from_state_dict
from hatast.cli.lut import main as lut_command
from hatast.cli.upscale import main as upscale_command
from hatast.lut import load_table, upscale
from hatast.utils.image import read_image

CROP = np.ascontiguousarray(sample_image()[60:100, 180:230][..., ::-1])  # RGB uint8 photo crop


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.transpose(2, 0, 1).copy())[None].float() / 255


@pytest.mark.parametrize("kind", ["V", "F", "S"])
def test_full_table_equals_the_net_up_to_int8_rounding(kind):
    """On inputs that are sampled levels the table holds the net itself (V: every input, at interval 2**0; F and S:
    levels of 2**4 on a photo quantised to them), so table inference may differ from the net's ensemble only by the
    int8 rounding of four entries (4 x 0.5) and the final rounding (0.5), in 1/255 units."""
    torch.manual_seed(0)
    net = SRLUTNet(kind, 2).eval()
    image = CROP if kind == "V" else (CROP // 16 * 16).astype(np.uint8)
    table = net.to_table(0 if kind == "V" else 4)
    with torch.no_grad():
        reference = net(as_tensor(image))[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255
    assert np.abs(upscale(table, image).astype(np.float64) - reference).max() <= 2.5 + 1e-4


def test_transferred_table_tracks_the_net_on_a_photo():
    torch.manual_seed(0)
    net = SRLUTNet("S", 4).eval()
    with torch.no_grad():
        reference = net(as_tensor(CROP))[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255
    errors = [np.abs(upscale(net.to_table(i), CROP) - reference).mean() for i in (6, 4)]
    assert errors[1] < errors[0] < 20  # a finer sampling interval interpolates the net more closely


@pytest.mark.parametrize("kind", ["V", "F", "S"])
def test_config_is_read_from_the_state_dict(kind):
    net = SRLUTNet(kind, 3, num_feat=32, num_hidden=2)
    config = srlut_config_from_state_dict(net.state_dict())
    assert config == {"kind": kind, "upscale": 3, "num_feat": 32, "num_hidden": 2}
    detected = detect(net.state_dict()).network
    assert isinstance(detected, SRLUTNet) and detected.kind == kind


def test_lut_net_training_path_matches_table_inference_and_learns(tmp_path):
    torch.manual_seed(0)
    path = SRLUTNet("S", 2).to_table(4).save(tmp_path / "s.npz")
    model = LUTNet(str(path))
    lq = as_tensor(CROP)
    with torch.no_grad():
        exact = model.eval()(lq)
        soft = model.train()(lq)
    inside = (soft > 0) & (soft < 1)
    assert (soft - exact)[inside].abs().max() <= 0.5 / 255 + 1e-6  # only the final rounding differs
    assert np.array_equal((exact[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
                          upscale(load_table(path), CROP))

    target = torch.nn.functional.interpolate(lq, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=8.0)
    losses = []
    for _ in range(5):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(model(lq), target)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert model.table().entries.dtype == np.int8


@pytest.mark.parametrize("kind,scale,authors_order", [("S", 4, False), ("S", 2, True), ("F", 3, False),
                                                     ("V", 2, False)])
def test_fused_training_kernels_equal_autograd_through_the_torch_path(kind, scale, authors_order):
    """The fused forward and table gradient compute what autograd computes through the vectorised torch path, for
    every kind, odd sizes, a 1-pixel-wide image, flat regions (zero remainders, ties) and the authors' corner order."""
    generator = torch.Generator().manual_seed(0)
    model = LUTNet(kind=kind, upscale=scale, interval=0 if kind == "V" else 4, authors_order=authors_order).train()
    with torch.no_grad():
        model.entries.uniform_(-127, 127, generator=generator)
    images = [torch.randint(0, 256, (2, 3, 7, 9), generator=generator).float() / 255,
              torch.randint(0, 256, (1, 1, 5, 1), generator=generator).float() / 255]
    images[0][0, 0, :3, :4] = 0.5  # flat: equal values, and 128 has remainder 0
    images[0][1, 2] = images[0][1, 1]
    for lq in images:
        results = []
        for fused in (True, False):
            model.fused = fused
            model.entries.grad = None
            out = model(lq)
            weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
            (out * weight).sum().backward()
            results.append((out.detach(), model.entries.grad.clone()))
        (fused_out, fused_grad), (torch_out, torch_grad) = results
        assert torch.equal(fused_out, torch_out)  # rounded entries times integer weights: exact in float32
        assert torch.allclose(fused_grad, torch_grad, atol=1e-5, rtol=1e-5)
        assert fused_grad.abs().sum() > 0


def _srlut_options(path, folders, network, total_iter, name, lr=1e-3):
    path = write_options(path, folders, total_iter=total_iter, name=name, model_type="SRLUTModel",
                         val={"on_table": True}, lut={"interval": 4})
    opt = yaml.safe_load(path.read_text())
    opt["network_g"] = network
    opt["train"] = {"optim_g": {"type": "Adam", "lr": lr, "weight_decay": 0, "betas": [0.9, 0.999]},
                    "scheduler": {"type": "MultiStepLR", "milestones": [], "gamma": 0.5},
                    "total_iter": total_iter, "warmup_iter": -1,
                    "pixel_opt": {"type": "MSELoss", "loss_weight": 1.0, "reduction": "mean"}}
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def _run(cmd, cwd):
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def test_net_then_table_training_then_test(tmp_path, image_folders):
    """Stage 1 trains the net and writes a table with each checkpoint; stage 2 fine-tunes that table; the test
    runner evaluates the result from a table file."""
    train = [sys.executable, str(REPO / "hatast" / "train.py"), "-opt"]
    opt = _srlut_options(tmp_path / "net.yml", image_folders, {"type": "SRLUTNet", "kind": "S", "upscale": 2}, 4,
                         "lut_net")
    log = _run(train + [str(opt)], tmp_path)
    models = tmp_path / "experiments" / "lut_net" / "models"
    assert {p.name for p in models.iterdir()} >= {"net_g_2.pth", "net_g_2.npz", "net_g_4.npz", "net_g_latest.npz"}
    assert re.search(r"# psnr: [\d.]+", log)
    table = load_table(models / "net_g_latest.npz")
    assert (table.kind, table.scale, table.interval) == ("S", 2, 4) and table.info["experiment"] == "lut_net"
    assert table.info["iteration"] == 4 and load_table(models / "net_g_2.npz").info["iteration"] == 2

    opt = _srlut_options(tmp_path / "table.yml", image_folders,
                         {"type": "LUTNet", "lut_path": str(models / "net_g_latest.npz")}, 2, "lut_table", lr=2.0)
    _run(train + [str(opt)], tmp_path)
    tuned = load_table(tmp_path / "experiments" / "lut_table" / "models" / "net_g_latest.npz")
    assert not np.array_equal(tuned.entries, table.entries)

    test_opt = yaml.safe_load(opt.read_text())
    test_opt.update(name="lut_eval", datasets={"test_1": test_opt["datasets"]["val"]}, path={})
    test_opt["network_g"]["lut_path"] = str(tmp_path / "experiments" / "lut_table" / "models" / "net_g_latest.npz")
    test_opt["val"].update(save_img=True)
    for key in ("train", "logger"):
        test_opt.pop(key)
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test_opt))
    log = _run([sys.executable, str(REPO / "hatast" / "test.py"), "-opt", str(tmp_path / "test.yml")], tmp_path)
    metrics = json.loads((tmp_path / "results" / "lut_eval" / "metrics.json").read_text())
    assert 5 < metrics["tiny_val"]["psnr"] < 60, log


def test_lut_command_transfers_and_describes(tmp_path, capsys):
    torch.manual_seed(0)
    net = SRLUTNet("F", 3)
    torch.save({"params": net.state_dict()}, tmp_path / "net.pth")
    assert lut_command(["transfer", str(tmp_path / "net.pth"), "-o", str(tmp_path / "f.npz"), "--interval", "5"]) == 0
    table = load_table(tmp_path / "f.npz")
    assert np.array_equal(table.entries, net.to_table(5).entries)
    assert lut_command(["info", str(tmp_path / "f.npz")]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    described = info["tables"]["sr"]
    assert described["receptive_field"]["kind"] == "F" and described["interval"] == 5 and info["rows"] == {"sr": 9**3}

    torch.save({"params": {"conv_first.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    assert lut_command(["transfer", str(tmp_path / "other.pth"), "-o", str(tmp_path / "x.npz")]) == 2
    assert "not an SRLUTNet or IMNet checkpoint" in capsys.readouterr().err


def test_upscale_command_runs_tables(tmp_path):
    import cv2

    torch.manual_seed(0)
    path = SRLUTNet("S", 2).to_table(4).save(tmp_path / "s.npz")
    cv2.imwrite(str(tmp_path / "in.png"), CROP[..., ::-1])
    assert upscale_command([str(tmp_path / "in.png"), "-w", str(path), "-o", str(tmp_path / "out")]) == 0
    written = read_image(tmp_path / "out" / "in.png")
    expected = upscale(load_table(path), CROP)
    assert np.array_equal(written.bgr[..., ::-1], expected)


def test_lut_net_refuses_a_table_that_contradicts_the_options(tmp_path):
    path = SRLUTNet("F", 2).to_table(4).save(tmp_path / "f.npz")
    assert LUTNet(str(path), kind="F", upscale=2, interval=4).upscale == 2
    with pytest.raises(ValueError, match=r"f\.npz: the table's kind is F, the options say S"):
        LUTNet(str(path), kind="S")
    with pytest.raises(ValueError, match="the table's upscale is 2, the options say 4"):
        LUTNet(str(path), upscale=4)


RELEASED = sorted((REPO / "hatast" / "weights" / "srlut").glob("SRLUT-*.npz"))


@pytest.mark.parametrize("table_path", RELEASED, ids=[p.stem for p in RELEASED])
def test_released_table_reproduces_its_model_card(table_path):
    """Each shipped table, run by the fused kernel on Set5, gives the PSNR its card and stage log record (measured
    by the test runner at release), and its metadata names what its file name says."""
    import cv2
    from basicsr.metrics import calculate_psnr

    set5 = need(DATA / "benchmark" / "Set5", "Set5")
    table = load_table(table_path)
    kind, scale = table_path.stem.split("-")[1].split("_SRx")
    assert (table.kind, table.scale) == (kind, int(scale))
    record = json.loads((table_path.parent / "logs" / f"{table_path.stem}_table.json").read_text())
    scores = []
    for hr_path in sorted((set5 / "HR").glob("*.png")):
        lr = cv2.imread(str(set5 / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png"))
        sr = upscale(table, lr)
        hr = cv2.imread(str(hr_path))[: sr.shape[0], : sr.shape[1]]
        scores.append(calculate_psnr(sr, hr, int(scale), test_y_channel=True))
    assert abs(np.mean(scores) - record["metrics"]["Set5"]["psnr"]) < 1e-6
    card = table_path.with_suffix(".md").read_text()
    assert f"| after stage 2 (table fine-tuned) = this file | {record['metrics']['Set5']['psnr']:.2f} /" in card
    from hatast.release import PACKAGE_WEIGHTS, read_manifest
    from hatast.release import card as render

    entry = read_manifest(PACKAGE_WEIGHTS / "manifest.json")[table_path.stem]
    assert card == render(entry)  # the card is the manifest entry's
    own = next(row for row in entry.results if row.label.endswith("this file"))
    assert own.scores["Set5"] == [record["metrics"]["Set5"]["psnr"], record["metrics"]["Set5"]["ssim"]]
