"""Helper scripts: the SR-LUT parity report and the release script."""

from __future__ import annotations

import subprocess
import sys

from conftest import DATA, FIXTURES, REPO, need


def test_srlut_parity_report():
    need(FIXTURES / "srlut" / "Model_S_x4_4bit_int8.npy", "SR-LUT authors' S x4 table")
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "srlut_parity.py")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[1] for line in lines[1:6]] == ["yes"] * 5
    assert lines[6].startswith("Set5") and lines[6].split()[2].startswith("29.83")


def test_release_script_rewrites_a_model_card_from_its_stage_logs(tmp_path):
    """``release_srlut.py --cards-only`` trains nothing: it reads the stage results, times the table, measures the
    bicubic row with the same metric and writes the card; a model without finished stages is a clear error."""
    import json

    import torch

    from hatast.archs.srlut_arch import SRLUTNet

    need(DATA / "benchmark" / "Set14" / "HR", "Set5/Set14 benchmark images")
    torch.manual_seed(0)
    SRLUTNet("S", 2).to_table(4).save(tmp_path / "SRLUT-S_SRx2.npz")
    (tmp_path / "logs").mkdir()
    for stage, psnr in (("net", 31.0), ("table", 31.5)):
        metrics = {s: {"psnr": psnr, "ssim": 0.9} for s in ("Set5", "Set14")}
        record = {"metrics": metrics, "minutes": 3.0, "iterations": 10, "batch": 16, "crop": 24, "lr": 0.5}
        (tmp_path / "logs" / f"SRLUT-S_SRx2_{stage}.json").write_text(json.dumps(record))
    command = [sys.executable, str(REPO / "scripts" / "release_srlut.py"), "--data", str(DATA), "--out", str(tmp_path),
               "--cards-only", "--models"]
    out = subprocess.run(command + ["S2"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    card = (tmp_path / "SRLUT-S_SRx2.md").read_text()
    assert "| after stage 2 (table fine-tuned) = this file | 31.50 / 0.9000 | 31.50 / 0.9000 |" in card
    bicubic = next(line for line in card.splitlines() if line.startswith("| bicubic"))
    assert float(bicubic.split("|")[2].split("/")[0]) > 33  # Set5 x2 bicubic is 33.7 dB
    assert " ms median for RGB 320x180 -> 640x360" in card
    assert "| S x2 | 31.00 / 31.00 | 31.50 / 31.50 | +0.50 / +0.50 | - | 3 + 3 |" in out.stdout

    out = subprocess.run(command + ["S3"], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "SRLUT-S_SRx3 has no finished net stage" in out.stderr


def test_mixing_bound_solvers_and_report():
    """The signed solver recovers a mix that extrapolates exactly; the convex one cannot, and finds the best simplex
    point (here the sharper end); on Set5 x4 the report prints bicubic's PSNR and signed >= convex."""
    import numpy as np

    sys.path.insert(0, str(REPO / "scripts"))
    from imlut_mixing_bound import best_convex, best_signed, blocks, unblocks

    rng = np.random.default_rng(0)
    candidates = rng.random((50, 2, 16))
    target = 1.5 * candidates[:, 0] - 0.5 * candidates[:, 1]
    assert np.allclose(best_signed(candidates, target), target)
    convex = best_convex(candidates, target)
    assert np.abs(convex - target).sum() > 0.1
    assert np.allclose(convex, candidates[:, 0])  # nearest simplex point to 1.5 a - 0.5 b is a
    image = rng.random((6, 8))
    assert np.array_equal(unblocks(blocks(image, 2), 3, 4, 2), image)

    need(DATA / "benchmark" / "Set5" / "HR", "Set5 benchmark images")
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "imlut_mixing_bound.py"), "--data", str(DATA),
                          "--scales", "4"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    row = out.stdout.splitlines()[-1].split()
    assert row[0] == "x4" and abs(float(row[1]) - 28.42) < 0.05
    convex, signed = map(float, row[2::2]), map(float, row[3::2])
    assert all(s >= c for c, s in zip(convex, signed))
