"""Option files are checked before work starts; problems come back as one line naming the file and key."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_HAT, write_options

from hatast import engine
from hatast.archs.hat_arch import HAT


def _run(argv, capsys) -> tuple[int, str]:
    code = engine.run_cli(engine.train, argv)
    err = capsys.readouterr().err.strip()
    return code, err


def _assert_one_line(code, err, *fragments):
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_broken_yaml(tmp_path, capsys):
    bad = tmp_path / "broken.yml"
    bad.write_text("name: x\nnetwork_g:\n  type: HAT\n   upscale: 2\n")
    _assert_one_line(*_run(["-opt", str(bad)], capsys), "broken.yml: YAML syntax error at line 4")


def test_missing_option_file(tmp_path, capsys):
    _assert_one_line(*_run(["-opt", str(tmp_path / "nope.yml")], capsys), "nope.yml does not exist")


def test_misspelt_network_key(tmp_path, image_folders, capsys):
    opt = write_options(tmp_path / "o.yml", image_folders)
    text = opt.read_text().replace("window_size:", "windw_size:")
    opt.write_text(text)
    _assert_one_line(*_run(["-opt", str(opt)], capsys),
                     "network_g: HAT has no option 'windw_size' (did you mean 'window_size'?)")


def test_bad_network_value(tmp_path, image_folders, capsys):
    opt = write_options(tmp_path / "o.yml", image_folders, network_g={"upsampler": "nearest+conv"})
    _assert_one_line(*_run(["-opt", str(opt)], capsys), "network_g:upsampler: unknown value 'nearest+conv'",
                     "pixelshuffle")


def test_missing_dataset_folder(tmp_path, image_folders, capsys):
    folders = dict(image_folders, val_lr=tmp_path / "no_such_dir")
    opt = write_options(tmp_path / "o.yml", folders)
    _assert_one_line(*_run(["-opt", str(opt)], capsys), "datasets:val:dataroot_lq: folder", "no_such_dir")


def test_scale_mismatch(tmp_path, image_folders, capsys):
    opt = write_options(tmp_path / "o.yml", image_folders, scale=4)
    _assert_one_line(*_run(["-opt", str(opt)], capsys), "scale is 4 but network_g upscales by 2")


def test_unknown_model_type(tmp_path, image_folders, capsys):
    opt = write_options(tmp_path / "o.yml", image_folders, model_type="HATModle")
    _assert_one_line(*_run(["-opt", str(opt)], capsys), "unknown model_type 'HATModle' (did you mean 'HATModel'?)")


def test_missing_pretrained_checkpoint(tmp_path, image_folders, capsys):
    opt = write_options(tmp_path / "o.yml", image_folders, path={"pretrain_network_g": str(tmp_path / "w.pth")})
    _assert_one_line(*_run(["-opt", str(opt)], capsys), "path:pretrain_network_g: file", "w.pth does not exist")


def test_checkpoint_with_wrong_keys(tmp_path, image_folders, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    other = HAT(**{**TINY_HAT, "embed_dim": 24, "num_heads": [3]})
    torch.save({"params": other.state_dict()}, tmp_path / "other.pth")
    opt = write_options(tmp_path / "o.yml", image_folders, path={"pretrain_network_g": str(tmp_path / "other.pth")})
    _assert_one_line(*_run(["-opt", str(opt)], capsys), "other.pth does not fit HAT: keys", "with another shape")


def test_env_expansion_and_overrides(tmp_path, image_folders, monkeypatch):
    from hatast.options import build_parser, read_options

    opt = write_options(tmp_path / "o.yml", image_folders)
    opt.write_text(opt.read_text().replace(str(image_folders["train"]), "${MY_ROOT}/train_hr"))
    monkeypatch.setenv("MY_ROOT", str(tmp_path))
    args = build_parser(True).parse_args(["-opt", str(opt), "--force_yml", "train:total_iter=9",
                                          "network_g:mlp_ratio=1.5", "--local-rank=1"])
    parsed = read_options(args, is_train=True)
    assert parsed["datasets"]["train"]["dataroot_gt"] == str(tmp_path / "train_hr")
    assert parsed["train"]["total_iter"] == 9 and parsed["network_g"]["mlp_ratio"] == 1.5
    monkeypatch.delenv("MY_ROOT")
    with pytest.raises(Exception, match=r"MY_ROOT is not set"):
        read_options(build_parser(True).parse_args(["-opt", str(opt)]), is_train=True)
