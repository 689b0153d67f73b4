"""Helper scripts: DF2K preparation pairs HR and LR sub-images by name and size; the SR-LUT parity report."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
from conftest import FIXTURES, REPO, need, sample_image


def test_prepare_df2k_cuts_paired_subimages(tmp_path):
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    # 720 x 980: crops start at rows 0, 240 and columns 0, 240, 480 (the last 20 columns are too few for another)
    cv2.imwrite(str(hr_dir / "0001.png"), np.tile(sample_image("astronaut"), (2, 2, 1))[:720, :980])
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "prepare_df2k.py"), "--hr", str(hr_dir), "--out",
                          str(tmp_path / "DF2K"), "--scales", "2", "4", "--workers", "1"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    hr = sorted((tmp_path / "DF2K" / "DF2K_HR_sub").glob("*.png"))
    assert [p.name for p in hr] == [f"0001_s00{i}.png" for i in range(1, 7)]
    for scale in (2, 4):
        for path in hr:
            lr = cv2.imread(str(tmp_path / "DF2K" / f"DF2K_bicx{scale}_sub" / path.name))
            assert lr.shape == (480 // scale, 480 // scale, 3)


def test_srlut_parity_report():
    need(FIXTURES / "srlut" / "Model_S_x4_4bit_int8.npy", "SR-LUT authors' S x4 table")
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "srlut_parity.py")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[1] for line in lines[1:6]] == ["yes"] * 5
    assert lines[6].startswith("Set5") and lines[6].split()[2].startswith("29.83")
