"""Every option problem stops `hatast train` / `hatast test` before any work, as one line naming the file and the key
path, exit status 2, with the option file untouched; values BasicSR would have meant are accepted and converted."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import file_hashes, single_error_line, write_options

from hatast import engine
from hatast.options import build_parser, read_options


def _edit(opt: dict, path: str, value=None, rename: str | None = None, delete: bool = False) -> None:
    *parents, leaf = path.split(":")
    node = opt
    for key in parents:
        node = node[key]
    if delete:
        del node[leaf]
    elif rename:
        node[rename] = node.pop(leaf)
    else:
        node[leaf] = value


def _run(tmp_path: Path, folders, capsys, edits=(), argv=(), train: bool = True) -> tuple[int, str, Path]:
    file = write_options(tmp_path / "o.yml", folders)
    opt = yaml.safe_load(file.read_text())
    for edit in edits:
        _edit(opt, **edit)
    file.write_text(yaml.safe_dump(opt, sort_keys=False))
    before = file_hashes(file, *folders.values())
    code = engine.run_cli(engine.train if train else engine.test, ["-opt", str(file), *argv])
    captured = capsys.readouterr()
    assert file_hashes(file, *folders.values()) == before  # no input changed
    assert not (tmp_path / "experiments").exists() and not (Path.cwd() / "experiments" / "tiny_hat_test").exists()
    return code, captured.err, file


MISSPELT = [
    ("datasets:train:use_hflip", "use_hfilp", "datasets:train: BicubicDownsampleDataset has no option 'use_hfilp' "
     "(did you mean 'use_hflip'?)"),
    ("logger:save_checkpoint_freq", "save_checkpont_freq",
     "logger: unknown option 'save_checkpont_freq' (did you mean 'save_checkpoint_freq'?)"),
    ("manual_seed", "manual_sed", "unknown option 'manual_sed' (did you mean 'manual_seed'?)"),
    ("train:scheduler:milestones", "milstones",
     "train:scheduler: MultiStepLR has no option 'milstones' (did you mean 'milestones'?)"),
    ("train:optim_g:weight_decay", "weight_decya",
     "train:optim_g: Adam has no option 'weight_decya' (did you mean 'weight_decay'?)"),
    ("val:metrics:psnr:crop_border", "crop_boder",
     "val:metrics:psnr: calculate_psnr has no option 'crop_boder' (did you mean 'crop_border'?)"),
    ("network_g:window_size", "windw_size", "network_g: HAT has no option 'windw_size' (did you mean 'window_size'?)"),
]


@pytest.mark.parametrize("path,wrong,message", MISSPELT, ids=[m[1] for m in MISSPELT])
def test_misspelt_keys_are_refused_with_the_nearest_key(tmp_path, image_folders, capsys, monkeypatch, path, wrong,
                                                        message):
    monkeypatch.chdir(tmp_path)
    code, err, file = _run(tmp_path, image_folders, capsys, [dict(path=path, rename=wrong)])
    assert code == 2
    single_error_line(err, f"{file}: {message}")


BAD_VALUES = [
    ("train:optim_g:lr", "abc", "train:optim_g:lr: expected a number > 0, got the text 'abc'"),
    ("train:optim_g:lr", -1e-4, "train:optim_g:lr: expected a number > 0, got -0.0001"),
    ("train:ema_decay", 1.5, "train:ema_decay: expected a number >= 0 and < 1, got 1.5"),
    ("datasets:train:batch_size_per_gpu", 0, "datasets:train:batch_size_per_gpu: expected a whole number >= 1, got 0"),
    ("datasets:train:batch_size_per_gpu", -2, "batch_size_per_gpu: expected a whole number >= 1, got -2"),
    ("datasets:train:batch_size_per_gpu", 2.5, "batch_size_per_gpu: expected a whole number >= 1, got 2.5"),
    ("datasets:train:gt_size", 33, "datasets:train:gt_size: 33 is not a multiple of the scale 2"),
    ("train:pixel_opt:type", "L1loss", "train:pixel_opt:type: unknown loss type 'L1loss' (did you mean 'L1Loss'?)"),
    ("train:optim_g:type", "adam", "train:optim_g:type: unknown optimizer type 'adam' (did you mean 'Adam'?)"),
    ("train:scheduler:type", "CosineAnnealingLR",
     "unknown scheduler type 'CosineAnnealingLR' (did you mean 'CosineAnnealingRestartLR'?)"),
    ("val:metrics:psnr:type", "calculate_PSNR",
     "unknown metric type 'calculate_PSNR' (did you mean 'calculate_psnr'?)"),
    ("val:metrics:psnr:test_y_channel", "yes please", "test_y_channel: expected true or false, got the text"),
    ("train:optim_g:betas", [0.9], "train:optim_g:betas: expected a list of 2 values"),
    ("datasets:val:type", "PairedImageDatset",
     "datasets:val:type: unknown dataset type 'PairedImageDatset' (did you mean 'PairedImageDataset'?)"),
    ("datasets:train:type", "SingleImageDataset", "SingleImageDataset gives no ground truth"),
    ("datasets:train:prefetch_mode", "gpu", "datasets:train:prefetch_mode: unknown prefetch_mode 'gpu'"),
    ("val:val_freq", "often", "val:val_freq: expected a whole number >= 1, got the text 'often'"),
    ("model_type", "ESRGANModel", "model_type: ESRGANModel is a BasicSR model whose options hatast does not check"),
    ("network_g:depths", "two", "network_g:depths: expected a list of values"),
    ("scale", 0, "scale: expected a number >= 1, got 0"),
    ("scale", 2.5, "scale is 2.5; only arbitrary-scale models (IM-LUT) take a non-integer scale"),
    ("train:total_iter", None, "train:total_iter: expected a whole number >= 1, got nothing (~)"),
]


@pytest.mark.parametrize("path,value,message", BAD_VALUES, ids=[f"{p}={v}" for p, v, _ in BAD_VALUES])
def test_bad_values_are_refused_in_one_line(tmp_path, image_folders, capsys, monkeypatch, path, value, message):
    monkeypatch.chdir(tmp_path)
    code, err, file = _run(tmp_path, image_folders, capsys, [dict(path=path, value=value)])
    assert code == 2
    single_error_line(err, f"{file}: ", message)


def test_missing_required_keys(tmp_path, image_folders, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err, file = _run(tmp_path, image_folders, capsys, [dict(path="train:scheduler", delete=True)])
    assert code == 2
    single_error_line(err, f"{file}: train: missing 'scheduler'")
    code, err, file = _run(tmp_path, image_folders, capsys, [dict(path="train:pixel_opt", delete=True)])
    single_error_line(err, "train: needs a loss (pixel_opt or perceptual_opt)")


def test_every_problem_gets_its_own_line(tmp_path, image_folders, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err, file = _run(tmp_path, image_folders, capsys, [
        dict(path="train:optim_g:lr", value="abc"), dict(path="manual_seed", rename="manual_sed"),
        dict(path="datasets:train:batch_size_per_gpu", value=0)])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 3 and all(line.startswith(f"error: {file}: ") for line in lines)


@pytest.mark.parametrize("override,message", [
    ("train:total_itr=1", "train: unknown option 'total_itr' (did you mean 'total_iter'?) "
                          "(set by --force_yml train:total_itr=1)"),
    ("train:optim_g:lr=abc", "train:optim_g:lr: expected a number > 0, got the text 'abc' "
                             "(set by --force_yml train:optim_g:lr=abc)"),
    ("trian:total_iter=3", "--force_yml 'trian:total_iter=3': 'trian' is not a section of the options "
                           "(did you mean 'train'?)"),
    ("train:total_iter=[1", "--force_yml train:total_iter=[1: YAML syntax error at line 1"),
    ("train:total_iter", "--force_yml 'train:total_iter': expected KEY:KEY=VALUE"),
])
def test_force_yml_overrides_are_checked_like_the_file(tmp_path, image_folders, capsys, monkeypatch, override,
                                                       message):
    monkeypatch.chdir(tmp_path)
    code, err, _ = _run(tmp_path, image_folders, capsys, argv=["--force_yml", override])
    assert code == 2
    single_error_line(err, message)


def test_numbers_written_as_yaml_1_1_text_are_what_basicsr_meant(tmp_path, image_folders, monkeypatch):
    """`lr: 5e-4` is the text '5e-4' to YAML 1.1 (BasicSR's loader): hatast converts it, and a quoted number too."""
    monkeypatch.chdir(tmp_path)
    file = write_options(tmp_path / "o.yml", image_folders)
    text = file.read_text().replace("lr: 0.0002", "lr: 5e-4").replace("ema_decay: 0.999", 'ema_decay: "0.99"')
    file.write_text(text.replace("total_iter: 6", "total_iter: 6e0"))
    args = build_parser(True).parse_args(["-opt", str(file), "--force_yml", "val:val_freq=1e1"])
    opt = read_options(args, is_train=True)
    assert opt["train"]["optim_g"]["lr"] == 5e-4 and isinstance(opt["train"]["optim_g"]["lr"], float)
    assert opt["train"]["ema_decay"] == 0.99 and opt["train"]["total_iter"] == 6
    assert opt["val"]["val_freq"] == 10 and isinstance(opt["val"]["val_freq"], int)


def test_check_flag_validates_without_running(tmp_path, image_folders, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err, file = _run(tmp_path, image_folders, capsys, argv=["--check"])
    assert code == 0 and err == ""


def test_a_misspelt_key_no_longer_runs_a_whole_training(tmp_path, image_folders, capsys, monkeypatch):
    """Before: `crop_boder` trained to the end, then crashed at validation. Now nothing starts."""
    monkeypatch.chdir(tmp_path)
    code, err, _ = _run(tmp_path, image_folders, capsys, [dict(path="val:metrics:ssim:crop_border",
                                                                rename="crop_boder")])
    assert code == 2 and "calculate_ssim has no option 'crop_boder'" in err
    assert not (tmp_path / "experiments").exists()
