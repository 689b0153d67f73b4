"""Data that would give wrong numbers or a crash deep inside BasicSR stops `hatast test` / `hatast train` before any
work: one line naming the first offending file and the counts, exit status 2, no input changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_HAT, file_hashes, single_error_line, write_image_folder, write_options

from hatast import engine
from hatast.archs.hat_arch import HAT
from hatast.data.degradations import bicubic_downsample


def _lr(hr: np.ndarray, scale: int) -> np.ndarray:
    return bicubic_downsample(hr, scale)


@pytest.fixture
def benchmark(tmp_path):
    """A Set5-style benchmark folder: HR and LR_bicubic/X2 named `<name>x2.png`, plus x2 weights."""
    hr = write_image_folder(tmp_path / "bench" / "HR", crops=3, size=24)
    lr = tmp_path / "bench" / "LR_bicubic" / "X2"
    lr.mkdir(parents=True)
    for path in sorted(hr.iterdir()):
        cv2.imwrite(str(lr / f"{path.stem}x2.png"), _lr(cv2.imread(str(path)), 2))
    torch.manual_seed(0)
    torch.save({"params_ema": HAT(**TINY_HAT).state_dict()}, tmp_path / "w.pth")
    return {"hr": hr, "lr": lr, "weights": tmp_path / "w.pth"}


def _test_options(tmp_path: Path, bench: dict, scale: int = 2, **dataset) -> Path:
    opt = {
        "name": "safety_test", "model_type": "HATModel", "scale": scale, "num_gpu": 0,
        "datasets": {"test_1": {"name": "bench", "type": "PairedImageDataset", "dataroot_gt": str(bench["hr"]),
                                "dataroot_lq": str(bench["lr"]), "filename_tmpl": "{}x2",
                                "io_backend": {"type": "disk"}, **dataset}},
        "network_g": {"type": "HAT", **{**TINY_HAT, "upscale": scale}},
        "path": {"pretrain_network_g": str(bench["weights"]) if scale == 2 else None, "strict_load_g": True},
        "val": {"save_img": False, "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": scale,
                                                         "test_y_channel": True}}},
    }
    file = tmp_path / "test.yml"
    file.write_text(yaml.safe_dump(opt, sort_keys=False))
    return file


def _test(tmp_path, bench, capsys, *fragments, scale: int = 2, **dataset) -> str:
    file = _test_options(tmp_path, bench, scale, **dataset)
    before = file_hashes(tmp_path / "bench", file, bench["weights"])
    code = engine.run_cli(engine.test, ["-opt", str(file)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert file_hashes(tmp_path / "bench", file, bench["weights"]) == before
    assert not (tmp_path / "results").exists()  # nothing ran
    return single_error_line(err, f"{file}: datasets:test_1: ", *fragments)


def test_well_formed_benchmark_runs(tmp_path, benchmark, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = engine.test(["-opt", str(_test_options(tmp_path, benchmark))])
    assert 0 < results["bench"]["psnr"] < 100  # random weights: the point is that it runs


def test_empty_hr_folder(tmp_path, benchmark, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in benchmark["hr"].iterdir():
        path.unlink()
    _test(tmp_path, benchmark, capsys, f"dataroot_gt: {benchmark['hr']} has no images")


def test_two_empty_folders(tmp_path, benchmark, capsys, monkeypatch):
    """BasicSR: UnboundLocalError at the end of validation."""
    monkeypatch.chdir(tmp_path)
    for folder in ("hr", "lr"):
        shutil.rmtree(benchmark[folder])
        benchmark[folder].mkdir()
    _test(tmp_path, benchmark, capsys, "are both empty")


def test_names_that_do_not_pair(tmp_path, benchmark, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (benchmark["lr"] / "img001x2.png").rename(benchmark["lr"] / "img001_x2.png")
    _test(tmp_path, benchmark, capsys, "HR img001.png has no LR partner img001x2.png", "filename_tmpl '{}x2'",
          "3 HR, 3 LR images")


def test_counts_that_differ(tmp_path, benchmark, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(benchmark["lr"] / "img000x2.png", benchmark["lr"] / "extrax2.png")
    _test(tmp_path, benchmark, capsys, "LR extrax2.png", "has no HR partner (3 HR, 4 LR images)")
    (benchmark["hr"] / "img002.png").unlink()
    (benchmark["lr"] / "extrax2.png").unlink()
    _test(tmp_path, benchmark, capsys, "LR img002x2.png", "has no HR partner (2 HR, 3 LR images)")


def test_a_file_that_is_not_an_image(tmp_path, benchmark, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (benchmark["hr"] / "notes.txt").write_text("readme")
    _test(tmp_path, benchmark, capsys, "dataroot_gt: notes.txt in", "is not an image")


def test_lr_half_the_expected_size(tmp_path, benchmark, capsys, monkeypatch):
    """Before: exit 0 and PSNR 12.61 (BasicSR crops the GT to LR x scale)."""
    monkeypatch.chdir(tmp_path)
    for path in benchmark["hr"].iterdir():
        cv2.imwrite(str(benchmark["lr"] / f"{path.stem}x2.png"), _lr(cv2.imread(str(path)), 4))
    _test(tmp_path, benchmark, capsys, "LR img000x2.png is 6x6 but HR img000.png is 24x24: at scale 2 the LR must be "
          "12x12 (these look like x4 data; the options say scale 2); 3 of 3 pairs are wrong")


def test_lr_too_large_for_the_scale(tmp_path, benchmark, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in benchmark["hr"].iterdir():
        shutil.copy(path, benchmark["lr"] / f"{path.stem}x2.png")
    _test(tmp_path, benchmark, capsys, "LR img000x2.png is 24x24 but HR img000.png is 24x24",
          "the LR is too large for this scale")


def test_validation_data_of_another_scale_than_the_model(tmp_path, image_folders, capsys, monkeypatch):
    """Training at scale 3 while validation points at x2 data: refused before the first iteration."""
    monkeypatch.chdir(tmp_path)
    file = write_options(tmp_path / "o.yml", image_folders, scale=3,
                         network_g={"type": "HAT", **{**TINY_HAT, "upscale": 3}},
                         datasets={"train": {**yaml.safe_load(write_options(tmp_path / "x.yml", image_folders)
                                                              .read_text())["datasets"]["train"], "gt_size": 30},
                                   "val": {"name": "tiny_val", "type": "PairedImageDataset",
                                           "dataroot_gt": str(image_folders["val_hr"]),
                                           "dataroot_lq": str(image_folders["val_lr"]),
                                           "io_backend": {"type": "disk"}}})
    code = engine.run_cli(engine.train, ["-opt", str(file)])
    assert code == 2
    single_error_line(capsys.readouterr().err, "datasets:val: LR img010.png is 12x12 but HR img010.png is 24x24",
                      "(these look like x2 data; the options say scale 3)")
    assert not (tmp_path / "experiments").exists()


def test_training_images_smaller_than_the_crop(tmp_path, image_folders, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image_folder(image_folders["train"], crops=1, size=20, start=50)
    file = write_options(tmp_path / "o.yml", image_folders)
    code = engine.run_cli(engine.train, ["-opt", str(file)])
    assert code == 2
    single_error_line(capsys.readouterr().err, "datasets:train: dataroot_gt: img050.png is 20x20, smaller than the "
                      "32x32 training crop (1 of 7 images are too small)")


def test_meta_info_file_naming_a_missing_image(tmp_path, benchmark, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = tmp_path / "meta.txt"
    meta.write_text("img000.png (24,24,3)\nimg009.png (24,24,3)\n")
    _test(tmp_path, benchmark, capsys, "dataroot_gt: img009.png, listed in meta_info_file, is not in",
          meta_info_file=str(meta))


def test_lmdb_sets_whose_keys_do_not_pair(tmp_path, benchmark, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gt, lq = tmp_path / "gt.lmdb", tmp_path / "lq.lmdb"
    for folder, lines in ((gt, ["a.png (24,24,3) 1", "b.png (24,24,3) 1"]), (lq, ["a.png (12,12,3) 1"])):
        folder.mkdir()
        (folder / "meta_info.txt").write_text("\n".join(lines) + "\n")
    bench = dict(benchmark, hr=gt, lr=lq)
    _test(tmp_path, bench, capsys, "the LMDBs do not pair: HR key 'b' has no partner (2 HR, 1 LR keys)",
          io_backend={"type": "lmdb"})
    (lq / "meta_info.txt").write_text("a.png (12,12,3) 1\nb.png (8,8,3) 1\n")
    _test(tmp_path, bench, capsys, "LR b is 8x8 but HR b is 24x24: at scale 2 the LR must be 12x12",
          io_backend={"type": "lmdb"})


@pytest.mark.parametrize("name", ["Set5", "Set14"])
def test_the_standard_benchmarks_pass_and_other_scales_do_not(name):
    """The checks accept the shipped MATLAB-bicubic LR at every scale and name the data's scale when it is wrong."""
    from conftest import DATA, need

    from hatast.data.checks import check_paired

    root = need(DATA / "benchmark" / name, f"benchmark {name}")
    for scale in (2, 3, 4):
        dopt = {"dataroot_gt": str(root / "HR"), "dataroot_lq": str(root / "LR_bicubic" / f"X{scale}"),
                "filename_tmpl": f"{{}}x{scale}", "io_backend": {"type": "disk"}}
        assert check_paired(dopt, scale, "test") is None
        other = 3 if scale == 2 else 2
        assert f"(these look like x{scale} data; the options say scale {other})" in check_paired(dopt, other, "test")


