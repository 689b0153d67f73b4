"""IM-LUT: the torch interpolations (one implementation, MATLAB's rules, any scale), IM-Net's structure and
arguments, and its transfer to tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sample_image

from hatast.archs.imlut_arch import IMLUT, IMNet
from hatast.data.degradations import KERNELS, imresize, resize_tensor
from hatast.lut import cpu_kernel
from hatast.lut.imlut import ScaleGrid, output_geometry, parse_interpolations, scale_pair
from hatast.lut.imlut import upscale as imlut_upscale
from hatast.lut.table import LUTError, load_file

needs_numba = pytest.mark.skipif(not cpu_kernel.available(), reason="numba not installed")


@pytest.mark.parametrize("kernel", ["nearest", "bilinear", "bicubic", "lanczos2"])
@pytest.mark.parametrize("scale", [1.0, 1.5, 2, 2.5, 3.7, 4, (2.0, 3.5), (1.5, 1.0), 0.5])
def test_torch_resize_equals_imresize_float_form(kernel, scale):
    image = np.random.default_rng(0).random((7, 9, 3))
    expected = imresize(image, scale, kernel=kernel)
    got = resize_tensor(torch.from_numpy(image).permute(2, 0, 1)[None], scale, kernel=kernel)[0].permute(1, 2, 0)
    assert got.shape == expected.shape
    assert np.allclose(got.numpy(), expected, atol=1e-12)


def test_torch_resize_to_a_size_is_batched_and_differentiable():
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    out = resize_tensor(x, size=(12, 7), kernel="bicubic")
    assert out.shape == (2, 3, 12, 7)
    assert torch.allclose(out[1, 2], resize_tensor(x[1, 2], size=(12, 7)))
    assert torch.autograd.gradcheck(lambda t: resize_tensor(t, 1.5, kernel="lanczos2"), (x[:1, :1],))
    for bad in (dict(scale=float("inf")), dict(scale=0.0), dict()):
        with pytest.raises(ValueError):
            resize_tensor(x, **bad)
    assert set(KERNELS) >= {"nearest", "bilinear", "bicubic", "lanczos2"}


@pytest.mark.parametrize("scale", [1.0, 2.0, 1.5, 3.7])
def test_interpolations_at_scale_one_are_identities_and_flat_images_stay_flat(scale):
    flat = torch.full((1, 1, 5, 4), 0.3, dtype=torch.float64)
    for kernel in ("nearest", "bilinear", "bicubic", "lanczos2"):
        out = resize_tensor(flat, scale, kernel=kernel)
        assert torch.allclose(out, torch.full_like(out, 0.3), atol=1e-12)
        if scale == 1.0:
            x = torch.rand(1, 1, 5, 4, dtype=torch.float64)
            assert torch.allclose(resize_tensor(x, 1.0, kernel=kernel), x, atol=1e-12)


def test_scale_arguments_are_checked():
    assert scale_pair(2.5) == (2.5, 2.5) and scale_pair((1.5, 2)) == (1.5, 2.0)
    assert scale_pair(torch.tensor([3.0])) == (3.0, 3.0)
    assert output_geometry(10, 7, 1.1) == ((11, 8), (1.1, 1.1))  # not 12: 1.1 * 10 is 11.000000000000002
    assert output_geometry(4, 6, size=(9, 6)) == ((9, 6), (2.25, 1.0))
    with pytest.raises(ValueError, match="smaller than"):
        output_geometry(4, 6, size=(3, 6))
    for bad in (0.5, float("nan"), float("inf"), (1, 2, 3), -2, "x"):
        with pytest.raises(ValueError, match="finite and >= 1"):
            scale_pair(bad)
    assert parse_interpolations("nlc") == ("N", "L", "C")
    for bad in ("NLX", "NN", ""):
        with pytest.raises(ValueError, match="interpolations"):
            parse_interpolations(bad)
    grid = ScaleGrid(1.0, 4.0, 0.1)
    assert grid.count == 31 and grid.quantise(2.54) == pytest.approx(2.5) and grid.quantise(9.0) == pytest.approx(4)


@pytest.mark.parametrize("normalise", ["softmax", "sum"])
@pytest.mark.parametrize("letters", ["NL", "NLC", "NLCZ"])
def test_imnet_output_sizes_weights_and_parts(letters, normalise):
    torch.manual_seed(0)
    net = IMNet(letters, num_feat=8, num_hidden=1, normalise=normalise)
    x = torch.rand(2, 3, 6, 5)
    for scale, shape in ((2.5, (15, 13)), ((1.5, 3.0), (9, 15)), (1.0, (6, 5))):
        out, weights, images = net(x, scale, return_parts=True)
        assert out.shape == (2, 3, *shape) and weights.shape == images.shape == (2, 3, len(letters), *shape)
        assert torch.allclose(weights.sum(2), torch.ones(()), atol=1e-5)
        assert (weights >= 0).all() or normalise == "sum"
    if normalise == "sum":  # signed weights shifted equally: the mix can extrapolate
        raw = torch.zeros(1, len(letters), 1, 1)
        raw[0, 0] = 2
        expected = torch.full_like(raw, -1 / len(letters))
        expected[0, 0] = 2 - 1 / len(letters)
        assert torch.allclose(net.normalised(raw), expected)
    assert net(x, 1.0, size=(11, 7)).shape == (2, 3, 11, 7)


def test_imnet_at_scale_one_is_the_input_plus_the_refiner():
    torch.manual_seed(0)
    net = IMNet("NLC", num_feat=8, num_hidden=1)
    x = (torch.rand(1, 1, 6, 7) * 255).round() / 255
    expected = x + net.residual(x)
    assert torch.allclose(net(x, 1.0), expected, atol=1e-6)


def test_imnet_tables_describe_the_three_predictors():
    torch.manual_seed(0)
    net = IMNet("NLC", num_feat=8, num_hidden=1, scale_grid={"start": 1.0, "stop": 4.0, "step": 0.5})
    tables = net.to_tables(interval=6)
    assert tables.family == "imlut" and set(tables.tables) == {"weight", "refiner"}
    weight, refiner = tables.tables["weight"], tables.tables["refiner"]
    assert weight.entries.shape == (5**4, 3) and weight.layout.names == ("N", "L", "C") and weight.rotations == 4
    assert refiner.entries.shape == (5**4, 1) and refiner.rotations == 4
    assert tables.arrays["scale"].shape == (7, 7, 3) and tables.arrays["scale"].dtype == np.float16
    assert tables.config["interpolations"] == "NLC" and tables.config["scale_grid"]["step"] == 0.5


@pytest.fixture(scope="module", params=["sum", "softmax"])
def small_imlut(request, tmp_path_factory):
    """A small random IM-Net and its tables (interval 4, as released), for each normalisation."""
    torch.manual_seed(0)
    net = IMNet("NLC", num_feat=16, num_hidden=1, normalise=request.param,
                scale_grid={"start": 1.0, "stop": 4.0, "step": 0.1}).eval()
    path = net.to_tables(interval=4).save(tmp_path_factory.mktemp("imlut") / "imlut.npz")
    return net, path


@pytest.mark.parametrize("scale", [2.5, (1.5, 3.0), 4.0, 1.0])
def test_tables_give_the_nets_output_within_the_quantisation_error(small_imlut, scale):
    """Int8 entries, 17 levels per input and the 8-bit refiner input: the table model stays within a few levels
    of the net everywhere and within half a level on average."""
    net, path = small_imlut
    tables = IMLUT(str(path)).eval()
    x = torch.from_numpy(sample_image()[60:92, 150:190].transpose(2, 0, 1).copy())[None].float() / 255
    with torch.no_grad():
        expected, got = net(x, scale), tables(x, scale)
    difference = (got - expected).abs() * 255
    assert got.shape == expected.shape
    assert difference.mean() < 0.5 and difference.max() < 6


@needs_numba
@pytest.mark.parametrize("scale,size", [(2.5, None), ((1.5, 3.7), None), (None, (50, 41)), (1.0, None)])
def test_fused_cpu_path_equals_the_torch_path(small_imlut, scale, size):
    _, path = small_imlut
    model, tables = load_file(path), IMLUT(str(path)).eval()
    image = sample_image()[10:30, 20:37]
    fused = imlut_upscale(model, image, scale, size)
    x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None].float() / 255
    with torch.no_grad():
        reference = tables(x, scale if size is None else None, size)
    reference = torch.floor(reference.clamp(0, 1) * 255 + 0.5).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert fused.shape == reference.shape
    differing = fused != reference
    # float32 sums in another order: a pixel may round the other way at a .5 boundary, never further
    assert np.abs(fused.astype(int) - reference).max() <= 1 and differing.mean() < 0.002


def test_table_file_round_trip_and_refusals(small_imlut, tmp_path):
    net, path = small_imlut
    tables = IMLUT(str(path))
    again = tables.to_tables().save(tmp_path / "again.npz")
    first, second = load_file(path), load_file(again)
    for name in ("weight", "refiner"):
        assert np.array_equal(first.tables[name].entries, second.tables[name].entries)
    assert np.array_equal(first.arrays["scale"], second.arrays["scale"]) and first.config == second.config
    image = np.zeros((3, 3, 3), np.uint8)
    for bad, message in ((0.5, "finite and >= 1"), (float("nan"), "finite"), (-1, ">= 1")):
        with pytest.raises(LUTError, match=message):
            imlut_upscale(first, image, bad)
    with pytest.raises(LUTError, match="smaller than"):
        imlut_upscale(first, image, size=(2, 5))
    srlut = tmp_path / "srlut.npz"
    from hatast.lut import LUTTable
    LUTTable.srlut("S", 2, 4, np.zeros((17**4, 4), np.int8)).save(srlut)
    with pytest.raises(ValueError, match="not an IM-LUT table file"):
        IMLUT(str(srlut))


@needs_numba
def test_any_input_size_down_to_one_pixel(small_imlut):
    _, path = small_imlut
    model = load_file(path)
    for shape in ((1, 1, 3), (1, 4), (5, 1, 3)):
        image = np.full(shape, 128, np.uint8)
        out = imlut_upscale(model, image, 2.5)
        assert out.shape[:2] == (int(np.ceil(shape[0] * 2.5)), int(np.ceil(shape[1] * 2.5)))


def test_lut_command_transfers_an_imnet(tmp_path, capsys):
    from hatast.cli.lut import main as lut_command

    torch.manual_seed(0)
    net = IMNet("NL", num_feat=4, num_hidden=0)
    torch.save({"params": net.state_dict()}, tmp_path / "net.pth")
    assert lut_command(["transfer", str(tmp_path / "net.pth"), "-o", str(tmp_path / "t.npz"), "--interval", "5"]) == 0
    assert "IM-LUT NL" in capsys.readouterr().out
    written, expected = load_file(tmp_path / "t.npz"), net.to_tables(5)
    assert np.array_equal(written.tables["weight"].entries, expected.tables["weight"].entries)
    assert written.info["network_g"]["interpolations"] == "NL"


def test_scales_above_the_trained_range_warn_and_still_work(small_imlut):
    _, path = small_imlut
    model = load_file(path)
    model.info["trained_scales"] = [1.0, 4.0]
    image = np.full((3, 4, 3), 90, np.uint8)
    with pytest.warns(UserWarning, match="above the range these IM-LUT tables were trained at"):
        out = imlut_upscale(model, image, 5.0)
    assert out.shape == (15, 20, 3)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert imlut_upscale(model, image, 4.0).shape == (12, 16, 3)
