"""HAT architecture: checkpoint keys, numerical parity with the authors' code, padding, options."""

from __future__ import annotations

import pytest
import torch
from conftest import FIXTURES, TINY_HAT, need

from hatast.archs.hat_arch import HAT, HAT_VARIANTS, build_hat, hat_config_from_state_dict


def _read_key_listing(path):
    keys = {}
    for line in path.read_text().splitlines():
        key, shape, dtype = line.split("\t")
        keys[key] = (tuple(int(s) for s in shape.strip("()").split(",") if s.strip()), dtype)
    return keys


@pytest.mark.parametrize("variant", list(HAT_VARIANTS))
def test_state_dict_matches_released_keys(variant):
    listing = need(FIXTURES / "reference" / "keys" / f"keys_{variant}_x4.txt", f"{variant} key listing")
    with torch.device("meta"):
        net = build_hat(variant, 4)
    ours = {k: (tuple(v.shape), str(v.dtype)) for k, v in net.state_dict().items()}
    assert ours == _read_key_listing(listing)


@pytest.mark.parametrize("variant", list(HAT_VARIANTS))
def test_config_round_trips_through_state_dict(variant):
    with torch.device("meta"):
        net = build_hat(variant, 4)
    cfg = hat_config_from_state_dict(net.state_dict())
    expected = HAT_VARIANTS[variant]
    for key in ("embed_dim", "window_size", "compress_ratio", "squeeze_factor", "overlap_ratio", "mlp_ratio"):
        assert cfg[key] == expected[key], key
    assert cfg["depths"] == list(expected["depths"]) and cfg["num_heads"] == list(expected["num_heads"])
    assert cfg["upscale"] == 4


@pytest.mark.parametrize("upscale", [2, 3, 4])
def test_config_inference_reads_upscale(upscale):
    net = HAT(**{**TINY_HAT, "upscale": upscale})
    assert hat_config_from_state_dict(net.state_dict())["upscale"] == upscale


def _load_reference():
    ref = torch.load(need(FIXTURES / "reference" / "hat_small_x4.pth", "HAT reference fixture"), weights_only=True)
    return ref, ref["params_ema"]


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_parity_with_authors_reference_output(impl):
    ref, state = _load_reference()
    net = HAT(**ref["config"]).eval()
    net.load_state_dict(state, strict=True)
    net.set_attention_impl(impl)
    with torch.no_grad():
        out = net(ref["input"])
    assert out.shape == ref["output"].shape
    assert (out - ref["output"]).abs().max().item() <= 1e-5


def test_oracle_reproduces_authors_reference_output():
    """The independent oracle used below is itself anchored to the authors' code."""
    import hat_oracle

    ref, state = _load_reference()
    out = hat_oracle.hat_forward(state, ref["config"], ref["input"])
    assert (out - ref["output"]).abs().max().item() <= 1e-5


def _randomised(net: HAT, seed: int) -> HAT:
    """Give every parameter a non-trivial value (LayerNorms and biases are 1/0 at init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p + 0.05 * torch.randn(p.shape, generator=g))
    return net.eval()


@pytest.mark.parametrize(
    "window_size, overlap_ratio, depths, num_heads, upscale, size",
    [
        (4, 0.5, [2], [2], 2, (8, 12)),
        (4, 1.0, [1, 2], [1, 4], 3, (8, 8)),
        (6, 1 / 3, [2], [2], 4, (12, 6)),
        (8, 0.25, [3], [4], 2, (8, 16)),
        (8, 0.75, [2, 1], [2, 2], 2, (16, 8)),
    ],
)
def test_parity_with_oracle_for_other_configs(window_size, overlap_ratio, depths, num_heads, upscale, size):
    import hat_oracle

    cfg = dict(TINY_HAT, window_size=window_size, overlap_ratio=overlap_ratio, depths=depths,
               num_heads=num_heads, upscale=upscale, img_size=64)
    torch.manual_seed(1)
    net = _randomised(HAT(**cfg), seed=2)
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        out = net(x)
    expected = hat_oracle.hat_forward(net.state_dict(), cfg, x)
    assert (out - expected).abs().max().item() <= 1e-5


def test_fused_and_reference_paths_agree_with_batch_and_grad():
    torch.manual_seed(0)
    net = _randomised(HAT(**{**TINY_HAT, "window_size": 4}), seed=3).train()
    x = torch.rand(3, 3, 12, 8)
    grads = {}
    for impl in ("fused", "reference"):
        net.set_attention_impl(impl)
        net.zero_grad()
        torch.manual_seed(5)  # same drop-path draws
        out = net(x)
        out.square().mean().backward()
        grads[impl] = (out.detach(), {n: p.grad.clone() for n, p in net.named_parameters()})
    assert (grads["fused"][0] - grads["reference"][0]).abs().max() <= 1e-5
    for name, g in grads["fused"][1].items():
        assert torch.allclose(g, grads["reference"][1][name], atol=1e-5, rtol=1e-4), name


def test_cached_bias_follows_new_weights():
    net = HAT(**TINY_HAT).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        before = net(x)
        state = net.state_dict()
        for key in state:
            if key.endswith("relative_position_bias_table"):
                state[key] = torch.randn_like(state[key])  # a constant shift would cancel in softmax
        net.load_state_dict(state)
        after = net(x)
        net.set_attention_impl("reference")
        expected = net(x)
    assert not torch.allclose(before, after)
    assert (after - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("size", [(3, 5), (1, 1), (2, 9), (17, 6), (4, 4)])
def test_any_input_size_is_padded_and_cropped(size):
    net = HAT(**TINY_HAT).eval()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (1, 3, size[0] * 2, size[1] * 2)
    assert torch.isfinite(out).all()


def test_padding_equals_reflect_padding_where_reflect_works():
    from hatast.utils.padding import pad_to_multiple

    x = torch.rand(1, 3, 13, 10)
    ours = pad_to_multiple(x, 8)
    assert torch.equal(ours, torch.nn.functional.pad(x, (0, 6, 0, 3), mode="reflect"))
    tiny = pad_to_multiple(torch.arange(3.0).view(1, 1, 1, 3), 8)  # pad 5 > width 3
    assert tiny.shape == (1, 1, 8, 8)
    assert tiny[0, 0, 0].tolist() == [0, 1, 2, 1, 0, 1, 2, 1]
    assert torch.equal(tiny[0, 0], tiny[0, 0, :1].expand(8, 8))  # a single row is repeated


@pytest.mark.parametrize(
    "option, value, allowed",
    [("upsampler", "pixelshuffledirect", "pixelshuffle"), ("resi_connection", "3conv", "1conv, identity")],
)
def test_unsupported_options_raise_naming_allowed_values(option, value, allowed):
    with pytest.raises(ValueError, match=f"{option}='{value}'.*allowed values: {allowed}"):
        HAT(**{**TINY_HAT, option: value})


def test_other_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="upscale=5"):
        HAT(**{**TINY_HAT, "upscale": 5})
    with pytest.raises(ValueError, match="img_size"):
        HAT(**{**TINY_HAT, "img_size": 4})
    with pytest.raises(TypeError):
        HAT(**{**TINY_HAT, "windw_size": 8})


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    cfg = {**TINY_HAT, "drop_path_rate": 0.0}
    plain = _randomised(HAT(**cfg), seed=4).train()
    ckpt = HAT(**{**cfg, "use_checkpoint": True}).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 8, 8)
    for net in (plain, ckpt):
        net(x).mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name