def test_non_integer_scales_use_the_benchmark_pairing_rule(tmp_path):
    """IM-LUT options (scale 2.5): LR = the HR mod-cropped to a multiple of 5, divided by 2.5, the size `hatast prepare
    benchmark` writes and the benchmark pairing accepts; MATLAB's ceil on the uncropped HR is one pixel too large."""
    from hatast.data.checks import check_paired

    for folder in ("HR", "LR"):
        (tmp_path / folder).mkdir()
    cv2.imwrite(str(tmp_path / "HR" / "a.png"), np.zeros((101, 77, 3), np.uint8))
    dopt = {"dataroot_gt": str(tmp_path / "HR"), "dataroot_lq": str(tmp_path / "LR"), "io_backend": {"type": "disk"}}
    cv2.imwrite(str(tmp_path / "LR" / "a.png"), np.zeros((40, 30, 3), np.uint8))
    assert check_paired(dopt, 2.5, "test") is None
    cv2.imwrite(str(tmp_path / "LR" / "a.png"), np.zeros((41, 31, 3), np.uint8))
    assert check_paired(dopt, 2.5, "test") == ("LR a.png is 31x41 but HR a.png is 77x101: at scale 2.5 the LR must be "
                                               "30x40 (the LR is too large for this scale); 1 of 1 pairs are wrong")
