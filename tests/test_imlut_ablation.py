"""The IM-LUT ablation runner: each row changes only its own settings, rows keep the widths the README's table was
measured with (whatever the recipe's width), and every row's option file validates."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

from conftest import DATA, REPO, need

sys.path.insert(0, str(REPO / "scripts"))
import imlut_ablation  # noqa: E402
import make_imlut_options  # noqa: E402

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
    for label, width in widths.items():  # a row not at the measured default width says which it has
        assert width == imlut_ablation.NARROW or f"{width[0]} features and {width[1]} hidden layers" in label
    recipe = [width for label, width in widths.items() if "(the recipe now)" in label]
    assert recipe == [(make_imlut_options.NETWORK["num_feat"], make_imlut_options.NETWORK["num_hidden"])]


def test_option_files_validate():
    need(DATA / "train" / "BSDS400", "BSDS400")
    args = Namespace(data=DATA, iters=10)
    for row in imlut_ablation.ROWS:
        validate_options(imlut_ablation.options(row, args), is_train=True, source=row.name)
