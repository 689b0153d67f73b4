"""The IM-LUT ablation runner: each row changes only its own settings, rows keep the widths the README's table was
measured with (whatever the recipe's width), and every row's option file validates."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

from conftest import DATA, REPO, need

sys.path.insert(0, str(REPO / "scripts"))
import imlut_ablation  # noqa: E402

from hatast.options import validate_options  # noqa: E402


def test_rows_differ_only_in_their_settings_and_keep_their_measured_widths():
    args = Namespace(data=Path("/data"), iters=100)
    rows = imlut_ablation.ROWS
    assert len({r.name for r in rows}) == len(rows)
    budgets, widths = set(), {}
    for row in rows:
        opt = imlut_ablation.options(row, args)
        net, train = opt["network_g"], opt["train"]
        assert (net["normalise"], net["refiner_rotations"], opt["imlut"]["guide"]["lambda"], opt["manual_seed"]) == (
            row.normalise, row.refiner_rotations, row.guide, row.seed)
        widths[row.label] = (net["num_feat"], net["num_hidden"])
        budgets.add((train["total_iter"], tuple(train["scheduler"]["milestones"])))
    assert budgets == {(100, (50, 75, 90))}
    wide = [label for label, width in widths.items() if width == (64, 4)]
    assert len(wide) == 1 and "64 features" in wide[0]
    assert all(width == imlut_ablation.NARROW for label, width in widths.items() if label not in wide)


def test_option_files_validate():
    need(DATA / "train" / "BSDS400", "BSDS400")
    args = Namespace(data=DATA, iters=10)
    for row in imlut_ablation.ROWS:
        validate_options(imlut_ablation.options(row, args), is_train=True, source=row.name)
