"""``hatast export``: tiny HAT, HAT+AST and USRNet checkpoints -> ONNX graphs that compute from the runtime size
(onnxruntime against PyTorch at sizes the export never saw), the export-time tensor paths, and the refusals."""

from __future__ import annotations

import re
import sys

import numpy as np
import onnxruntime
import pytest
import torch
from conftest import TINY_HAT

from hatast.archs.attention import dense_shifted_window_mask, shifted_window_mask
from hatast.archs.hat_arch import HAT
from hatast.archs.hat_ast_arch import HATAST
from hatast.archs.srlut_arch import SRLUTNet
from hatast.archs.usrnet_arch import USRNet
from hatast.cli.export import main as export
from hatast.utils.checkpoint import save_atomic
from hatast.utils.padding import reflect_indices, reflect_indices_tensor

TOLERANCE = 1e-4


def _perturbed(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial values everywhere (LayerNorms and biases start at 1 and 0), in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net.eval()


def _checkpoint(tmp_path, net: torch.nn.Module):
    path = tmp_path / "net.pth"
    save_atomic({"params_ema": net.state_dict()}, path)
    return path


def _printed_diffs(out: str) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(r"^onnxruntime vs PyTorch at .*: max \|diff\| (\S+)$", out, re.M)]


def _session(path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("arch", [HAT, HATAST])
def test_hat_family_exports_with_dynamic_size(tmp_path, capsys, arch):
    # HAT: shifted and unshifted windows, OCAB; HAT+AST: ASSA (squared-ReLU branch), FRFN, 7-pixel key window with
    # an odd border (0.75 overlap) and per-key biases
    options = {"key_position_bias": True} if arch is HATAST else {}
    net = _perturbed(arch(**TINY_HAT, **options))
    out = tmp_path / "model.onnx"
    assert export([str(_checkpoint(tmp_path, net)), "-o", str(out), "--check-sizes", "21x13", "17x30"]) == 0
    printed = capsys.readouterr().out
    diffs = _printed_diffs(printed)
    assert len(diffs) == 2 and max(diffs) <= TOLERANCE
    assert "opset 18" in printed and "lq [batch, 3, height, width] -> sr [batch, 3, 2*height, 2*width]" in printed

    session = _session(out)  # sizes neither the export nor its checks saw: one window, batch of three
    for batch, height, width in [(1, 3, 5), (3, 9, 6)]:
        lq = torch.rand(batch, 3, height, width)
        with torch.no_grad():
            expected = net(lq).numpy()
        (got,) = session.run(["sr"], {"lq": lq.numpy()})
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOLERANCE


def test_usrnet_exports_with_kernel_and_noise_inputs(tmp_path, capsys):
    torch.manual_seed(0)
    net = USRNet(n_iter=1, h_nc=8, nc=[4, 8, 8, 8], nb=1).eval()
    out = tmp_path / "usrnet.onnx"
    assert export([str(_checkpoint(tmp_path, net)), "-o", str(out), "--scale", "3"]) == 0
    printed = capsys.readouterr().out
    diffs = _printed_diffs(printed)
    assert len(diffs) == 2 and max(diffs) <= TOLERANCE
    assert "kernel [1, 1, kernel_height, kernel_width]; sigma [1] -> sr [batch, 3, 3*height, 3*width]" in printed

    # a kernel wider than the upscaled image (the circular wrap) and a size the checks did not use
    kernel = torch.rand(1, 1, 25, 19) + 0.1
    kernel /= kernel.sum()
    lq, sigma = torch.rand(1, 3, 5, 7), torch.tensor([0.03])
    with torch.no_grad():
        expected = net(lq, kernel=kernel, sigma=sigma, scale=3).numpy()
    (got,) = _session(out).run(["sr"], {"lq": lq.numpy(), "kernel": kernel.numpy(), "sigma": sigma.numpy()})
    assert got.shape == (1, 3, 15, 21)
    assert np.abs(got - expected).max() <= TOLERANCE


def test_export_time_tensor_paths_equal_eager_ones():
    for length in range(1, 10):
        for before, after in [(0, 0), (0, 7), (3, 12)]:
            assert np.array_equal(reflect_indices_tensor(length, before, after).numpy(),
                                  reflect_indices(length, before, after))
    for height, width in [(8, 8), (16, 24), (32, 8)]:
        dense = dense_shifted_window_mask(height, width, 8, 4)
        assert torch.equal(dense, shifted_window_mask(height, width, 8, 4).dense())


def _refused(capsys, argv: list[str]) -> str:
    assert export(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_table_file_is_refused(tmp_path, capsys):
    table = tmp_path / "SRLUT-S_x4.npz"
    np.savez(table, lut=np.zeros(4, np.int8))
    err = _refused(capsys, [str(table), "-o", str(tmp_path / "t.onnx")])
    assert "look-up table file" in err and "run the table directly" in err
    assert not (tmp_path / "t.onnx").exists()


def test_output_onto_the_weights_is_refused(tmp_path, capsys):
    weights = _checkpoint(tmp_path, HAT(**TINY_HAT))
    before = weights.read_bytes()
    err = _refused(capsys, [str(weights), "-o", str(weights)])
    assert "would overwrite the input" in err
    assert weights.read_bytes() == before


def test_networks_run_as_tables_are_refused(tmp_path, capsys):
    weights = _checkpoint(tmp_path, SRLUTNet("S", upscale=2, num_feat=8, num_hidden=1))
    err = _refused(capsys, [str(weights), "-o", str(tmp_path / "t.onnx")])
    assert "SRLUTNet cannot be exported" in err and "hatast lut transfer" in err


def test_scale_and_opset_are_checked_before_exporting(tmp_path, capsys):
    hat = _checkpoint(tmp_path, HAT(**TINY_HAT))
    assert "x2 only" in _refused(capsys, [str(hat), "-o", str(tmp_path / "t.onnx"), "--scale", "4"])
    assert "opset 18 or later" in _refused(capsys, [str(hat), "-o", str(tmp_path / "t.onnx"), "--opset", "17"])
    usrnet = tmp_path / "usrnet.pth"
    save_atomic(USRNet(n_iter=1, h_nc=8, nc=[4, 8, 8, 8], nb=1).state_dict(), usrnet)
    assert "give --scale" in _refused(capsys, [str(usrnet), "-o", str(tmp_path / "t.onnx")])


def test_missing_onnx_packages_are_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    err = _refused(capsys, [str(_checkpoint(tmp_path, HAT(**TINY_HAT))), "-o", str(tmp_path / "t.onnx")])
    assert "missing: onnxruntime" in err and "pip install onnx onnxscript onnxruntime" in err


def test_failed_check_leaves_the_output_untouched(tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous export")
    weights = _checkpoint(tmp_path, _perturbed(HAT(**{**TINY_HAT, "depths": [1], "num_heads": [2]})))
    err = _refused(capsys, [str(weights), "-o", str(out), "--check-sizes", "7x5", "--tolerance", "0"])
    assert "exists; hatast keeps existing results: add --overwrite" in err  # refused before any compute
    err = _refused(capsys, [str(weights), "-o", str(out), "--check-sizes", "7x5", "--tolerance", "0", "--overwrite"])
    assert "differ by" in err and "nothing written" in err
    assert out.read_bytes() == b"previous export" and [p.name for p in tmp_path.iterdir()] == ["net.pth", out.name]
