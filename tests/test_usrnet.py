"""USRNet: parity with the authors' output, the data step's normal equations, the reference path, edge cases the
authors' code fails on, kernels, the degradation and the training dataset."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from conftest import DATA, FIXTURES, need

from hatast.archs.detect import detect
from hatast.archs.usrnet_arch import (
    USRNet,
    block_mean,
    kernel_to_otf,
    reference_forward,
    usrnet_config_from_state_dict,
    zero_fill_upsample,
)
from hatast.data import degradations as deg

TINY = dict(n_iter=2, h_nc=8, nc=[4, 8, 8, 8], nb=1)


def _net(seed: int = 0, **config) -> USRNet:
    torch.manual_seed(seed)
    net = USRNet(**{**TINY, **config}).eval()
    for p in net.parameters():  # non-trivial weights everywhere (the default init leaves outputs near zero)
        p.data.normal_(0, 0.05)
    return net


def test_matches_authors_output():
    ref = torch.load(need(FIXTURES / "reference" / "usrnet_tiny_sf2.pth", "USRNet fixture"), weights_only=True)
    config = usrnet_config_from_state_dict(ref["params"])
    assert {k: v for k, v in ref["config"].items() if k in config} == config
    net = USRNet(**config).eval()
    net.load_state_dict(ref["params"], strict=True)
    with torch.no_grad():
        out = net(ref["input"], ref["kernel"], ref["sigma"], ref["sf"])
    assert (out - ref["output"]).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ["USRNet", "USRNet_tiny"])
def test_state_dict_keys_are_the_authors(name):
    listing = need(FIXTURES / "reference" / "keys" / f"keys_{name}.txt", "key listing").read_text().splitlines()
    shapes = {line.split("\t")[0]: tuple(eval(line.split("\t")[1])) for line in listing if line.strip()}
    fake = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    model = detect(fake)
    assert model.name == "USRNet" and model.tiling == "approximate"
    assert model.extra_inputs == ("kernel", "sigma", "scale")
    ours = {k: tuple(v.shape) for k, v in model.network.state_dict().items()}
    assert ours == shapes


def _circular(z: torch.Tensor, kernel: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """Direct circular convolution (or its adjoint, the correlation) by summing shifted copies: an oracle
    independent of the FFT code."""
    kh, kw = kernel.shape
    out = torch.zeros_like(z)
    for a in range(kh):
        for b in range(kw):
            dy, dx = a - kh // 2, b - kw // 2
            if transpose:
                out += kernel[a, b] * torch.roll(z, (-dy, -dx), (-2, -1))
            else:
                out += kernel[a, b] * torch.roll(z, (dy, dx), (-2, -1))
    return out


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("ksize", [(5, 5), (4, 6), (7, 3), (25, 25)])
def test_data_step_solves_normal_equations(scale, ksize):
    """K^T S^T (S K z - y) + alpha (z - x0) = 0 at the data step's output, in float64."""
    g = torch.Generator().manual_seed(scale * 100 + ksize[0])
    h, w = 6, 5  # HR 6s x 5s: at s = 1..4 smaller than a 25x25 kernel too
    lq = torch.rand(1, 3, h, w, generator=g, dtype=torch.float64)
    x0 = torch.rand(1, 3, h * scale, w * scale, generator=g, dtype=torch.float64)
    kernel = torch.rand(ksize, generator=g, dtype=torch.float64)
    kernel /= kernel.sum()
    alpha = torch.tensor(0.37, dtype=torch.float64).reshape(1, 1, 1, 1)
    net = USRNet(n_iter=1, h_nc=4, nc=[4, 4, 4, 4], nb=1).double()
    terms = net.d.prepare(lq, kernel[None, None], scale)
    z = net.d(x0, terms, alpha, scale)
    residual = _circular(z, kernel)[..., ::scale, ::scale] - lq
    gradient = _circular(zero_fill_upsample(residual, scale), kernel, transpose=True) + alpha * (z - x0)
    assert gradient.abs().max() < 1e-10


