"""The `hatast` command: upscale with weights whose settings are read from the file, and the quick-start demo."""

from __future__ import annotations

import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY_HAT, sample_image

from hatast.archs.hat_arch import HAT
from hatast.cli.upscale import main as upscale
from hatast.utils.image import read_image


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    net = HAT(**{**TINY_HAT, "upscale": 3}).eval()
    path = tmp_path / "tiny_x3.pth"
    torch.save({"params_ema": net.state_dict()}, path)
    return path, net


def test_upscale_rgb_matches_network(tmp_path, weights, capsys):
    path, net = weights
    img = sample_image("coffee")[:21, :30]
    cv2.imwrite(str(tmp_path / "in.png"), img)
    assert upscale([str(tmp_path / "in.png"), "-w", str(path), "-o", str(tmp_path / "out")]) == 0
    out = cv2.imread(str(tmp_path / "out" / "in.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (63, 90, 3) and out.dtype == np.uint8
    with torch.no_grad():
        expected = net(read_image(tmp_path / "in.png").tensor())[0].permute(1, 2, 0).clamp(0, 1).numpy()[..., ::-1]
    assert np.abs(out.astype(np.float32) - np.round(expected * 255)).max() <= 1
    assert "HAT x3" in capsys.readouterr().out


def test_upscale_keeps_16_bit_grey_and_alpha(tmp_path, weights):
    path, _ = weights
    grey16 = (np.linspace(0, 65535, 14 * 9).reshape(14, 9)).astype(np.uint16)
    rgba = np.dstack([sample_image("chelsea")[:10, :12], np.full((10, 12), 200, np.uint8)])
    cv2.imwrite(str(tmp_path / "grey16.png"), grey16)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    code = upscale([str(tmp_path / "grey16.png"), str(tmp_path / "rgba.png"), "-w", str(path), "-o",
                    str(tmp_path / "out"), "--tile", "8", "--tile-pad", "4"])
    assert code == 0
    g = cv2.imread(str(tmp_path / "out" / "grey16.png"), cv2.IMREAD_UNCHANGED)
    a = cv2.imread(str(tmp_path / "out" / "rgba.png"), cv2.IMREAD_UNCHANGED)
    assert g.dtype == np.uint16 and g.shape == (42, 27, 3)
    assert a.dtype == np.uint8 and a.shape == (30, 36, 4) and np.all(a[..., 3] == 200)


def test_upscale_errors_are_one_line(tmp_path, weights, capsys):
    path, _ = weights
    (tmp_path / "notes.txt").write_text("hello")
    assert upscale([str(tmp_path / "nope.png"), "-w", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.png'}: no such file or folder"
    torch.save({"params": {"something.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    assert upscale([str(tmp_path / "notes.txt"), "-w", str(tmp_path / "other.pth")]) == 2
    assert "match none of the architectures" in capsys.readouterr().err
    assert upscale([str(tmp_path / "notes.txt"), "-w", str(path), "-o", str(tmp_path / "o")]) == 1
    assert "notes.txt: not a readable image" in capsys.readouterr().err


def test_demo_trains_and_beats_bicubic(tmp_path):
    """From the released tiny HAT, a few iterations on the photos keep it above bicubic on the held-out two."""
    out = subprocess.run([sys.executable, "-m", "hatast.cli.main", "demo", "--iters", "4", "--workdir",
                          str(tmp_path / "demo")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    bicubic = re.search(r"bicubic\s+([\d.]+)\s+([\d.]+)", out.stdout)
    tiny = re.search(r"tiny HAT, HAT-tiny_SRx4_CPU \+ 4 it\.\s+([\d.]+)\s+([\d.]+)", out.stdout)
    assert bicubic and tiny, out.stdout[-2000:]
    assert 20 < float(bicubic.group(1)) < 40 and float(tiny.group(1)) > float(bicubic.group(1))
    assert float(tiny.group(2)) > float(bicubic.group(2))
    assert len(list((tmp_path / "demo" / "results").rglob("*.png"))) == 2


def test_hatast_command_usage():
    out = subprocess.run([sys.executable, "-m", "hatast.cli.main", "bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown command 'bogus'" in out.stderr


@pytest.mark.parametrize("script", ["hatast-train", "hatast-test", "hatast"])
def test_console_scripts_are_installed(script, tmp_path):
    from pathlib import Path

    exe = Path(sys.executable).parent / script
    if not exe.exists():
        pytest.skip(f"{script} is not installed next to {sys.executable} (pip install -e .)")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0 and "usage:" in out.stdout
    assert not any(tmp_path.iterdir())  # --help writes nothing
