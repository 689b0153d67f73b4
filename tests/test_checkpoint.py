"""Checkpoint loading never unpickles code, accepts the usual wrappings, and explains mismatches."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from conftest import TINY_HAT

from hatast.archs.hat_arch import HAT
from hatast.utils.checkpoint import CheckpointError, load_state_dict, load_weights, save_atomic


class _Exploit:
    """Unpickling this would create a file (stands in for running any command)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"params": {"conv_first.weight": _Exploit(str(marker))}}, f)
    with pytest.raises(CheckpointError, match=r"holds code, not only weights: unpickling it would call io.open; "
                                              r"hatast did not run it"):
        load_state_dict(path)
    assert not marker.exists()
    torch.save({"params": {"conv_first.weight": _Exploit(str(marker))}}, path)  # PyTorch's zip format too
    with pytest.raises(CheckpointError, match="holds code, not only weights") as refused:
        load_state_dict(path)
    assert "damaged" not in str(refused.value) and not marker.exists()


@pytest.mark.parametrize("wrapper", ["params_ema", "params", "both", "bare", "module"])
def test_wrappings_load_strictly(tmp_path, wrapper):
    src = HAT(**TINY_HAT)
    state = src.state_dict()
    payload = {
        "params_ema": {"params_ema": state},
        "params": {"params": state},
        "both": {"params": {k: torch.zeros_like(v) for k, v in state.items()}, "params_ema": state},
        "bare": state,
        "module": {"params": {"module." + k: v for k, v in state.items()}},
    }[wrapper]
    torch.save(payload, tmp_path / "w.pth")
    dst = HAT(**TINY_HAT)
    load_weights(dst, tmp_path / "w.pth", strict=True)
    for key, value in dst.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_wrong_keys_give_one_clear_error(tmp_path):
    state = HAT(**TINY_HAT).state_dict()
    state["conv_first.weight"] = torch.zeros(8, 3, 3, 3)
    state["extra.weight"] = torch.zeros(1)
    del state["conv_last.bias"]
    torch.save({"params": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as info:
        load_weights(HAT(**TINY_HAT), tmp_path / "bad.pth")
    message = str(info.value)
    assert "bad.pth does not fit HAT" in message
    assert "conv_first.weight: file (8, 3, 3, 3) vs model (16, 3, 3, 3)" in message
    assert "1 missing (conv_last.bias)" in message and "1 unexpected (extra.weight)" in message


def test_non_strict_skips_and_reports(tmp_path):
    x2 = HAT(**{**TINY_HAT, "upscale": 2})
    torch.save({"params": x2.state_dict()}, tmp_path / "x2.pth")
    x4 = HAT(**{**TINY_HAT, "upscale": 4})
    summary = load_weights(x4, tmp_path / "x2.pth", strict=False)
    assert "missing (upsample.2.bias, upsample.2.weight)" in summary
    assert torch.equal(x4.state_dict()["conv_first.weight"], x2.state_dict()["conv_first.weight"])


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_state_dict(tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="no 'params_ema' entry"):
        torch.save({"params": {"a": torch.zeros(1)}}, tmp_path / "p.pth")
        load_state_dict(tmp_path / "p.pth", param_key="params_ema")


def test_atomic_save_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "net.pth"
    save_atomic({"v": torch.ones(2)}, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"v": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["v"], torch.ones(2))
    assert os.listdir(tmp_path) == ["net.pth"]