def test_block_mean_and_otf_against_definitions():
    x = torch.arange(2 * 12 * 8, dtype=torch.float64).reshape(2, 12, 8)
    # 12 x 8 split into s = 2 blocks of 6 x 4
    expected = sum(x[:, i * 6:(i + 1) * 6, j * 4:(j + 1) * 4] for i in range(2) for j in range(2)) / 4
    assert torch.allclose(block_mean(x, 2), expected)
    k = torch.rand(1, 1, 5, 3, dtype=torch.float64)
    impulse = torch.zeros(9, 7, dtype=torch.float64)
    impulse[0, 0] = 1
    response = torch.fft.ifft2(kernel_to_otf(k, (9, 7)) * torch.fft.fft2(impulse)).real[0, 0]
    assert torch.allclose(response, _circular(impulse, k[0, 0]))


@pytest.mark.parametrize("config", [
    dict(), dict(n_iter=3, nb=2), dict(nc=[4, 4, 8, 16], h_nc=16), dict(n_iter=1, nb=1, nc=[2, 3, 5, 7])])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_equals_the_straightforward_equations(config, scale):
    net = _net(scale, **config)
    g = torch.Generator().manual_seed(scale)
    lq = torch.rand(2, 3, 7, 9, generator=g)
    kernel = torch.rand(2, 1, 6 + scale, 5, generator=g)
    kernel /= kernel.sum(dim=(-2, -1), keepdim=True)
    sigma = torch.tensor([0.0, 0.05])
    with torch.no_grad():
        ours = net(lq, kernel, sigma, scale)
        theirs = reference_forward(net, lq, kernel, sigma, scale)
    assert ours.shape == (2, 3, 7 * scale, 9 * scale)
    assert (ours - theirs).abs().max() <= 1e-5 * max(1.0, theirs.abs().max().item())


def test_hr_smaller_than_the_kernel():
    """HR 12x8 (x4 of 3x2) with a 25x25 kernel: the authors' p2o cannot place it; circular wrapping can."""
    net = _net()
    lq = torch.rand(1, 3, 3, 2)
    kernel = torch.from_numpy(deg.gaussian_kernel((4.0, 2.0), 0.3)).float()
    with torch.no_grad():
        out = net(lq, kernel, 0.01, 4)
    assert out.shape == (1, 3, 12, 8) and torch.isfinite(out).all()
    # the wrapped transfer function is the one of the kernel folded onto the 12x8 torus
    folded = torch.zeros(12, 8, dtype=torch.float64)
    for a in range(25):
        for b in range(25):
            folded[(a - 12) % 12, (b - 12) % 8] += float(kernel[a, b])
    assert torch.allclose(kernel_to_otf(kernel.double()[None, None], (12, 8))[0, 0], torch.fft.fft2(folded))


def test_unnormalised_kernel_warns_and_is_normalised():
    torch.manual_seed(0)
    net = USRNet(**TINY).eval()  # default initialisation: outputs near the input, so float rounding stays small
    lq = torch.rand(1, 3, 8, 8)
    kernel = torch.rand(1, 1, 5, 5)
    with torch.no_grad():
        expected = net(lq, kernel / kernel.sum(), 0.0, 2)
        with pytest.warns(UserWarning, match="normalised"):
            out = net(lq, kernel * 3, 0.0, 2)
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net(lq, kernel / kernel.sum(), 0.0, 2)  # a kernel summing to one: no warning
    with pytest.raises(ValueError, match="sums to zero"):
        net(lq, torch.zeros(5, 5), 0.0, 2)
    with pytest.raises(ValueError, match="integer scale"):
        net(lq, kernel, 0.0, 2.5)


