"""The ablation runner: its rows are matched, its option files validate, its summary computes the seed spread."""

from __future__ import annotations

import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
from conftest import DATA, REPO, need

sys.path.insert(0, str(REPO / "scripts"))
import ast_ablation  # noqa: E402

from hatast.options import validate_options  # noqa: E402


def test_rows_are_matched_and_cover_the_ablation():
    rows = ast_ablation.rows_for([4, 2])
    x4 = [(r.label, r.overlap, r.attention, r.ffn, r.seed) for r in rows if r.scale == 4]
    assert ("baseline (overlap 0.5)", 0.5, "softmax", "mlp", 0) in x4
    for label, attention, ffn in [("baseline", "softmax", "mlp"), ("+ASSA", "assa", "mlp"),
                                  ("+FRFN", "softmax", "frfn"), ("+ASSA+FRFN", "assa", "frfn")]:
        assert (label, 0.75, attention, ffn, 0) in x4
    assert ("baseline", 0.75, "softmax", "mlp", 1) in x4 and ("+ASSA+FRFN", 0.75, "assa", "frfn", 1) in x4
    assert len({r.name for r in rows}) == len(rows) == 9
    args = Namespace(data=Path("/data"), iters=100, batch=8, patch=24, lr=5e-4)
    budgets = set()
    for row in rows:
        train = ast_ablation.option_files(row, args)
        t, d = train["train"], train["datasets"]["train"]
        budgets.add((t["total_iter"], d["batch_size_per_gpu"], d["gt_size"] // row.scale, t["optim_g"]["lr"],
                     tuple(t["scheduler"]["milestones"])))
    assert len(budgets) == 1  # every row trains under the same budget


def test_option_files_validate(tmp_path):
    need(DATA / "train" / "BSDS400", "BSDS400")
    args = Namespace(data=DATA, iters=10, batch=8, patch=24, lr=5e-4)
    for row in ast_ablation.rows_for([4, 2]):
        validate_options(ast_ablation.option_files(row, args), is_train=True, source=row.name)


def test_noise_summary():
    def result(label, seed, set5, set14):
        return {"row": {"scale": 4, "label": label, "overlap": 0.75, "seed": seed},
                "metrics": {"Set5": {"psnr": set5}, "Set14": {"psnr": set14}}}

    lines = ast_ablation.noise_summary([result("baseline", 0, 29.0, 26.0), result("baseline", 1, 29.3, 25.9),
                                        result("+ASSA", 0, 29.1, 26.1)])
    assert lines == ["- Seed spread of baseline (x4, overlap 0.75) on Set5: 0.30 dB over 2 seeds.",
                     "- Seed spread of baseline (x4, overlap 0.75) on Set14: 0.10 dB over 2 seeds."]


@pytest.mark.slow
def test_runner_end_to_end(tmp_path):
    need(DATA / "train" / "BSDS400", "BSDS400")
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "ast_ablation.py"), "--data", str(DATA), "--out",
                          str(tmp_path), "--iters", "2", "--patch", "8", "--batch", "2"],
                         capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    table = (tmp_path / "ablation.md").read_text()
    assert table.count("| x4 |") == 7 and "Seed spread" in table
    assert (tmp_path / "crops.png").stat().st_size > 10000
