"""Helper scripts: the SR-LUT parity report and the release scripts (manifest entries and model cards)."""

from __future__ import annotations

import subprocess
import sys

import pytest
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
    """``release_srlut.py --cards-only`` trains nothing: it reads the stage results, times the table and measures the
    bicubic row with the same metric (once: kept in ``logs/<stem>_release.json``), publishes the entry in the
    manifest of ``--out``'s parent and renders the card from it; a model without finished stages is a clear error."""
    import json

    import torch

    from hatast.archs.srlut_arch import SRLUTNet
    from hatast.release import card, read_manifest
    from hatast.utils.files import file_sha256

    need(DATA / "benchmark" / "Set14" / "HR", "Set5/Set14 benchmark images")
    out = tmp_path / "srlut"
    (out / "logs").mkdir(parents=True)
    torch.manual_seed(0)
    SRLUTNet("S", 2).to_table(4).save(out / "SRLUT-S_SRx2.npz")
    for stage, psnr in (("net", 31.0), ("table", 31.5)):
        metrics = {s: {"psnr": psnr, "ssim": 0.9} for s in ("Set5", "Set14")}
        record = {"metrics": metrics, "minutes": 3.0, "iterations": 10, "batch": 16, "crop": 24, "lr": 0.5}
        (out / "logs" / f"SRLUT-S_SRx2_{stage}.json").write_text(json.dumps(record))
    command = [sys.executable, str(REPO / "scripts" / "release_srlut.py"), "--data", str(DATA), "--out", str(out),
               "--cards-only", "--models"]
    done = subprocess.run(command + ["S2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    entry = read_manifest(tmp_path / "manifest.json")["SRLUT-S_SRx2"]
    text = (out / "SRLUT-S_SRx2.md").read_text()
    assert text == card(entry)
    assert [(f.name, f.sha256) for f in entry.files] == [("SRLUT-S_SRx2.npz", file_sha256(out / "SRLUT-S_SRx2.npz"))]
    assert (entry.family, entry.scale, entry.config["kind"], entry.parameters) == ("srlut", 2, "S", 83521 * 4)
    assert [(s.iterations, s.minutes) for s in entry.stages] == [(10, 3.0), (10, 3.0)]
    assert "| after stage 2 (table fine-tuned) = this file | 31.50 / 0.9000 | 31.50 / 0.9000 |" in text
    bicubic = next(row for row in entry.results if row.label.startswith("bicubic"))
    assert bicubic.scores["Set5"][0] > 33  # Set5 x2 bicubic is 33.7 dB
    assert " ms median for RGB 320x180 -> 640x360" in entry.speed
    assert "| S x2 | 31.00 / 31.00 | 31.50 / 31.50 | +0.50 / +0.50 | - | 3 + 3 |" in done.stdout

    # the stored measurements are rendered again, not re-measured (here: a planted speed)
    stored = out / "logs" / "SRLUT-S_SRx2_release.json"
    measured = json.loads(stored.read_text())
    assert measured["sha256"] == entry.files[0].sha256 and set(measured) >= {"speed_ms", "bicubic"}
    stored.write_text(json.dumps({**measured, "speed_ms": 12.34}))
    done = subprocess.run(command + ["S2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "12.3 ms median" in (out / "SRLUT-S_SRx2.md").read_text()

    done = subprocess.run(command + ["S3"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "SRLUT-S_SRx3 has no finished net stage" in done.stderr
    done = subprocess.run(command[:5] + [str(tmp_path)] + command[6:] + ["S2"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0 and "must be a folder named 'srlut'" in done.stderr


@pytest.mark.parametrize("family, script, extra", [
    ("srlut", "release_srlut.py", ["--data", str(DATA), "--models", "S4", "V4"]),
    ("imlut", "release_imlut.py", ["--data", str(DATA), "--variants", "NL"]),
    ("usrnet", "release_usrnet.py", []),
])
def test_release_scripts_reproduce_the_committed_cards(tmp_path, family, script, extra):
    """``--cards-only`` on a copy of a released family (files and ``logs/``) renders the committed manifest entries
    and cards again from the stored measurements, measuring nothing; USRNet's refuses a record of other files."""
    import shutil

    from hatast.release import PACKAGE_WEIGHTS, read_manifest

    need(DATA / "benchmark" / "Set14" / "HR", "Set5/Set14 benchmark images")
    out = tmp_path / family
    shutil.copytree(PACKAGE_WEIGHTS / family, out, ignore=shutil.ignore_patterns("*.md", "*.log"))
    command = [sys.executable, str(REPO / "scripts" / script), "--out", str(out), "--cards-only", *extra]
    if family == "imlut":
        command += ["--work", str(tmp_path / "work")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    made, committed = read_manifest(tmp_path / "manifest.json"), read_manifest(PACKAGE_WEIGHTS / "manifest.json")
    assert made and all(made[name] == committed[name] for name in made)
    for name in made:
        assert (out / f"{name}.md").read_text() == (PACKAGE_WEIGHTS / family / f"{name}.md").read_text()
    assert not (tmp_path / "work").exists()  # nothing was measured: no benchmark LR prepared
    if family == "usrnet":
        (out / "USRNet-tiny_CPU.pth").write_bytes(b"other")
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode != 0 and "records other files" in done.stderr


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
