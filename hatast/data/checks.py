"""Dataset checks that run before training or testing, so bad data stops a run at once instead of giving wrong
numbers at its end.

BasicSR pairs HR and LR images by name and, at validation, crops the HR image to LR x scale; LR images of the wrong
size (another scale's data, the HR copied twice) therefore give a PSNR without a word of warning. These checks read
each image's header only (no decoding) and report the first problem as one line naming the file and the counts:

* HR and LR sets pair one to one by name, exactly as BasicSR pairs them (``filename_tmpl``, ``meta_info_file``,
  LMDB ``meta_info.txt``), and hold images only;
* every LR image is the size that goes with its HR image at the scale (:func:`lr_size_problem`, by the one rule
  :func:`hatast.data.degradations.lr_size`: the HR size divided by the scale, rounded down as after a mod-crop);
* training images are at least one training crop in size.

Each checker returns the problem in words (prefixed by the option key it concerns), or None. ``DATASET_CHECKS`` maps
a dataset ``type`` to its checker; a new dataset class adds its entry here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ..utils.image import IMAGE_EXTENSIONS, image_header

_LMDB_LINE = re.compile(r"^(?P<name>\S+)\s+\((?P<h>\d+),\s*(?P<w>\d+)(?:,\s*\d+)?\)")


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(height, width) of an image as BasicSR will decode it (EXIF rotation included), from its header; None when
    the file is not a readable image."""
    header = image_header(path)
    if header is None:  # a format Pillow does not read: decode it
        import cv2
        import numpy as np

        try:
            data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        except (OSError, cv2.error):
            return None
        return None if data is None else (data.shape[0], data.shape[1])
    height, width, orientation = header
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def _files(folder: str) -> list[str]:
    """The files BasicSR's ``scandir`` lists: every non-hidden file directly in ``folder``, sorted."""
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith("."))


def _lmdb_sizes(folder: str) -> dict[str, tuple[int, int]] | str:
    """``{key: (h, w)}`` from an LMDB's ``meta_info.txt``, or the problem in words."""
    meta = Path(folder) / "meta_info.txt"
    if not meta.is_file():
        return f"LMDB {folder} has no meta_info.txt"
    sizes = {}
    for number, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        match = _LMDB_LINE.match(line)
        if not match:
            return f"{meta} line {number} is not '<name> (h,w,c) <compression>'"
        sizes[match["name"].split(".")[0]] = (int(match["h"]), int(match["w"]))
    return sizes if sizes else f"LMDB {folder} lists no images in meta_info.txt"


def scale_words(scale: float | tuple[float, float]) -> str:
    """``4``, ``2.5``, or ``1.5 x 2 (rows x columns)`` for a per-axis scale."""
    if isinstance(scale, (tuple, list)):
        rows, cols = (float(s) for s in scale)
        return f"{rows:g}" if rows == cols else f"{rows:g} x {cols:g} (rows x columns)"
    return f"{float(scale):g}"


def lr_size_problem(lq_name: str, lq: tuple[int, int], gt_name: str, gt: tuple[int, int],
                    scale: float | tuple[float, float], said: str = "") -> str | None:
    """None when an LR image of size ``lq`` goes with an HR image of size ``gt`` at ``scale`` (sizes ``(height,
    width)``), by the one rule :func:`hatast.data.degradations.lr_size`; else one line naming both files, their
    sizes, the size the LR must have and the scale, with a hint when the sizes look like another integer scale's
    data (``said``: words added to that hint, e.g. ``'; the options say scale 4'``) or the LR is too large.

    Used by these checks and by the benchmark pairing (:func:`hatast.eval.sets.find_pairs`)."""
    from .degradations import lr_size

    expected = lr_size(gt, scale)
    if tuple(lq) == expected:
        return None
    words = scale_words(scale)
    if min(expected) < 1:
        return f"HR {gt_name} is {gt[1]}x{gt[0]}, too small for scale {words} (LR {lq_name} is {lq[1]}x{lq[0]})"
    message = (f"LR {lq_name} is {lq[1]}x{lq[0]} but HR {gt_name} is {gt[1]}x{gt[0]}: at scale {words} the LR must "
               f"be {expected[1]}x{expected[0]}")
    other = round(gt[0] / lq[0]) if lq[0] else 0  # an integer scale whose LR (rounded either way) these sizes are
    if other >= 2 and scale_words(other) != words and all(abs(n * other - g) < other for n, g in zip(lq, gt)):
        message += f" (these look like x{other} data{said})"
    elif lq[0] > expected[0] or lq[1] > expected[1]:
        message += " (the LR is too large for this scale)"
    return message


