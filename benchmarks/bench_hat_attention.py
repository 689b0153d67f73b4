"""Speed and peak memory of HAT's attention: SDPA path vs the straightforward softmax(QK^T+B)V path.

Both paths are the same code with the same weights (``set_attention_impl``): ``reference`` computes the attention
matrix explicitly and rebuilds the bias and shift mask every call, as the authors' code does; ``fused`` uses
``scaled_dot_product_attention`` with cached bias and masks. Measured at HAT-S x4 sizes for a 64x64 input, at three
levels:

* ``attention``: the attention itself, ``softmax(q k^T * s + B) v`` for the 16 windows of a 64x64 map, for the three
  kinds in HAT-S: window self-attention (W-MSA), shifted windows with the mask (SW-MSA), and overlapping
  cross-attention (OCA, 16x16 queries against 24x24 keys);
* ``module``: the whole modules around them: W-MSA and SW-MSA with their qkv/output projections, and the OCAB block
  (projections, layer norms and MLP included) - the parts that are not attention are identical in both paths;
* ``network``: HAT-S x4, 64x64 -> 256x256.

Each measurement runs in its own process, alternating the two paths for several rounds; the table shows medians.
Time and memory are measured in separate processes: peak memory is the rise of the process's resident-set
high-water mark (Linux ``VmHWM``, reset before each call) over its size before the call, with glibc's malloc made to
return large blocks at once, a setting that slows allocation and so is not used for the timings. Usage::

    python benchmarks/bench_hat_attention.py [--rounds 3] [--runs 3] [--threads 2] [--size 64]
"""

from __future__ import annotations

from hatast.eval.timing import compare, time_and_peak

CASES = ["attention W-MSA", "attention SW-MSA", "attention OCA", "module W-MSA", "module SW-MSA", "module OCAB",
         "network HAT-S x4 (attention only)", "network HAT-S x4"]


def _attention_case(kind: str, net, size: int, impl: str):
    """q, k, v, bias of one attention call of HAT-S's first group, and a function that runs it."""
    import torch

    from hatast.archs.attention import shifted_window_attention, shifted_window_mask, window_attention

    ws, heads, d = net.window_size, 6, 24
    windows = (size // ws) ** 2
    group = net.layers[0].residual_group
    if kind == "OCA":
        table, index = group.overlap_attn.relative_position_bias_table, net.relative_position_index_OCA
        nk = group.overlap_attn.overlap_win_size ** 2
    else:
        table, index = group.blocks[0].attn.relative_position_bias_table, net.relative_position_index_SA
        nk = ws * ws
    q = torch.randn(windows, heads, ws * ws, d)
    k, v = torch.randn(windows, heads, nk, d), torch.randn(windows, heads, nk, d)
    scale = d ** -0.5

    def bias():  # the reference gathers the table every call, the fused path caches it
        return group.blocks[0].attn.bias_lookup(table, index) if impl == "fused" else \
            table[index.reshape(-1)].view(*index.shape, -1).permute(2, 0, 1).unsqueeze(0)

    if kind == "SW-MSA":
        shift = shifted_window_mask(size, size, ws, ws // 2)
        if impl == "reference":
            return lambda: window_attention(q, k, v, bias() + shift.dense(), scale, "reference")
        return lambda: shifted_window_attention(q, k, v, bias(), shift, scale, "fused")
    return lambda: window_attention(q, k, v, bias(), scale, impl)


def _attention_share(net, x, runs: int) -> dict:
    """Time spent inside the attention computations (profiler label) during whole-network forwards."""
    import torch

    from hatast.archs.attention import ATTENTION_LABEL

    times = []
    with torch.inference_mode():
        net(x)
        for _ in range(runs):
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                net(x)
            times.append(sum(e.cpu_time_total for e in prof.events() if e.name == ATTENTION_LABEL) / 1000)
    return {"times_ms": times, "peaks_mib": []}


def worker(case: str, impl: str, runs: int, size: int, threads: int) -> dict:
    """Run inside the child process: time and peak memory of ``runs`` calls (after one warm-up)."""
    import torch

    from hatast.archs.attention import shifted_window_mask, window_partition
    from hatast.archs.hat_arch import WindowContext, build_hat

    net = build_hat("HAT-S", 4).eval()
    net.set_attention_impl(impl)
    level, kind = case.split(" ", 1)
    dim, ws = 144, net.window_size
    if level == "network":
        x = torch.rand(1, 3, size, size)
        call = lambda: net(x)  # noqa: E731
        if kind.endswith("(attention only)"):
            return _attention_share(net, x, runs)
    elif level == "attention":
        call = _attention_case(kind, net, size, impl)
    else:
        block = net.layers[0].residual_group
        feat = torch.randn(1, size, size, dim)
        if kind in ("W-MSA", "SW-MSA"):
            attn = block.blocks[0 if kind == "W-MSA" else 1].attn
            windows = window_partition(feat, ws)
            shift = shifted_window_mask(size, size, ws, ws // 2) if kind == "SW-MSA" else None
            index = net.relative_position_index_SA
            call = lambda: attn(windows, index, shift)  # noqa: E731
        else:
            ctx = WindowContext((size, size), net.relative_position_index_SA, net.relative_position_index_OCA,
                                shifted_window_mask(size, size, ws, ws // 2))
            tokens = feat.view(1, size * size, dim)
            call = lambda: block.overlap_attn(tokens, ctx)  # noqa: E731
    with torch.inference_mode():
        return time_and_peak(call, runs)


if __name__ == "__main__":
    compare(__file__, "HAT-S attention, reference vs fused", CASES, ("reference", "fused"), worker,
            no_memory=("network HAT-S x4 (attention only)",))