def test_batch_of_different_kernels_and_noise_levels_equals_single_runs():
    net = _net(3)
    lq = torch.rand(3, 3, 9, 11)
    kernel = torch.rand(3, 1, 7, 7)
    kernel /= kernel.sum(dim=(-2, -1), keepdim=True)
    sigma = torch.tensor([0.0, 0.02, 0.1])
    with torch.no_grad():
        batch = net(lq, kernel, sigma, 3)
        single = torch.cat([net(lq[i:i + 1], kernel[i:i + 1], sigma[i], 3) for i in range(3)])
    assert (batch - single).abs().max() < 1e-5 * max(1.0, single.abs().max().item())
    assert (batch[0] - batch[1]).abs().max() > 1e-3  # the samples really differ


def test_odd_sizes_and_scale_one():
    net = _net()
    for h, w, s in ((13, 7, 1), (5, 11, 3), (1, 1, 2)):
        with torch.no_grad():
            out = net(torch.rand(1, 3, h, w), torch.ones(3, 3) / 9, 0.0, s)
        assert out.shape == (1, 3, h * s, w * s) and torch.isfinite(out).all()


# ----------------------------------------------------------------------------------------------------------------
# degradations


def test_circular_blur_is_wrap_convolution():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    image = rng.random((20, 17, 3))
    kernel = deg.gaussian_kernel((3.0, 1.0), 0.7, size=7)
    expected = ndimage.convolve(image, kernel[..., None], mode="wrap")
    assert np.abs(deg.circular_blur(image, kernel) - expected).max() < 1e-12
    # the network's transfer function is the same convolution
    torch_image = torch.from_numpy(image.transpose(2, 0, 1))[None]
    otf = kernel_to_otf(torch.from_numpy(kernel)[None, None], (20, 17))
    blurred = torch.fft.ifft2(otf * torch.fft.fft2(torch_image)).real[0].numpy().transpose(1, 2, 0)
    assert np.abs(blurred - expected).max() < 1e-12


def test_gaussian_kernel_covariance():
    kernel = deg.gaussian_kernel((6.0, 1.5), math.radians(30), size=41)
    rows, cols = np.mgrid[:41, :41] - 20.0
    cov = np.array([[np.sum(kernel * cols * cols), np.sum(kernel * cols * rows)],
                    [np.sum(kernel * cols * rows), np.sum(kernel * rows * rows)]])
    eigenvalues, vectors = np.linalg.eigh(cov)
    assert np.allclose(eigenvalues, [1.5, 6.0], atol=1e-3)
    assert abs(abs(vectors[:, 1] @ [math.cos(math.radians(30)), math.sin(math.radians(30))]) - 1) < 1e-6


def test_training_kernels_are_normalised_and_varied():
    rng = np.random.default_rng(1)
    kernels = [deg.random_training_kernel(rng) for _ in range(40)]
    assert all(k.shape == (25, 25) and abs(k.sum() - 1) < 1e-12 and (k >= 0).all() for k in kernels)
    extents = [np.ptp(np.argwhere(k > 1e-3), axis=0).max() for k in kernels]
    assert min(extents) <= 10 and max(extents) >= 16
    assert len({round(float(k.max()), 6) for k in kernels}) == 40


def test_load_kernel_files_and_specs(tmp_path):
    import cv2
    import scipy.io

    kernel = deg.gaussian_kernel((2.0, 5.0), 0.2, size=9)
    np.save(tmp_path / "k.npy", kernel * 7)
    scipy.io.savemat(tmp_path / "k.mat", {"kernel": kernel})
    cv2.imwrite(str(tmp_path / "k.png"), np.round(kernel / kernel.max() * 255).astype(np.uint8))
    assert np.allclose(deg.load_kernel(str(tmp_path / "k.npy")), kernel)
    assert np.allclose(deg.load_kernel(str(tmp_path / "k.mat")), kernel)
    assert np.allclose(deg.load_kernel(str(tmp_path / "k.png")), kernel, atol=2e-3)
    assert np.allclose(deg.load_kernel("gaussian:1.5"), deg.gaussian_kernel((2.25, 2.25)))
    assert deg.load_kernel("gaussian:2,1,45:size=15").shape == (15, 15)
    bench = need(FIXTURES / "kernels_12.mat", "USRNet benchmark kernels")
    assert np.allclose(deg.load_kernel(f"{bench}:11"), deg.benchmark_kernels(str(bench))[11])
    for bad, message in (("gaussian:-1", "a sigma must be above 0"), ("gaussian:a", "not a number"),
                         ("nope.npy", "no such file"), (f"{bench}:12", "holds 12 kernels")):
        with pytest.raises(ValueError, match=message):
            deg.load_kernel(bad)