def _size_problem(lq_name: str, lq: tuple[int, int] | None, gt_name: str, gt: tuple[int, int] | None,
                  scale: float) -> str | None:
    if gt is None:
        return f"dataroot_gt: {gt_name} is not a readable image"
    if lq is None:
        return f"dataroot_lq: {lq_name} is not a readable image"
    return lr_size_problem(lq_name, lq, gt_name, gt, scale, f"; the options say scale {scale_words(scale)}")


def _too_small(name: str, size: tuple[int, int] | None, need: int, key: str, total: int, count: int) -> str:
    h, w = size if size else (0, 0)
    return (f"{key}: {name} is {w}x{h}, smaller than the {need}x{need} training crop "
            f"({count} of {total} images are too small)")


def check_paired(dopt: dict, scale: int, phase: str) -> str | None:
    """HR/LR pairs of a ``PairedImageDataset``: pairing, image files only, LR size = ``lr_size(HR size, scale)``."""
    gt_root, lq_root = str(dopt["dataroot_gt"]), str(dopt["dataroot_lq"])
    tmpl = dopt.get("filename_tmpl", "{}")
    backend = (dopt.get("io_backend") or {}).get("type", "disk")
    if backend == "lmdb":
        gt_sizes, lq_sizes = _lmdb_sizes(gt_root), _lmdb_sizes(lq_root)
        for key, sizes in (("dataroot_gt", gt_sizes), ("dataroot_lq", lq_sizes)):
            if isinstance(sizes, str):
                return f"{key}: {sizes}"
        if set(gt_sizes) != set(lq_sizes):
            only = sorted(set(gt_sizes) ^ set(lq_sizes))[0]
            side = "HR" if only in gt_sizes else "LR"
            return (f"the LMDBs do not pair: {side} key '{only}' has no partner ({len(gt_sizes)} HR, "
                    f"{len(lq_sizes)} LR keys)")
        pairs = [(k, lq_sizes[k], k, gt_sizes[k]) for k in sorted(gt_sizes)]
    else:
        if dopt.get("meta_info_file"):
            names = [line.strip().split(" ")[0] for line in Path(dopt["meta_info_file"]).read_text().splitlines()
                     if line.strip()]
            if not names:
                return f"meta_info_file: {dopt['meta_info_file']} lists no images"
            for name in names:
                stem, ext = os.path.splitext(os.path.basename(name))
                lq_name = f"{tmpl.format(stem)}{ext}"
                for key, root, file in (("dataroot_gt", gt_root, name), ("dataroot_lq", lq_root, lq_name)):
                    if not os.path.isfile(os.path.join(root, file)):
                        return f"{key}: {file}, listed in meta_info_file, is not in {root}"
            gt_names = names
        else:
            gt_names, lq_names = _files(gt_root), _files(lq_root)
            if not gt_names and not lq_names:
                return f"dataroot_gt {gt_root} and dataroot_lq {lq_root} are both empty"
            for key, root, names in (("dataroot_gt", gt_root, gt_names), ("dataroot_lq", lq_root, lq_names)):
                if not names:
                    return f"{key}: {root} has no images"
                strays = [n for n in names if os.path.splitext(n)[1].lower() not in IMAGE_EXTENSIONS]
                if strays:
                    return (f"{key}: {strays[0]} in {root} is not an image (BasicSR reads every file in the "
                            f"folder; {len(strays)} such file(s))")
            lq_set = set(lq_names)
            for name in gt_names:
                stem, ext = os.path.splitext(name)
                lq_name = f"{tmpl.format(stem)}{ext}"
                if lq_name not in lq_set:
                    return (f"HR {name} has no LR partner {lq_name} in {lq_root} (filename_tmpl '{tmpl}'; "
                            f"{len(gt_names)} HR, {len(lq_names)} LR images)")
            if len(gt_names) != len(lq_names):
                paired = {f"{tmpl.format(os.path.splitext(n)[0])}{os.path.splitext(n)[1]}" for n in gt_names}
                extra = sorted(set(lq_names) - paired)[0]
                return (f"LR {extra} in {lq_root} has no HR partner ({len(gt_names)} HR, {len(lq_names)} LR "
                        "images)")
        pairs = []
        for name in gt_names:
            stem, ext = os.path.splitext(os.path.basename(name))
            lq_name = f"{tmpl.format(stem)}{ext}"
            pairs.append((lq_name, image_size(os.path.join(lq_root, lq_name)), name,
                          image_size(os.path.join(gt_root, name))))
    wrong = [p for p in (_size_problem(*pair, scale) for pair in pairs) if p]
    if wrong:
        return f"{wrong[0]}; {len(wrong)} of {len(pairs)} pairs are wrong"
    if phase == "train" and dopt.get("gt_size"):
        need = int(dopt["gt_size"]) // scale
        small = [(n, s) for n, s, *_ in pairs if min(s) < need]
        if small:
            return _too_small(small[0][0], small[0][1], need, "dataroot_lq", len(pairs), len(small))
    return None


