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
from ..utils.files import OutputError, file_identities, overwritten_input, write_bytes_atomic
from ..utils.image import IMAGE_EXTENSIONS, ImageError, imwrite_atomic, read_image
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


def prepare_benchmark(hr_folder: str | Path, out: str | Path, scales: Iterable[Scale], overwrite: bool = False,
                      progress: bool = True) -> PrepareReport:
    """Build a benchmark set from a folder of HR images: ``out/HR/<name>.png`` (the HR image as given, in PNG)
    and ``out/LR_bicubic/X<s>/<name>x<s>.png`` = MATLAB ``imresize(mod_crop(HR, s), 1/s, 'bicubic')`` for each scale
    (uint8-exact, so Set5/Set14 come out equal to the standard files). Existing outputs are kept unless
    ``overwrite``."""
    out = Path(out)
    scales = list(scales)
    files = list_images([hr_folder])
    hr_out = out / "HR"
    same_folder = hr_out.resolve() == Path(hr_folder).resolve()
    if same_folder and any(p.suffix.lower() != ".png" for p in files):
        raise OutputError(f"{hr_folder} is the set's HR folder and holds non-PNG images; give a separate -o")
    targets = [] if same_folder else [hr_out / f"{p.stem}.png" for p in files]
    targets += [lr_folder(out, s) / lr_name(p.stem, s) for p in files for s in scales]
    identities = file_identities(files)
    for target in targets:
        replaced = overwritten_input(target, identities)
        if replaced is not None:
            raise OutputError(f"output {target} would overwrite the input {replaced}; choose another -o")
    report = PrepareReport()
    for path in _progress(files, f"{out.name} LR x{'/'.join(scale_tag(s) for s in scales)}", progress):
        outputs = {} if same_folder else {hr_out / f"{path.stem}.png": None}
        outputs.update({lr_folder(out, s) / lr_name(path.stem, s): s for s in scales})
        todo = {target: s for target, s in outputs.items() if overwrite or not target.exists()}
        report.skipped += len(outputs) - len(todo)
        if not todo:
            continue
        hr = read_image(path).pixels
        for target, scale in todo.items():
            imwrite_atomic(hr if scale is None else bicubic_downsample(mod_crop(hr, scale), scale), target)
            report.written += 1
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
    names, so BasicSR's ``PairedImageDataset`` pairs them."""
    out = Path(out)
    scales = [int(s) for s in scales]
    lcm = int(np.lcm.reduce(scales))
    if crop % lcm:
        raise ValueError(f"--crop {crop} must be a multiple of every scale ({', '.join(map(str, scales))})")
    files = list_images(hr_folders)
    folders = {None: out / f"{name}_HR_sub", **{s: out / f"{name}_bicx{s}_sub" for s in scales}}
    identities = file_identities(files)
    for folder in folders.values():
        for path in files:
            if overwritten_input(folder / f"{path.stem}_s001.png", identities) is not None:
                raise OutputError(f"output folder {folder} holds the inputs; choose another -o")
    # per-image completion markers, outside the image folders (BasicSR pairs every file it finds there)
    progress_dir = out / f".{name}_sub_progress"
    report = PrepareReport()
    for path in _progress(files, f"{name} sub-images", progress):
        done = progress_dir / f"{path.stem}.done"  # written last: every crop of this image is in place
        if done.exists() and not overwrite:
            report.skipped += 1
            continue
        hr = read_image(path).pixels
        h, w = hr.shape[0] // lcm * lcm, hr.shape[1] // lcm * lcm
        hr = hr[:h, :w]
        lrs = {s: bicubic_downsample(hr, s) for s in scales}
        index = 0
        for top in _starts(h, crop, step, min_rest):
            for left in _starts(w, crop, step, min_rest):
                index += 1
                crop_name = f"{path.stem}_s{index:03d}.png"
                imwrite_atomic(hr[top:top + crop, left:left + crop], folders[None] / crop_name)
                for s, lr in lrs.items():
                    imwrite_atomic(lr[top // s:(top + crop) // s, left // s:(left + crop) // s], folders[s] / crop_name)
                report.written += 1
        write_bytes_atomic(done, f"{index}\n".encode())
    return report


def write_lmdb(folder: str | Path, lmdb_path: str | Path | None = None, compress_level: int = 1,
               map_size: int | None = None, progress: bool = True) -> Path:
    """Pack the PNG images of ``folder`` into an LMDB that BasicSR reads (``io_backend: {type: lmdb}``): keys are
    the file stems, values the PNG bytes, and ``meta_info.txt`` lists ``<name>.png (h,w,c) <compress_level>``.

    The database is built in ``<lmdb>.tmp`` and renamed into place when complete, so a kill leaves no half LMDB
    under the final name (a rerun builds it again). The map grows (doubling) when full instead of failing.
    """
    import lmdb

    folder = Path(folder)
    target = Path(lmdb_path) if lmdb_path else folder.with_name(folder.name + ".lmdb")
    if not target.name.endswith(".lmdb"):
        raise ValueError(f"{target}: an LMDB folder name must end with .lmdb (BasicSR checks it)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ImageError(f"{folder}: no PNG images to pack")
    staging = target.with_name(target.name + ".tmp")
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
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise ImageError(f"{path}: not a readable image")
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
    (staging / "meta_info.txt").write_text("".join(meta))
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target
