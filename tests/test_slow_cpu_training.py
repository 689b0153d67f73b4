"""The shipped CPU-scale recipe, end to end: it must train past bicubic on Set5 as the README says (slow)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import DATA, REPO, need


@pytest.mark.slow
def test_tiny_hat_cpu_recipe_beats_bicubic_on_set5(tmp_path):
    need(DATA / "train" / "BSDS400", "BSDS400")
    need(DATA / "benchmark" / "Set5", "Set5")
    out = subprocess.run([sys.executable, str(REPO / "hatast" / "train.py"), "-opt",
                          str(REPO / "options" / "train" / "HAT-tiny_SRx4_CPU.yml"), "--data-root", str(DATA)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    psnr = [float(v) for v in re.findall(r"# psnr: ([\d.]+)", out.stderr + out.stdout)]
    assert len(psnr) >= 4
    assert psnr[-1] > 29.0  # bicubic: 28.43 dB (hatast bench)