def check_hr_only(dopt: dict, scale: int, phase: str, minimum: int | None = None, why: str = "") -> str | None:
    """HR images of a ``BicubicDownsampleDataset`` (or ``HRCropDataset``): present, images, and (training) at least
    one crop in size, else at least the scale (or ``minimum``, for the reason ``why``)."""
    root = str(dopt["dataroot_gt"])
    if (dopt.get("io_backend") or {}).get("type") == "lmdb":
        sizes = _lmdb_sizes(root)
        if isinstance(sizes, str):
            return f"dataroot_gt: {sizes}"
        items = sorted(sizes.items())
    else:
        names = sorted(n for n in _files(root) if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)
        if not names:
            return f"dataroot_gt: {root} has no images ({', '.join(IMAGE_EXTENSIONS)})"
        items = [(n, image_size(os.path.join(root, n))) for n in names]
    unreadable = [n for n, s in items if s is None]
    if unreadable:
        return f"dataroot_gt: {unreadable[0]} is not a readable image ({len(unreadable)} such file(s))"
    need = int(dopt["gt_size"]) if phase == "train" and dopt.get("gt_size") else (minimum or scale)
    small = [(n, s) for n, s in items if min(s) < need]
    if small:
        if phase == "train":
            return _too_small(small[0][0], small[0][1], need, "dataroot_gt", len(items), len(small))
        h, w = small[0][1]
        return f"dataroot_gt: {small[0][0]} is {w}x{h}, smaller than {why or f'the scale {scale}'}"
    return None


def check_blur(dopt: dict, scale: int, phase: str) -> str | None:
    """A ``BlurDownsampleNoiseDataset`` (USRNet's degradation), by the rules the dataset applies when it is built and
    read: training, ``gt_size`` a multiple of every scale of ``scales`` and HR images of at least one crop;
    validation/test, the ``kernel`` readable (:func:`~.degradations.load_kernel`, as the dataset reads it), stored LR
    (``dataroot_lq``) paired with the HR as for a ``PairedImageDataset``, else HR images of at least lcm(scale, 8)
    pixels (the crop the LR is made from)."""
    import math

    from ..utils.errors import HatastError
    from .degradations import load_kernel

    if phase == "train":
        size = int(dopt["gt_size"])
        bad = [int(s) for s in dopt.get("scales", [1, 2, 3, 4]) if size % int(s)]
        if bad:
            return f"gt_size: {size} is not a multiple of scale(s) {bad} (scales)"
        return check_hr_only(dopt, scale, phase)
    try:
        load_kernel(str(dopt.get("kernel", "gaussian:1.6")))
    except HatastError as err:
        return f"kernel: {err}"
    if dopt.get("dataroot_lq"):
        return check_paired(dopt, scale, phase)
    step = scale * 8 // math.gcd(scale, 8)
    return check_hr_only(dopt, scale, phase, step, f"{step}x{step} (the LR is made from the image cropped to a "
                         f"multiple of lcm(scale, 8) = {step})")


