"""The shipped option files: generated ones are up to date, and every file passes validation given its data."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import REPO, populate_datasets

from hatast.archs.imlut_arch import IMNet
from hatast.lut import LUTTable, receptive_field
from hatast.lut.lattice import levels
from hatast.options import OptionsError, expand_env, load_option_file, validate_options

INTERVAL = {"V": 0, "F": 4, "S": 4}

OPTION_FILES = sorted((REPO / "options").rglob("*.yml"))


@pytest.mark.parametrize("script", ["make_hat_options.py", "make_srlut_options.py", "make_imlut_options.py"])
def test_generated_options_are_up_to_date(script):
    out = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--check"], capture_output=True, text=True)
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
    populate_datasets(opt)
    opt.get("path", {})["pretrain_network_g"] = None  # weights are not part of the repository
    for dopt in opt["datasets"].values():  # nor is USRNet's benchmark kernel file (--check reads it): a spec stands in
        if "kernels_12.mat" in str(dopt.get("kernel", "")):
            dopt["kernel"] = "gaussian:1.6"
    if opt["network_g"]["type"] == "LUTNet":  # nor are tables: stand in one of the kind the file names
        kind, scale = re.search(r"SRLUT-([VFS])_SRx(\d)", path.name).groups()
        rows = levels(INTERVAL[kind]) ** receptive_field(kind).size
        table = LUTTable.srlut(kind, int(scale), INTERVAL[kind], np.zeros((rows, int(scale) ** 2), np.int8))
        opt["network_g"]["lut_path"] = str(table.save(tmp_path / "table.npz"))
    if opt["network_g"]["type"] == "IMLUT":  # the tables stage 1 writes: a small net's stand in
        variant = re.search(r"IMLUT-([NLCZ]+)_", path.name).group(1)
        net = IMNet(variant, num_feat=4, num_hidden=0, refiner_rotations=1)
        opt["network_g"]["lut_path"] = str(net.to_tables(interval=4).save(tmp_path / "imlut.npz"))
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
    lines = out.stderr.strip().splitlines()
    assert lines[0] == (f"error: {REPO / 'options/train/train_HAT-S_SRx2.yml'}: datasets:train:dataroot_gt: folder "
                        f"{tmp_path / 'DF2K/DF2K_HR_sub'} does not exist")
    # one line per missing folder (train HR/LR, the two validation sets' HR/LR), nothing else
    assert len(lines) == 6 and all(line.endswith("does not exist") and "datasets:" in line for line in lines)


def test_validation_rejects_a_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HATAST_DATA", str(tmp_path))
    opt = expand_env(load_option_file(REPO / "options/test/HAT_SRx3.yml"))
    with pytest.raises(OptionsError, match="datasets:test_1:dataroot_gt: folder .*Set5/HR does not exist"):
        validate_options(opt, is_train=False, source="HAT_SRx3.yml")


def test_ast_experiment_recipe():
    opt = yaml.safe_load((REPO / "options/train/HAT-S_AST_SRx4.yml").read_text())
    net = opt["network_g"]
    assert net["type"] == "HATAST" and net["overlap_ratio"] == 0.75 and net["embed_dim"] == 144
    assert net["ocab_attention"] == "assa" and net["ocab_ffn"] == "frfn" and net["key_position_bias"] is True
    assert opt["model_type"] == "HATModel" and opt["datasets"]["train"]["gt_size"] == 256
    assert opt["datasets"]["train"]["batch_size_per_gpu"] == 4 and opt["train"]["ema_decay"] == 0.999
    assert opt["train"]["optim_g"]["lr"] == 2e-4 and opt["train"]["optim_g"]["betas"] == [0.9, 0.99]
    assert opt["train"]["scheduler"]["milestones"] == [250000, 400000, 450000, 475000]
    assert opt["train"]["total_iter"] == 500000 and opt["train"]["pixel_opt"]["type"] == "L1Loss"
    assert opt["path"]["pretrain_network_g"].endswith("HAT-S_SRx4_AST-init.pth") and opt["path"]["strict_load_g"]


@pytest.mark.parametrize("missing", ["dataset", "checkpoint"])
def test_ast_experiment_without_inputs_fails_with_one_line(tmp_path, missing):
    """`python hatast/train.py -opt options/train/HAT-S_AST_SRx4.yml` names what is absent, in one line."""
    if missing == "checkpoint":  # data present, converted weights absent
        for sub in ("DF2K/DF2K_HR_sub", "DF2K/DF2K_bicx4_sub", "Set5/HR", "Set5/LR_bicubic/X4", "Set14/HR",
                    "Set14/LR_bicubic/X4"):
            (tmp_path / sub).mkdir(parents=True)
    out = subprocess.run([sys.executable, str(REPO / "hatast" / "train.py"), "-opt",
                          str(REPO / "options/train/HAT-S_AST_SRx4.yml"), "--data-root", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and all(line.startswith("error: ") for line in lines)
    if missing == "dataset":  # one line per absent input: 6 dataset folders and the checkpoint
        assert "datasets:train:dataroot_gt: folder" in lines[0] and "DF2K_HR_sub does not exist" in lines[0]
        assert len(lines) == 7 and "HAT-S_SRx4_AST-init.pth does not exist" in lines[-1]
    else:
        assert len(lines) == 1
        assert "path:pretrain_network_g: file" in lines[0] and "HAT-S_SRx4_AST-init.pth does not exist" in lines[0]


def test_ast_experiment_starts_from_a_converted_checkpoint(tmp_path):
    """With data and the converted checkpoint in place the published option file validates and loads strictly."""
    import torch

    from hatast.archs.hat_arch import build_hat
    from hatast.archs.hat_ast_arch import convert_hat_to_ast
    from hatast.options import check_network_options

    state, _ = convert_hat_to_ast(build_hat("HAT-S", 4).state_dict())
    opt = yaml.safe_load((REPO / "options/train/HAT-S_AST_SRx4.yml").read_text())
    net = check_network_options(opt["network_g"], "network_g")
    from hatast.utils.checkpoint import check_fit

    assert check_fit(net, state, strict=True) == []
    assert torch.is_tensor(state["layers.0.residual_group.overlap_attn.key_position_bias"])


def test_srlut_recipes():
    for kind in "VFS":
        for scale in (2, 3, 4):
            opt = yaml.safe_load((REPO / f"options/train/train_SRLUT-{kind}_SRx{scale}.yml").read_text())
            train = opt["datasets"]["train"]
            assert train["gt_size"] == 48 * scale and train["batch_size_per_gpu"] == 32
            assert opt["train"]["optim_g"]["lr"] == 1e-4 and opt["train"]["total_iter"] == 200000
            assert opt["train"]["pixel_opt"]["type"] == "MSELoss" and opt["model_type"] == "SRLUTModel"
            assert opt["network_g"] == {"type": "SRLUTNet", "kind": kind, "upscale": scale, "num_feat": 64,
                                        "num_hidden": 4}
            assert opt["lut"]["interval"] == INTERVAL[kind]
    stage2 = yaml.safe_load((REPO / "options/train/SRLUT-S_SRx4_CPU_table.yml").read_text())
    assert stage2["network_g"] == {"type": "LUTNet",
                                   "lut_path": "experiments/SRLUT-S_SRx4_CPU_net/models/net_g_latest.npz"}
