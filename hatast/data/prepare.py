"""Data preparation: benchmark sets in the standard layout, training sub-images, and LMDB files.

Everything here writes through the atomic writer, never onto its inputs, and resumes: a file that exists is complete
(it was renamed into place), so a rerun after a kill skips it. Images are read through :func:`read_image` (EXIF
orientation applied; grey stays grey) and resized by :mod:`.degradations`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..eval.sets import Scale, lr_folder, lr_name, scale_tag
from ..utils.errors import UsageError
from ..utils.files import OutputError, write_bytes_atomic
from ..utils.image import IMAGE_EXTENSIONS, ImageError, decode_file, imwrite_atomic, read_image
from ..utils.paths import OutputFolder, resolve
from .checks import image_size
from .degradations import bicubic_downsample, mod_crop

LMDB_BATCH = 256
"""Images per LMDB write transaction (one commit each)."""


def list_images(folders: Iterable[str | Path]) -> list[Path]:
    """Image files directly inside each folder, sorted; stems must be unique (they name the outputs)."""
    files: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise ImageError(f"{folder}: no such folder")
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            raise ImageError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        files += found
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise OutputError(f"{seen[path.stem]} and {path} would both be written as {path.stem}.png; "
                              "rename one")
        seen[path.stem] = path
    return files


def _progress(items, description: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, unit="image", dynamic_ncols=True)


@dataclass
class PrepareReport:
    written: int = 0
    skipped: int = 0
    replaced: int = 0
    """Outputs that existed and were written again (``overwrite``)."""


def prepare_benchmark(hr_folder: str | Path, out: str | Path, scales: Iterable[Scale], overwrite: bool = False,
                      progress: bool = True) -> PrepareReport:
    """Build a benchmark set from a folder of HR images: ``out/HR/<name>.png`` (the HR image as given, in PNG)
    and ``out/LR_bicubic/X<s>/<name>x<s>.png`` = MATLAB ``imresize(mod_crop(HR, s), 1/s, 'bicubic')`` for each scale
    (uint8-exact, so Set5/Set14 come out equal to the standard files). Every output path comes from the path policy
    (:class:`~hatast.utils.paths.OutputFolder`), checked before any image is computed; existing outputs are kept
    unless ``overwrite``."""
    scales = list(scales)
    files = list_images([hr_folder])
    outputs = OutputFolder(out, "-o", inputs=files, overwrite=overwrite)
    same_folder = outputs.folder("HR") == resolve(hr_folder)
    if same_folder and any(p.suffix.lower() != ".png" for p in files):
        raise OutputError(f"{hr_folder} is the set's HR folder and holds non-PNG images; give a separate -o")
    plan = []
    for path in files:
        targets = {} if same_folder else {outputs.path(f"HR/{path.stem}.png", source=path): None}
        for scale in scales:
            name = f"{lr_folder(Path(), scale)}/{lr_name(path.stem, scale)}"
            targets[outputs.path(name, source=path)] = scale
        plan.append((path, targets))
    outputs.check_writable()
    report = PrepareReport()
    for path, targets in _progress(plan, f"{outputs.root.name} LR x{'/'.join(scale_tag(s) for s in scales)}",
                                   progress):
        todo = {target: s for target, s in targets.items() if not outputs.exists(target)}
        report.skipped += len(targets) - len(todo)
        if not todo:
            continue
        hr = read_image(path).pixels
        for target, scale in todo.items():
            imwrite_atomic(hr if scale is None else bicubic_downsample(mod_crop(hr, scale), scale), target)
            report.written += 1
    report.replaced = len(outputs.replaced)
    return report


def _starts(length: int, crop: int, step: int, min_rest: int) -> list[int]:
    """Crop origins along one axis: every ``step``, plus one flush with the end when more than ``min_rest`` pixels
    would be left out (BasicSR's ``extract_subimages`` rule)."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > min_rest:
        starts.append(length - crop)
    return starts


def prepare_training(hr_folders: Iterable[str | Path], out: str | Path, name: str, scales: Iterable[int],
                     crop: int = 480, step: int = 240, min_rest: int = 24, overwrite: bool = False,
                     progress: bool = True) -> PrepareReport:
    """Sub-images for training: ``out/<name>_HR_sub/<image>_s<nnn>.png`` (``crop`` x ``crop`` every ``step``)
    and ``out/<name>_bicx<s>_sub/`` with the matching LR crops, cut from the bicubic downsampling of the whole
    HR image (mod-cropped to every scale) so crop borders see their real neighbours. Both folders use the same
    names, so BasicSR's ``PairedImageDataset`` pairs them. Every crop's path is planned from the images' headers and
    checked by the path policy before any image is cut."""
    scales = [int(s) for s in scales]
    lcm = int(np.lcm.reduce(scales))
    if crop % lcm:
        raise UsageError(f"--crop {crop} must be a multiple of every scale ({', '.join(map(str, scales))})")
    files = list_images(hr_folders)
    outputs = OutputFolder(out, "-o", inputs=files, overwrite=overwrite)
    folders = {None: f"{name}_HR_sub", **{s: f"{name}_bicx{s}_sub" for s in scales}}
    plan = []
    for path in files:
        size = image_size(path)
        if size is None:
            raise ImageError(f"{path}: not a readable image")
        h, w = size[0] // lcm * lcm, size[1] // lcm * lcm
        boxes = [(top, left) for top in _starts(h, crop, step, min_rest) for left in _starts(w, crop, step, min_rest)]
        crops = {s: [outputs.path(f"{folder}/{path.stem}_s{i:03d}.png", source=path) for i in range(1, len(boxes) + 1)]
                 for s, folder in folders.items()}
        # per-image completion marker, outside the image folders (BasicSR pairs every file it finds there)
        done = outputs.path(f".{name}_sub_progress/{path.stem}.done", source=path)
        plan.append((path, boxes, crops, done))
    outputs.check_writable()
    report = PrepareReport()
    for path, boxes, crops, done in _progress(plan, f"{name} sub-images", progress):
        if outputs.exists(done):  # written last: every crop of this image is in place
            report.skipped += 1
            continue
        hr = read_image(path).pixels
        h, w = hr.shape[0] // lcm * lcm, hr.shape[1] // lcm * lcm
        hr = hr[:h, :w]
        lrs = {s: bicubic_downsample(hr, s) for s in scales}
        for index, (top, left) in enumerate(boxes):
            imwrite_atomic(hr[top:top + crop, left:left + crop], crops[None][index])
            for s, lr in lrs.items():
                imwrite_atomic(lr[top // s:(top + crop) // s, left // s:(left + crop) // s], crops[s][index])
            report.written += 1
        write_bytes_atomic(done, f"{len(boxes)}\n".encode())
    return report


def write_lmdb(folder: str | Path, lmdb_path: str | Path | None = None, compress_level: int = 1,
               map_size: int | None = None, progress: bool = True, overwrite: bool = False) -> Path:
    """Pack the PNG images of ``folder`` into an LMDB that BasicSR reads (``io_backend: {type: lmdb}``): keys are
    the file stems, values the PNG bytes, and ``meta_info.txt`` lists ``<name>.png (h,w,c) <compress_level>``.

    The database is built in ``<lmdb>.tmp`` and renamed into place when complete, so a kill leaves no half LMDB
    under the final name (a rerun builds it again); an LMDB that exists is kept unless ``overwrite``. The map grows
    (doubling) when full instead of failing.
    """
    import lmdb

    folder = Path(folder)
    target = Path(lmdb_path) if lmdb_path else folder.with_name(folder.name + ".lmdb")
    if not target.name.endswith(".lmdb"):
        raise UsageError(f"{target}: an LMDB folder name must end with .lmdb (BasicSR checks it)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ImageError(f"{folder}: no PNG images to pack")
    outputs = OutputFolder(target.parent, "--lmdb", inputs=files, overwrite=overwrite)
    target = outputs.folder(target.name, what="LMDB")
    staging = outputs.folder(target.name + ".tmp", what="LMDB staging folder")
    if os.path.lexists(target) and not overwrite:
        return target  # complete (it was renamed into place when done): kept
    shutil.rmtree(staging, ignore_errors=True)
    if map_size is None:  # first guess: the files' size, re-encoded at a low compression level, with room
        map_size = max(sum(p.stat().st_size for p in files) * 4, 1 << 24)
    env = lmdb.open(str(staging), map_size=map_size)
    meta, batch = [], []

    def commit() -> None:
        nonlocal map_size
        while True:
            try:
                with env.begin(write=True) as txn:
                    for key, value in batch:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:  # the aborted batch is redone in a larger map
                map_size *= 2
                env.set_mapsize(map_size)
        batch.clear()

    try:
        for path in _progress(files, f"LMDB {target.name}", progress):
            image = decode_file(path)
            ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
            if not ok:
                raise ImageError(f"{path}: could not be encoded as PNG")
            batch.append((path.stem.encode("ascii"), encoded.tobytes()))
            if len(batch) == LMDB_BATCH:
                commit()
            h, w = image.shape[:2]
            c = 1 if image.ndim == 2 else image.shape[2]
            meta.append(f"{path.name} ({h},{w},{c}) {compress_level}\n")
        commit()
    finally:
        env.close()
    write_bytes_atomic(staging / "meta_info.txt", "".join(meta).encode())
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target
