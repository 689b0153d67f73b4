"""BicubicDownsampleDataset: LR made per crop, or once per whole image and kept in memory (``cache: true``)."""

from __future__ import annotations

import numpy as np
import torch

from hatast.data.bicubic_dataset import BicubicDownsampleDataset


def _dataset(folders, phase: str, **extra) -> BicubicDownsampleDataset:
    opt = {"name": "tiny", "dataroot_gt": str(folders["train"]), "scale": 2, "phase": phase, "gt_size": 16,
           "use_hflip": True, "use_rot": True, **extra}
    return BicubicDownsampleDataset(opt)


def _position(big: torch.Tensor, small: torch.Tensor) -> list[tuple[int, int]]:
    """Every (top, left) where ``small`` [C, h, w] occurs in ``big`` [C, H, W]."""
    h, w = small.shape[-2:]
    return [(y, x) for y in range(big.shape[1] - h + 1) for x in range(big.shape[2] - w + 1)
            if torch.equal(big[:, y:y + h, x:x + w], small)]


def test_cached_crops_are_aligned_pairs_of_the_whole_image_downsampling(image_folders):
    cached = _dataset(image_folders, "train", cache=True, use_hflip=False, use_rot=False)
    whole = _dataset(image_folders, "val")  # whole image, LR made from it: what the cache holds
    for index in range(len(cached)):
        sample, reference = cached[index], whole[index]
        assert sample["lq"].shape == (3, 8, 8) and sample["gt"].shape == (3, 16, 16)
        spots = _position(reference["lq"], sample["lq"])
        assert spots, "the LR crop is not a crop of the whole image's LR"
        assert any(torch.equal(reference["gt"][:, 2 * y:2 * y + 16, 2 * x:2 * x + 16], sample["gt"]) for y, x in spots)


def test_cache_survives_in_place_augmentation_and_matches_the_uncached_validation(image_folders):
    cached = _dataset(image_folders, "train", cache=True)
    before = [(hr.copy(), lr.copy()) for hr, lr in cached.cached]
    for _ in range(20):
        for index in range(len(cached)):
            cached[index]
    assert all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(before, cached.cached))

    val_cached, val = _dataset(image_folders, "val", cache=True), _dataset(image_folders, "val")
    for index in range(len(val)):
        assert torch.equal(val_cached[index]["lq"], val[index]["lq"])
        assert torch.equal(val_cached[index]["gt"], val[index]["gt"])
