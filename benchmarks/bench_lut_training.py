"""Cost of one training iteration of SR-LUT: the net (stage 1) against LUT-aware fine-tuning of its table (stage 2).

One iteration = forward with the rotation ensemble, MSE against the HR crops, backward, Adam step, on a batch of 16
RGB 48x48 LR crops (x4 -> 192x192), the table stage's batch. The net is ``SRLUTNet`` (1x2/1x3/2x2 convolution, four
64-channel 1x1 convolutions, pixel shuffle); the table is ``LUTNet`` with its float entries, through the fused CPU
kernels ("table") or the vectorised torch path that autograd differentiates ("table (torch path)" cases, the
fallback without numba and the GPU path). Crops come from a photograph so that interpolation weights have the
zeros and ties of real images.

Usage: ``python benchmarks/bench_lut_training.py [--rounds 3] [--runs 5] [--threads 2]``
(see ``hatast/eval/timing.py``).
"""

from __future__ import annotations

from hatast.eval.timing import compare, time_and_peak

CASES = ["S x4", "F x4", "V x4", "S x4, table on the torch path"]
INTERVAL = {"V": 0, "F": 4, "S": 4}
BATCH, CROP, SCALE = 16, 48, 4


def batch():
    """LR crops of a photograph, ``[16, 3, 48, 48]`` in [0, 1], and their HR crops (bicubic suffices for a timing)."""
    import cv2
    import numpy as np
    import skimage.data
    import torch

    image = skimage.data.astronaut()
    rng = np.random.default_rng(0)
    hr, lr = [], []
    for _ in range(BATCH):
        y, x = rng.integers(0, image.shape[0] - CROP * SCALE, 2)
        crop = image[y:y + CROP * SCALE, x:x + CROP * SCALE]
        hr.append(crop)
        lr.append(cv2.resize(crop, (CROP, CROP), interpolation=cv2.INTER_CUBIC))
    def to_tensor(images):
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return to_tensor(lr), to_tensor(hr)


def worker(case: str, path: str, runs: int, size: int, threads: int) -> dict:
    import numba
    import torch

    from hatast.archs.lut_arch import LUTNet
    from hatast.archs.srlut_arch import SRLUTNet

    numba.set_num_threads(threads)
    kind = case[0]
    net = SRLUTNet(kind, SCALE)
    if path == "table":
        with torch.no_grad():
            table = net.to_table(INTERVAL[kind])
        net = LUTNet(kind=kind, upscale=SCALE, interval=INTERVAL[kind], fused="torch path" not in case)
        with torch.no_grad():
            net.entries.copy_(torch.from_numpy(table.entries.astype("float32")))
        lr = 0.5
    else:
        lr = 1e-3
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr)
    lq, gt = batch()

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(lq), gt)
        loss.backward()
        optimizer.step()
        return loss.item()

    return time_and_peak(step, runs)


if __name__ == "__main__":
    compare(__file__, "SR-LUT training iteration (forward, backward, Adam), batch 16", CASES, ("net", "table"), worker,
            input_label=f"{CROP}x{CROP} -> {CROP * SCALE}x{CROP * SCALE}")
