"""Time and peak memory of HAT-S's overlapping cross-attention block with softmax attention vs ASSA.

ASSA adds a squared-ReLU attention map to the softmax one: ``w * SDPA(q, k, v, B) + (1 - w) * ReLU(S)^2 v``, with
``S`` the only extra attention-sized tensor (the softmax part stays in the fused kernel). Cases, for HAT-S's OCAB
(144 channels, 6 heads, window 16, overlap 0.75 so keys come from 28x28 windows) on a 64x64 feature map:

* ``attention``: the attention computation alone (bias lookup to attention output);
* ``OCAB forward``: the whole block in inference;
* ``OCAB forward+backward``: one training step's worth of the block (gradients of input and weights).

Usage: ``python benchmarks/bench_assa.py [--rounds 3] [--runs 3] [--size 64]`` (see ``hatast/eval/timing.py``).
"""

from __future__ import annotations

from hatast.eval.timing import compare, time_and_peak

CASES = ["attention", "OCAB forward", "OCAB forward+backward"]


def worker(case: str, path: str, runs: int, size: int, threads: int) -> dict:
    import torch

    from hatast.archs.attention import overlap_relative_position_index, shifted_window_mask
    from hatast.archs.hat_arch import WindowContext
    from hatast.archs.hat_ast_arch import AdaptiveOCAB

    dim, ws, heads = 144, 16, 6
    block = AdaptiveOCAB(dim, ws, 0.75, heads, attention=path, ffn="mlp", assa_init_logit=0.0)
    ctx = WindowContext((size, size), torch.zeros(0, dtype=torch.long),
                        overlap_relative_position_index(ws, block.overlap_win_size),
                        shifted_window_mask(size, size, ws, ws // 2))
    tokens = torch.randn(1, size * size, dim)
    if case == "attention":
        windows, nq, nk = (size // ws) ** 2, ws * ws, block.overlap_win_size ** 2
        q = torch.randn(windows, heads, nq, dim // heads)
        k, v = torch.randn(windows, heads, nk, dim // heads), torch.randn(windows, heads, nk, dim // heads)
        block.eval()

        def call():
            bias = block.bias_lookup(block.relative_position_bias_table, ctx.index_oca)
            return block.attend(q, k, v, bias)
    elif case == "OCAB forward":
        block.eval()

        def call():
            return block(tokens, ctx)
    else:
        block.train()
        x = tokens.clone().requires_grad_()

        def call():
            block.zero_grad(set_to_none=True)
            block(x, ctx).square().mean().backward()

        return time_and_peak(call, runs)
    with torch.inference_mode():
        return time_and_peak(call, runs)


if __name__ == "__main__":
    compare(__file__, "HAT-S OCAB (overlap 0.75), softmax vs ASSA", CASES, ("softmax", "assa"), worker)
