"""HAT-S + AST: the switchable OCAB (ASSA, FRFN, overlap), its maths, and the function-preserving conversion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_HAT

from hatast.archs.detect import detect
from hatast.archs.hat_arch import HAT, build_hat
from hatast.archs.hat_ast_arch import (
    FRFN,
    HATAST,
    AdaptiveOCAB,
    convert_hat_to_ast,
    gelu_inverse_of_one,
    hat_ast_config_from_state_dict,
    relu_squared_attention,
)


def _perturbed(net, scale=0.05, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return net.eval()


def test_softmax_mlp_half_overlap_is_exactly_hat():
    torch.manual_seed(0)
    hat = _perturbed(HAT(**TINY_HAT))
    ast = HATAST(**TINY_HAT, overlap_ratio=0.5, ocab_attention="softmax", ocab_ffn="mlp").eval()
    assert list(ast.state_dict()) == list(hat.state_dict())
    ast.load_state_dict(hat.state_dict(), strict=True)
    x = torch.rand(2, 3, 9, 14)
    with torch.no_grad():
        assert torch.equal(ast(x), hat(x))


@pytest.mark.parametrize("overlap, ows", [(0.75, 28), (0.5, 24), (1.0, 32)])
def test_overlap_ratio_sets_key_window(overlap, ows):
    with torch.device("meta"):
        net = HATAST(**{**TINY_HAT, "window_size": 16, "img_size": 64}, overlap_ratio=overlap)
    block = net.layers[0].residual_group.overlap_attn
    assert block.overlap_win_size == ows
    assert net.relative_position_index_OCA.shape == (256, ows * ows)
    assert block.relative_position_bias_table.shape == ((16 + ows - 1) ** 2, 2)


def _frfn_by_hand(m: FRFN, x, h, w):
    """FRFN written out with functional ops on NCHW maps."""
    b, n, c = x.shape
    img = x.transpose(1, 2).reshape(b, c, h, w)
    c4 = c // 4
    img = torch.cat([F.conv2d(img[:, :c4], m.partial_conv3.weight, padding=1), img[:, c4:]], 1)
    t = F.gelu(F.linear(img.flatten(2).transpose(1, 2), m.linear1[0].weight, m.linear1[0].bias))
    gate, value = t[..., : m.hidden_dim], t[..., m.hidden_dim:]
    gate = gate.transpose(1, 2).reshape(b, m.hidden_dim, h, w)
    gate = F.gelu(F.conv2d(gate, m.dwconv[0].weight, m.dwconv[0].bias, padding=1, groups=m.hidden_dim))
    return F.linear(gate.flatten(2).transpose(1, 2) * value, m.linear2[0].weight, m.linear2[0].bias)


@pytest.mark.parametrize("h, w", [(5, 9), (8, 8), (1, 7)])
def test_frfn_on_non_square_maps(h, w):
    torch.manual_seed(0)
    m = FRFN(16, 32)
    x = torch.randn(2, h * w, 16)
    assert torch.allclose(m(x, (h, w)), _frfn_by_hand(m, x, h, w), atol=1e-6)


def _assa_by_hand(q, k, v, bias, scale, w):
    s = (q * scale) @ k.transpose(-2, -1) + bias
    return (w * torch.softmax(s, -1) + (1 - w) * torch.relu(s) ** 2) @ v


@pytest.mark.parametrize("weighting", ["sigmoid", "softmax2"])
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_assa_matches_formula_and_gradients(weighting, impl):
    torch.manual_seed(0)
    block = AdaptiveOCAB(16, 4, 0.5, 2, attention="assa", ffn="mlp", assa_weighting=weighting,
                         assa_init_logit=0.7, key_position_bias=True)
    block.impl = impl
    with torch.no_grad():
        block.key_position_bias.normal_()
    q = torch.randn(3, 2, 16, 8, requires_grad=True)  # 3 windows, 2 heads, 4x4 queries, 6x6 keys
    k, v = torch.randn(3, 2, 36, 8, requires_grad=True), torch.randn(3, 2, 36, 8, requires_grad=True)
    bias = torch.randn(1, 2, 16, 36, requires_grad=True)
    out = block.attend(q, k, v, bias)
    w = block.assa.dense_weight()
    assert abs(w.item() - torch.sigmoid(torch.tensor(0.7)).item()) < 1e-6
    expected = _assa_by_hand(q, k, v, bias + block.key_position_bias[None, :, None, :], block.scale, w)
    assert torch.allclose(out, expected, atol=1e-5)
    grad = torch.randn_like(out)
    leaves = [q, k, v, bias, block.key_position_bias, *block.assa.parameters()]
    ours = torch.autograd.grad(out, leaves, grad)
    theirs = torch.autograd.grad(expected, leaves, grad)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_sparse_branch_in_chunks_equals_whole(monkeypatch):
    import hatast.archs.hat_ast_arch as mod

    q, k, v = torch.randn(10, 2, 16, 8), torch.randn(10, 2, 36, 8), torch.randn(10, 2, 36, 8)
    bias = torch.randn(1, 2, 16, 36)
    whole = relu_squared_attention(q, k, v, bias, 0.3)
    monkeypatch.setattr(mod, "_SPARSE_CHUNK_ELEMENTS", 2 * 16 * 36 * 3)  # 3 windows at a time
    assert torch.allclose(relu_squared_attention(q, k, v, bias, 0.3), whole, atol=1e-6)


def test_unknown_switch_values_are_rejected():
    with pytest.raises(ValueError, match="ocab_attention='sparse'.*allowed values: softmax, assa"):
        HATAST(**TINY_HAT, ocab_attention="sparse")
    with pytest.raises(ValueError, match="ocab_ffn='glu'.*allowed values: mlp, frfn"):
        HATAST(**TINY_HAT, ocab_ffn="glu")
    with pytest.raises(ValueError, match="assa_weighting"):
        HATAST(**TINY_HAT, assa_weighting="tanh")


def test_gelu_inverse_of_one():
    b = gelu_inverse_of_one()
    assert abs(F.gelu(torch.tensor(b, dtype=torch.float64)).item() - 1) < 1e-12


@pytest.fixture(scope="module")
def hat_s():
    torch.manual_seed(0)
    return build_hat("HAT-S", 4).eval()


def _convert_and_compare(hat, x, **options) -> float:
    state, config = convert_hat_to_ast(hat.state_dict(), **options)
    ast = HATAST(**config).eval()
    ast.load_state_dict(state, strict=True)
    with torch.no_grad():
        return (hat(x) - ast(x)).abs().max().item()


def test_converted_hat_s_computes_the_same_function(hat_s):
    """The acceptance check: random HAT-S -> HAT-S+AST (ASSA, FRFN, overlap 0.75), outputs within 1e-3."""
    x = torch.rand(1, 3, 32, 40)
    assert _convert_and_compare(hat_s, x) <= 1e-3


@pytest.mark.parametrize("options", [
    dict(ocab_attention="softmax", ocab_ffn="frfn", overlap_ratio=0.5),
    dict(ocab_attention="softmax", ocab_ffn="mlp", overlap_ratio=0.75, border_key_bias=-30.0),
    dict(ocab_attention="assa", ocab_ffn="mlp", overlap_ratio=0.5, assa_weighting="softmax2"),
])
def test_each_conversion_step_is_near_exact(options):
    """FRFN and the table remap are exact up to float rounding; ASSA up to its 1 - w."""
    torch.manual_seed(0)
    hat = _perturbed(HAT(**{**TINY_HAT, "window_size": 8, "img_size": 64, "depths": [2, 2],
                            "num_heads": [2, 2]}))
    x = torch.rand(1, 3, 16, 24)
    assert _convert_and_compare(hat, x, **options) <= 1e-4


def test_conversion_with_large_logits(hat_s):
    """With weights perturbed so attention logits are large (as in trained networks), the default start still
    stays within 1e-3; the unnormalised squared-ReLU branch is why the default logit is high."""
    hat = _perturbed(build_hat("HAT-S", 4))
    x = torch.rand(1, 3, 32, 32)
    assert _convert_and_compare(hat, x) <= 1e-3
    assert _convert_and_compare(hat, x, assa_init_logit=8.0) > 1e-2  # a lower start is visibly off


def test_conversion_rejects_narrower_overlap_and_converted_input():
    state = HAT(**{**TINY_HAT, "window_size": 8, "img_size": 64, "overlap_ratio": 0.5}).state_dict()
    with pytest.raises(ValueError, match="narrower"):
        convert_hat_to_ast(state, overlap_ratio=0.25)
    converted, _ = convert_hat_to_ast(state)
    with pytest.raises(ValueError, match="already HAT\\+AST"):
        convert_hat_to_ast(converted)


def test_state_dict_detection_round_trip():
    for options in (dict(), dict(ocab_attention="softmax", key_position_bias=True),
                    dict(ocab_ffn="mlp", assa_weighting="softmax2")):
        net = HATAST(**{**TINY_HAT, "window_size": 8, "img_size": 64}, **options)
        config = hat_ast_config_from_state_dict(net.state_dict())
        described = detect(net.state_dict())
        assert described.name == "HATAST" and isinstance(described.network, HATAST)
        described.network.load_state_dict(net.state_dict(), strict=True)
        assert config["overlap_ratio"] == 0.75
    plain = detect(HAT(**TINY_HAT).state_dict())
    assert plain.name == "HAT" and type(plain.network) is HAT


def test_convert_cli(tmp_path, capsys):
    from hatast.cli.convert_ast import main

    torch.manual_seed(0)
    src = HAT(**{**TINY_HAT, "window_size": 8, "img_size": 64})
    torch.save({"params_ema": src.state_dict()}, tmp_path / "hat.pth")
    assert main([str(tmp_path / "hat.pth"), str(tmp_path / "ast.pth"), "--check-size", "24"]) == 0
    out = capsys.readouterr().out
    deviation = float(out.split("photo crop: ")[1].split()[0])
    assert deviation <= 1e-3 and "type: HATAST" in out and "key_position_bias: true" in out
    saved = torch.load(tmp_path / "ast.pth", weights_only=True)
    assert set(saved) == {"params", "params_ema"}


def test_descriptors_say_what_running_a_network_takes():
    """Each family's descriptor: scale, size multiple, tiling, dtypes, extra inputs; recognition needs the whole
    key set, not one or two keys."""
    from hatast.archs.detect import describe
    from hatast.archs.srlut_arch import SRLUTNet

    hat = detect(HAT(**{**TINY_HAT, "upscale": 3}).state_dict())
    assert (hat.scale, hat.size_multiple, hat.tiling, hat.extra_inputs) == (3, 4, "exact", ())
    assert hat.dtypes == ("float32", "bfloat16", "float16")
    lut = describe(SRLUTNet("S", 2))
    assert (lut.name, lut.scale, lut.size_multiple) == ("SRLUTNet", 2, 1)
    state = HAT(**TINY_HAT).state_dict()
    del state["conv_after_body.weight"]
    with pytest.raises(ValueError, match="match none of the architectures"):
        detect(state)
    with pytest.raises(ValueError, match="takes lq; unexpected kernel"):
        hat(torch.rand(1, 3, 8, 8), kernel=torch.rand(5, 5))
    with pytest.raises(ValueError, match="not an architecture hatast describes"):
        describe(torch.nn.Conv2d(3, 3, 3))
