"""The shipped option files: generated ones are up to date, and every file passes validation given its data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from hatast.options import OptionsError, expand_env, load_option_file, validate_options

OPTION_FILES = sorted((REPO / "options").rglob("*.yml"))


def test_generated_options_are_up_to_date():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "make_hat_options.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_variant_and_scale_has_train_and_test_options():
    names = {p.relative_to(REPO / "options").as_posix() for p in OPTION_FILES}
    for variant in ("HAT-S", "HAT", "HAT-L"):
        for scale in (2, 3, 4):
            assert f"train/train_{variant}_SRx{scale}.yml" in names
            assert f"test/{variant}_SRx{scale}.yml" in names


@pytest.mark.parametrize("path", OPTION_FILES, ids=lambda p: p.name)
def test_option_file_validates_when_its_data_exists(path, tmp_path, monkeypatch):
    monkeypatch.setenv("HATAST_DATA", str(tmp_path))
    opt = expand_env(load_option_file(path))
    for dopt in opt["datasets"].values():
        for key in ("dataroot_gt", "dataroot_lq"):
            if dopt.get(key):
                Path(dopt[key]).mkdir(parents=True, exist_ok=True)
    opt.get("path", {})["pretrain_network_g"] = None  # weights are not part of the repository
    validate_options(opt, is_train=path.parent.name == "train", source=path.name)


def test_recipe_numbers():
    opt = yaml.safe_load((REPO / "options/train/train_HAT-S_SRx4.yml").read_text())
    assert opt["train"]["optim_g"]["lr"] == 1e-4 and opt["train"]["total_iter"] == 250000
    assert opt["train"]["scheduler"]["milestones"] == [125000, 200000, 225000, 240000]
    assert opt["datasets"]["train"]["gt_size"] == 256 and opt["datasets"]["train"]["batch_size_per_gpu"] == 4
    assert opt["path"]["strict_load_g"] is False and "SRx2" in opt["path"]["pretrain_network_g"]
    opt = yaml.safe_load((REPO / "options/train/train_HAT-L_SRx2.yml").read_text())
    assert opt["network_g"]["depths"] == [6] * 12 and opt["train"]["total_iter"] == 500000
    assert opt["train"]["scheduler"]["milestones"] == [250000, 400000, 450000, 475000]
    assert opt["train"]["ema_decay"] == 0.999 and opt["train"]["pixel_opt"]["type"] == "L1Loss"


def test_full_recipe_without_data_fails_with_one_line(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "hatast" / "train.py"), "-opt",
                          str(REPO / "options/train/train_HAT-S_SRx2.yml"), "--data-root", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: {REPO / 'options/train/train_HAT-S_SRx2.yml'}: datasets:train:dataroot_gt: folder "
        f"{tmp_path / 'DF2K/DF2K_HR_sub'} does not exist"]


def test_validation_rejects_a_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HATAST_DATA", str(tmp_path))
    opt = expand_env(load_option_file(REPO / "options/test/HAT_SRx3.yml"))
    with pytest.raises(OptionsError, match="datasets:test_1:dataroot_gt: folder .*Set5/HR does not exist"):
        validate_options(opt, is_train=False, source="HAT_SRx3.yml")
