"""Tiled inference: equal to whole-image inference given enough context, blended seams, named failures."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_HAT

from hatast.archs.hat_arch import HAT
from hatast.utils.tiling import TileError, tiled_forward


@pytest.fixture(scope="module")
def hat():
    torch.manual_seed(0)
    return HAT(**TINY_HAT).eval()


def test_tiled_equals_untiled_with_enough_context(hat):
    x = torch.rand(1, 3, 36, 44)
    with torch.no_grad():
        whole = hat(x)
        tiled = tiled_forward(hat, x, scale=2, tile_size=16, tile_pad=32, multiple=hat.window_size)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() <= 1e-5


def _local(x):
    """A network with a 1-pixel receptive field radius: nearest x2 then a 3x3 box filter at LR."""
    return F.interpolate(F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1), scale_factor=2)


def test_tiled_equals_untiled_for_local_network_everywhere():
    x = torch.rand(2, 3, 30, 21)
    assert torch.allclose(tiled_forward(_local, x, 2, tile_size=8, tile_pad=2), _local(x), atol=1e-6)


def test_seams_are_blended_and_interiors_untouched():
    x = torch.arange(32.0).expand(1, 1, 32, 32)  # each pixel holds its column

    def tile_id(t):  # each tile paints one constant (its first column): seams show how tiles are mixed
        return torch.full((1, 1, t.shape[-2] * 2, t.shape[-1] * 2), t[0, 0, 0, 0].item() + 1)

    out = tiled_forward(tile_id, x, 2, tile_size=16, tile_pad=8)[0, 0]
    left, right = out[0, 0].item(), out[0, -1].item()
    row = out[0]
    assert left != right
    assert torch.all(row[:16] == left) and torch.all(row[-16:] == right)  # > radius*scale from the seam
    seam = row[24:40]  # the ramp: monotone between the two tile values
    assert torch.all(seam[1:] <= seam[:-1] + 1e-6) if left > right else torch.all(seam[1:] >= seam[:-1] - 1e-6)
    assert seam.min() > min(left, right) and seam.max() < max(left, right)


def test_failing_tile_is_named():
    def fails_on_second_row(t):
        if t[0, 0, 0, 0] == 12:  # the first input row of the second tile row
            raise ValueError("boom")
        return _local(t)

    x = torch.arange(32.0)[:, None].expand(1, 1, 32, 16)  # each pixel holds its row
    expected = r"tile \(1, 0\) of 2x1 \(input rows 12:32, cols 0:16\) failed: ValueError: boom"
    with pytest.raises(TileError, match=expected):
        tiled_forward(fails_on_second_row, x, 2, tile_size=16, tile_pad=4)


def test_out_of_memory_tile_retries_at_half_size(hat, caplog):
    calls = []

    def limited(t):
        calls.append(tuple(t.shape[-2:]))
        if max(t.shape[-2:]) > 24:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return hat(t)

    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        retried = tiled_forward(limited, x, 2, tile_size=32, tile_pad=8, multiple=4)
        half = tiled_forward(hat, x, 2, tile_size=16, tile_pad=8, multiple=4)
    assert calls[0] == (32, 32) and max(max(c) for c in calls[1:]) <= 24
    assert "retrying it as tiles of 16" in caplog.text
    assert torch.equal(retried, half)


def test_out_of_memory_at_smallest_tile_raises():
    def always_oom(t):
        raise torch.OutOfMemoryError("out of memory")

    with pytest.raises(TileError, match="ran out of memory even at tile size 4"):
        tiled_forward(always_oom, torch.rand(1, 1, 8, 8), 2, tile_size=8, tile_pad=0, multiple=4)