# ----------------------------------------------------------------------------------------------------------------
# dataset


def _dataset(tmp_path, phase, **extra):
    from conftest import write_image_folder

    from hatast.data.blur_dataset import BlurDownsampleNoiseDataset

    folder = write_image_folder(tmp_path / "hr", 3, 60)
    opt = {"name": "t", "type": "BlurDownsampleNoiseDataset", "dataroot_gt": str(folder), "phase": phase,
           "scale": 4, "io_backend": {"type": "disk"}, **extra}
    return BlurDownsampleNoiseDataset(opt)


def test_training_samples_every_scale_reproducibly(tmp_path):
    import random

    ds = _dataset(tmp_path, "train", gt_size=48, scales=[1, 2, 3, 4], noise_range=[0, 25])
    random.seed(5)
    a = ds[0]
    random.seed(5)
    b = ds[0]
    assert a["gt"].shape == (3, 48, 48) and a["kernel"].shape == (1, 25, 25)
    assert all(torch.equal(a[k], b[k]) for k in ("gt", "kernel", "sigma", "lq_x1", "lq_x3"))
    for s in (1, 2, 3, 4):
        assert a[f"lq_x{s}"].shape == (3, 48 // s, 48 // s)
    assert 0 <= float(a["sigma"]) <= 25 / 255
    # without noise the LR is the blurred, decimated crop exactly
    random.seed(6)
    clean = _dataset(tmp_path / "c", "train", gt_size=48, scales=[2], noise_range=[0, 0])[1]
    hr = clean["gt"].double().numpy()[::-1].transpose(1, 2, 0)
    lq = deg.decimate(deg.circular_blur(hr, clean["kernel"][0].double().numpy()), 2)
    assert np.abs(clean["lq_x2"].double().numpy()[::-1].transpose(1, 2, 0) - lq).max() < 1e-6
    with pytest.raises(ValueError, match="not a multiple of scale"):
        _dataset(tmp_path / "d", "train", gt_size=50, scales=[3])


def test_validation_samples_follow_the_protocol(tmp_path):
    ds = _dataset(tmp_path, "val", kernel="gaussian:2", noise=7.65, seed=0)
    sample = ds[0]
    assert sample["gt"].shape == (3, 56, 56) and sample["lq"].shape == (3, 14, 14) and sample["scale"] == 4
    hr = sample["gt"].double().numpy()[::-1].transpose(1, 2, 0)
    lq = deg.blur_downsample_noise(hr, deg.load_kernel("gaussian:2"), 4, 7.65 / 255, np.random.default_rng(0))
    assert np.abs(sample["lq"].double().numpy()[::-1].transpose(1, 2, 0) - lq).max() < 1e-6
    assert DATA  # the shared data root is only needed by the option-file tests


@pytest.mark.parametrize("fused", [True, False])
def test_inference_paths_equal_the_plain_prior(fused, monkeypatch):
    """Without autograd the prior runs fused oneDNN convolutions (CPU) or row strips (elsewhere; forced here with
    maps tall enough for several strips): both equal the plain forward."""
    from hatast.archs import usrnet_arch

    if not fused:
        monkeypatch.setattr(usrnet_arch, "_fused_conv_available", lambda x: False)
        monkeypatch.setattr(usrnet_arch, "STRIP_ROWS", 8)
        monkeypatch.setattr(usrnet_arch, "STRIP_ELEMENTS", 1)
    torch.manual_seed(0)
    prior = usrnet_arch.ResUNet(4, 3, [8, 16, 16, 32], 2).eval()
    x = torch.rand(2, 4, 70, 45)
    with torch.no_grad():
        expected = prior.forward_reference(x)
        got = prior(x)
    assert (got - expected).abs().max() < 1e-5
    assert got.is_contiguous()


# ----------------------------------------------------------------------------------------------------------------
# checkpoints saved by the authors' code at every depth


def _in_authors_spelling(state: dict, nb: int) -> dict:
    """hatast's keys as the authors' code names them: their ``sequential()`` returns a lone module unwrapped, so at
    nb = 1 ``m_body`` is the residual block itself, and at nb = 0 each down/up stage is its convolution alone (and
    ``m_body`` is empty)."""
    renamed = {}
    for key, value in state.items():
        if nb == 1:
            key = key.replace("p.m_body.0.res.", "p.m_body.res.")
        if nb == 0:
            for stage in ("m_down1", "m_down2", "m_down3", "m_up3", "m_up2", "m_up1"):
                key = key.replace(f"p.{stage}.0.weight", f"p.{stage}.weight")
        renamed[key] = value
    return renamed


@pytest.mark.parametrize("nb", [0, 1, 2, 3])
def test_authors_checkpoint_of_any_depth_is_detected_and_loads(nb):
    from torch import nn

    from hatast.utils.checkpoint import load_into

    net = _net(nb, nb=nb)
    ours = net.state_dict()
    authors = _in_authors_spelling(ours, nb)
    if nb == 1:
        assert "p.m_body.res.0.weight" in authors and "p.m_body.0.res.0.weight" not in authors
    if nb == 0:
        assert "p.m_down1.weight" in authors and "p.m_up1.weight" in authors
        assert not any(k.startswith("p.m_body.") for k in authors)
    assert (authors.keys() == ours.keys()) == (nb >= 2)

    model = detect(authors)
    assert model.name == "USRNet" and model.config["nb"] == nb and model.config["nc"] == TINY["nc"]
    assert usrnet_config_from_state_dict(authors) == usrnet_config_from_state_dict(ours)
    canonical = model.architecture.canonical(authors)
    assert canonical.keys() == ours.keys()
    load_into(model.network, canonical, strict=True)
    direct = USRNet(**{**TINY, "nb": nb}).eval()  # load_state_dict takes the authors' spelling too
    direct.load_state_dict(authors, strict=True)
    nested = nn.ModuleDict({"g": USRNet(**{**TINY, "nb": nb})})
    nested.load_state_dict({f"g.{k}": v for k, v in authors.items()}, strict=True)

    lq = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(nb))
    kernel = torch.from_numpy(deg.gaussian_kernel((1.5, 1.5), size=5)).float()
    with torch.no_grad():
        expected = net(lq, kernel, 0.01, 2)
        for loaded in (model.network.eval(), direct, nested["g"].eval()):
            assert torch.equal(loaded(lq, kernel, 0.01, 2), expected)


def test_upscale_command_runs_an_authors_nb1_checkpoint(tmp_path, monkeypatch):
    import cv2

    from hatast.cli.upscale import main

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it: restored afterwards
    weights = tmp_path / "usrnet_nb1.pth"
    torch.save(_in_authors_spelling(_net(nb=1).state_dict(), 1), weights)  # a bare state dict, as the authors save
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "lr.png"), image)
    status = main([str(tmp_path / "lr.png"), "-w", str(weights), "-o", str(tmp_path / "out"), "--scale", "2",
                   "--kernel", "gaussian:1.6", "--device", "cpu", "--no-progress"])
    assert status == 0
    out = cv2.imread(str(tmp_path / "out" / "lr.png"))
    assert out is not None and out.shape == (20, 24, 3)