def check_lq_only(dopt: dict, scale: int, phase: str) -> str | None:
    """LR images of a ``SingleImageDataset``: present and images."""
    root = str(dopt["dataroot_lq"])
    if (dopt.get("io_backend") or {}).get("type") == "lmdb":
        sizes = _lmdb_sizes(root)
        return f"dataroot_lq: {sizes}" if isinstance(sizes, str) else None
    if dopt.get("meta_info_file"):
        listed = [line for line in Path(dopt["meta_info_file"]).read_text().splitlines() if line.strip()]
        return None if listed else f"meta_info_file: {dopt['meta_info_file']} lists no images"
    names = _files(root)
    if not names:
        return f"dataroot_lq: {root} has no images"
    strays = [n for n in names if os.path.splitext(n)[1].lower() not in IMAGE_EXTENSIONS]
    if strays:
        return f"dataroot_lq: {strays[0]} in {root} is not an image (BasicSR reads every file in the folder)"
    return None


def smallest_image(dopt: dict) -> tuple[str, tuple[int, int]] | None:
    """The ground-truth image of a dataset section with the shortest side, as ``(name, (height, width))`` read from
    headers (an LMDB's ``meta_info.txt``); None when the section has no ground truth or it cannot be read."""
    root = dopt.get("dataroot_gt")
    if root is None:
        return None
    try:
        if (dopt.get("io_backend") or {}).get("type") == "lmdb":
            sizes = _lmdb_sizes(str(root))
            items = [] if isinstance(sizes, str) else list(sizes.items())
        else:
            items = [(n, image_size(os.path.join(str(root), n))) for n in _files(str(root))
                     if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    except OSError:
        return None
    items = [(name, size) for name, size in items if size]
    return min(items, key=lambda item: min(item[1])) if items else None


def training_items(dopt: dict) -> int | None:
    """How many images a dataset section yields (any dataset type: counted from ``meta_info_file``, an LMDB's
    ``meta_info.txt``, or the image files of ``dataroot_gt``, else ``dataroot_lq``); None when it cannot tell."""
    try:
        if dopt.get("meta_info_file"):
            return sum(1 for line in Path(dopt["meta_info_file"]).read_text().splitlines() if line.strip())
        root = dopt.get("dataroot_gt") or dopt.get("dataroot_lq")
        if root is None:
            return None
        if (dopt.get("io_backend") or {}).get("type") == "lmdb":
            sizes = _lmdb_sizes(str(root))
            return None if isinstance(sizes, str) else len(sizes)
        return sum(1 for name in _files(str(root)) if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS)
    except OSError:
        return None


def batch_problem(dopt: dict, world_size: int = 1) -> str | None:
    """A training set too small for one batch, in words: BasicSR's training loader drops incomplete batches, so with
    fewer samples per process than ``batch_size_per_gpu`` an epoch has no batch and training never starts."""
    items = training_items(dopt)
    if items is None:
        return None
    ratio, batch = int(dopt.get("dataset_enlarge_ratio", 1)), int(dopt["batch_size_per_gpu"])
    per_process = -(-items * ratio // world_size)
    if per_process >= batch:
        return None
    need = -(-batch * world_size // items) if items else None
    processes = f" over {world_size} processes" if world_size > 1 else ""
    fix = (f"raise dataset_enlarge_ratio to {need} or lower batch_size_per_gpu" if need
           else "add training images")
    return (f"{items} training image(s) x dataset_enlarge_ratio {ratio}{processes} make {per_process} sample(s) "
            f"per epoch, fewer than one batch (batch_size_per_gpu {batch}); BasicSR drops incomplete batches, so "
            f"training would never start: {fix}")


DATASET_CHECKS: dict[str, Callable[[dict, int, str], str | None]] = {
    "PairedImageDataset": check_paired,
    "BicubicDownsampleDataset": check_hr_only,
    "HRCropDataset": lambda dopt, scale, phase: check_hr_only(dopt, 1, phase),  # its model makes the LR
    "SingleImageDataset": check_lq_only,
    "BlurDownsampleNoiseDataset": check_blur,
}
