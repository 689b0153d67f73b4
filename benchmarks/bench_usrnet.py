"""Time and peak memory of hatast's USRNet against a straightforward implementation of the same equations.

``straightforward``: :func:`hatast.archs.usrnet_arch.reference_forward`, the equations written as the authors write
them (transfer function, ``|FB|^2`` and ``F(S^T y)`` recomputed in every iteration, the ``s x s`` block stack
materialised and tiled back with ``repeat``), run under ``torch.no_grad`` with the prior as an ordinary module.
``hatast``: ``USRNet.forward`` under ``torch.inference_mode`` (the Fourier terms once per forward, block means
on views, the prior's optimisations). Both compute the same output (the tests hold them to 1e-5).

Cases (x4, a 64x64 LR so a 256x256 output, a 25x25 kernel, noise 2.55/255):

* ``USRNet inference``: the full model (n_iter 8, nc 64-512, nb 2; 17.0 M parameters);
* ``USRNet-tiny inference``: n_iter 6, h_nc 32, nc 16-64 (0.59 M parameters);
* ``USRNet training step`` / ``USRNet-tiny training step``: forward, L1 loss, backward and Adam at the recipes'
  default batch (``batch_size_per_gpu: 48`` HR crops of 96 in ``train_USRNet_SRx1234.yml`` and
  ``train_USRNet-tiny_SRx1234.yml``, x4, one kernel and noise level per sample), where both paths keep autograd.
  The full model's step takes minutes and about 15 GiB here: it is timed without a warm-up call (both paths alike;
  the first call's set-up, mostly page faults, is a small share of minutes) and the README runs it with one run.

Usage: ``python benchmarks/bench_usrnet.py [--rounds 3] [--runs 3] [--threads 2] [--cases ...]``
(``hatast/eval/timing.py``). The README's figures come from
``--cases "USRNet inference" "USRNet-tiny inference" "USRNet-tiny training step"`` with the defaults and
``--cases "USRNet training step" --rounds 1 --runs 1``.
"""

from __future__ import annotations

from hatast.eval.timing import compare, time_and_peak

CASES = ["USRNet inference", "USRNet-tiny inference", "USRNet training step", "USRNet-tiny training step"]
TRAIN_BATCH, TRAIN_HR = 48, 96  # the recipes' batch_size_per_gpu and gt_size
TINY = dict(n_iter=6, h_nc=32, nc=[16, 32, 64, 64], nb=2)


def worker(case: str, path: str, runs: int, size: int, threads: int) -> dict:
    import torch

    import hatast.models  # noqa: F401  (registers the architectures; the timer imports nothing of BasicSR)
    from hatast.archs.usrnet_arch import USRNet, reference_forward

    net = USRNet() if case.startswith("USRNet ") else USRNet(**TINY)
    kernel = torch.rand(1, 1, 25, 25)
    kernel /= kernel.sum()
    if case.endswith("training step"):
        batch, hr = TRAIN_BATCH, TRAIN_HR
        lq, gt = torch.rand(batch, 3, hr // 4, hr // 4), torch.rand(batch, 3, hr, hr)
        kernels = torch.rand(batch, 1, 25, 25)
        kernels /= kernels.sum(dim=(-2, -1), keepdim=True)
        sigma = torch.rand(batch) * 0.1
        optimizer = torch.optim.Adam(net.parameters(), 1e-4)
        net.train()

        def call():
            optimizer.zero_grad(set_to_none=True)
            out = net(lq, kernels, sigma, 4) if path == "hatast" else reference_forward(net, lq, kernels, sigma, 4)
            (out - gt).abs().mean().backward()
            optimizer.step()

        return time_and_peak(call, runs, warmup=case.startswith("USRNet-tiny"))
    net.eval()
    lq = torch.rand(1, 3, size, size)
    sigma = torch.tensor([2.55 / 255])
    if path == "hatast":
        with torch.inference_mode():
            return time_and_peak(lambda: net(lq, kernel, sigma, 4), runs)
    with torch.no_grad():
        return time_and_peak(lambda: reference_forward(net, lq, kernel, sigma, 4), runs)


if __name__ == "__main__":
    compare(__file__, "USRNet: straightforward equations vs hatast (x4)", CASES, ("straightforward", "hatast"),
            worker, input_label="64x64 LR -> 256x256")
