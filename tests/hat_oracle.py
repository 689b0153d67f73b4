"""An independent, deliberately plain HAT forward pass, used as a test oracle.

It shares no code with ``hatast.archs``: every window is visited in a Python loop, token coordinates are explicit,
and each bias index is computed pair by pair from the authors' formulas. It is anchored to the HAT authors' code
by the reference fixture (``tests/test_hat_parity.py`` checks it reproduces ``hat_small_x4.pth``), and then stands
in for the authors' code on configurations the fixture does not cover (other window sizes, depths, heads, overlap
ratios). Slow: meant for inputs of a few dozen pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MEAN = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)


def _linear(x, sd, name):
    return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))


def _ln(x, sd, name):
    return F.layer_norm(x, x.shape[-1:], sd[name + ".weight"], sd[name + ".bias"], eps=1e-5)


def _conv(x, sd, name):
    w = sd[name + ".weight"]
    return F.conv2d(x, w, sd[name + ".bias"], padding=w.shape[-1] // 2)


def _attend(q, k, v, bias, heads):
    """q [Nq, C], k/v [Nk, C], bias [heads, Nq, Nk] -> [Nq, C], one head at a time."""
    d = q.shape[1] // heads
    out = []
    for h in range(heads):
        sl = slice(h * d, (h + 1) * d)
        logits = (q[:, sl] * d ** -0.5) @ k[:, sl].T + bias[h]
        out.append(torch.softmax(logits, -1) @ v[:, sl])
    return torch.cat(out, 1)


def _hab(x, sd, p, ws, shift, heads, conv_scale):
    """x [H, W, C] (one image)."""
    H, W, C = x.shape
    y = _ln(x, sd, p + "norm1")
    conv = _conv(y.permute(2, 0, 1)[None], sd, p + "conv_block.cab.0")
    conv = _conv(F.gelu(conv), sd, p + "conv_block.cab.2")
    pooled = conv.mean((2, 3), keepdim=True)
    att = torch.sigmoid(_conv(F.relu(_conv(pooled, sd, p + "conv_block.cab.3.attention.1")), sd,
                              p + "conv_block.cab.3.attention.3"))
    conv = (conv * att)[0].permute(1, 2, 0)

    qkv = _linear(y, sd, p + "attn.qkv")
    table = sd[p + "attn.relative_position_bias_table"]
    out = torch.zeros(H, W, C)
    # Work in rolled coordinates r = (original - shift) mod size; a window is a ws x ws block of them.
    def region(r, size):
        return 0 if r < size - ws else (1 if r < size - shift else 2)
    for wi in range(H // ws):
        for wj in range(W // ws):
            cells = [(wi * ws + a, wj * ws + b) for a in range(ws) for b in range(ws)]
            orig = [((r + shift) % H, (c + shift) % W) for r, c in cells]
            feats = torch.stack([qkv[i, j] for i, j in orig])
            q, k, v = feats[:, :C], feats[:, C:2 * C], feats[:, 2 * C:]
            rows = torch.tensor([r for r, _ in cells])
            cols = torch.tensor([c for _, c in cells])
            dy = rows[:, None] - rows[None, :] + ws - 1
            dx = cols[:, None] - cols[None, :] + ws - 1
            bias = table[dy * (2 * ws - 1) + dx].permute(2, 0, 1)
            if shift:
                label = torch.tensor([3 * region(r, H) + region(c, W) for r, c in cells])
                bias = bias + (label[:, None] != label[None, :]) * -100.0
            res = _linear(_attend(q, k, v, bias, heads), sd, p + "attn.proj")
            for idx, (i, j) in enumerate(orig):
                out[i, j] = res[idx]
    x = x + out + conv * conv_scale
    hidden = F.gelu(_linear(_ln(x, sd, p + "norm2"), sd, p + "mlp.fc1"))
    return x + _linear(hidden, sd, p + "mlp.fc2")


def _ocab(x, sd, p, ws, ows, heads):
    H, W, C = x.shape
    y = _ln(x, sd, p + "norm1")
    qkv = _linear(y, sd, p + "qkv")
    table = sd[p + "relative_position_bias_table"]
    side = ws + ows - 1
    half = (ows - ws) // 2
    out = torch.zeros(H, W, C)
    for wi in range(H // ws):
        for wj in range(W // ws):
            qcells = [(wi * ws + a, wj * ws + b) for a in range(ws) for b in range(ws)]
            kcells = [(wi * ws - half + a, wj * ws - half + b) for a in range(ows) for b in range(ows)]
            q = torch.stack([qkv[i, j, :C] for i, j in qcells])
            kv = torch.stack([qkv[i, j, C:] if 0 <= i < H and 0 <= j < W else torch.zeros(2 * C)
                              for i, j in kcells])
            # the authors measure each offset from its own window's corner
            qy = torch.tensor([i - wi * ws for i, _ in qcells])
            qx = torch.tensor([j - wj * ws for _, j in qcells])
            ky = torch.tensor([i - (wi * ws - half) for i, _ in kcells])
            kx = torch.tensor([j - (wj * ws - half) for _, j in kcells])
            dy = ky[None, :] - qy[:, None] + ws - ows + 1
            dx = kx[None, :] - qx[:, None] + ws - ows + 1
            bias = table[(dy * side + dx) % (side * side)].permute(2, 0, 1)
            res = _attend(q, kv[:, :C], kv[:, C:], bias, heads)
            for idx, (i, j) in enumerate(qcells):
                out[i, j] = res[idx]
    x = _linear(out, sd, p + "proj") + x
    hidden = F.gelu(_linear(_ln(x, sd, p + "norm2"), sd, p + "mlp.fc1"))
    return x + _linear(hidden, sd, p + "mlp.fc2")


@torch.no_grad()
def hat_forward(sd: dict, cfg: dict, img: torch.Tensor) -> torch.Tensor:
    """HAT on one image ``[1, 3, H, W]`` (H, W multiples of the window) from a state dict and its config."""
    ws = cfg["window_size"]
    ows = ws + int(ws * cfg["overlap_ratio"])
    scale = cfg["upscale"]
    x = (img - MEAN) * cfg.get("img_range", 1.0)
    x = _conv(x, sd, "conv_first")
    feat = _ln(x[0].permute(1, 2, 0), sd, "patch_embed.norm")
    for i, (depth, heads) in enumerate(zip(cfg["depths"], cfg["num_heads"])):
        group_in = feat
        for j in range(depth):
            feat = _hab(feat, sd, f"layers.{i}.residual_group.blocks.{j}.", ws, 0 if j % 2 == 0 else ws // 2, heads,
                        cfg.get("conv_scale", 0.01))
        feat = _ocab(feat, sd, f"layers.{i}.residual_group.overlap_attn.", ws, ows, heads)
        feat = _conv(feat.permute(2, 0, 1)[None], sd, f"layers.{i}.conv")[0].permute(1, 2, 0) + group_in
    feat = _ln(feat, sd, "norm").permute(2, 0, 1)[None]
    x = _conv(feat, sd, "conv_after_body") + x
    x = F.leaky_relu(_conv(x, sd, "conv_before_upsample.0"), 0.01)
    if scale == 3:
        x = F.pixel_shuffle(_conv(x, sd, "upsample.0"), 3)
    else:
        for n in range(int(math.log2(scale))):
            x = F.pixel_shuffle(_conv(x, sd, f"upsample.{2 * n}"), 2)
    x = _conv(x, sd, "conv_last")
    return x / cfg.get("img_range", 1.0) + MEAN
