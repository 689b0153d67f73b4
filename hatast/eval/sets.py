"""The SR benchmark sets and their folder layout (that of the EDSR benchmark package).

::

    <root>/<set>/HR/<name>.png                        the ground truth as distributed (not mod-cropped)
    <root>/<set>/LR_bicubic/X<s>/<name>x<s>.png       MATLAB imresize(mod_crop(HR, s), 1/s, 'bicubic')

``<s>`` is the scale written shortest (``2``, ``1.5``), or ``<rows>_<cols>`` for per-axis scales (``1.5_2``). Every LR
image must be the size :func:`hatast.data.degradations.lr_size` gives for its HR image (integer scales: ``floor(HR /
s)``; ``s = p / q``: the HR mod-cropped to a multiple of ``p``, divided by ``s``), checked from the image headers
when the pairs are found: LR images of another scale's size would otherwise be scored against a crop of the HR
image and give a wrong number. For scoring, the HR image is cropped to the size of the SR result (LR size x scale),
as BasicSR does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..utils.errors import HatastError
from ..utils.image import IMAGE_EXTENSIONS

BENCHMARK_SETS = {"Set5": 5, "Set14": 14, "BSD100": 100, "Urban100": 100, "Manga109": 109}
"""The five standard sets and how many images each holds."""

Scale = float | tuple[float, float]


class BenchmarkError(HatastError):
    """A benchmark set that is missing or incomplete; the message says where it was looked for and what to do."""


def scale_tag(scale: Scale) -> str:
    """``2`` -> ``'2'``, ``1.5`` -> ``'1.5'``, ``(1.5, 2)`` -> ``'1.5_2'``."""
    if isinstance(scale, (tuple, list)):
        rows, cols = (float(s) for s in scale)
        return scale_tag(rows) if rows == cols else f"{rows:g}_{cols:g}"
    return f"{float(scale):g}"


def parse_scale(text: str) -> Scale:
    """The inverse of :func:`scale_tag`, for command lines: ``'4'``, ``'2.5'``, ``'1.5_2'`` (rows_cols)."""
    parts = text.split("_")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"scale {text!r} is not a number (e.g. 4, 2.5, or 1.5_2 for rows_cols)") from None
    if len(values) > 2 or any(not v > 1 for v in values):
        raise ValueError(f"scale {text!r}: expected one or two factors above 1 (e.g. 4, 2.5, 1.5_2)")
    return values[0] if len(values) == 1 or values[0] == values[1] else (values[0], values[1])


def lr_folder(set_dir: Path, scale: Scale) -> Path:
    return set_dir / "LR_bicubic" / f"X{scale_tag(scale)}"


def lr_name(stem: str, scale: Scale) -> str:
    return f"{stem}x{scale_tag(scale)}.png"


def option_dataset(root: str, name: str, scale: int) -> dict:
    """The BasicSR dataset section that reads set ``name`` at ``scale`` from ``root`` (a path or ``${VAR}``)."""
    return {"name": name, "type": "PairedImageDataset", "dataroot_gt": f"{root}/{name}/HR",
            "dataroot_lq": f"{root}/{name}/LR_bicubic/X{scale_tag(scale)}", "filename_tmpl": f"{{}}x{scale_tag(scale)}",
            "io_backend": {"type": "disk"}}


@dataclass(frozen=True)
class Pair:
    """One benchmark image: its name, the HR file and the LR file at the scale in use."""

    name: str
    hr: Path
    lr: Path


def find_pairs(root: str | Path, name: str, scale: Scale) -> list[Pair]:
    """Every HR/LR pair of set ``name`` under ``root`` at ``scale``, sorted by name.

    Raises :class:`BenchmarkError` (one line: where it looked, what is missing or the wrong size, the command that
    makes it).
    """
    set_dir = Path(root) / name
    hr_dir, lr_dir = set_dir / "HR", lr_folder(set_dir, scale)
    make = f"make it with: hatast prepare benchmark <folder of {name} HR images> -o {set_dir}"
    if not hr_dir.is_dir():
        raise BenchmarkError(f"{name}: no HR folder {hr_dir}; {make}")
    hrs = sorted(p for p in hr_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not hrs:
        raise BenchmarkError(f"{name}: {hr_dir} holds no images; {make}")
    if not lr_dir.is_dir():
        raise BenchmarkError(f"{name}: no x{scale_tag(scale)} LR folder {lr_dir}; make it with: "
                             f"hatast prepare benchmark {hr_dir} -o {set_dir} --scales {scale_tag(scale)}")
    pairs = [Pair(p.stem, p, lr_dir / lr_name(p.stem, scale)) for p in hrs]
    missing = [p for p in pairs if not p.lr.is_file()]
    if missing:
        raise BenchmarkError(f"{name}: {len(missing)} of {len(pairs)} LR images missing at x{scale_tag(scale)}, "
                             f"first {missing[0].lr}; make them with: hatast prepare benchmark {hr_dir} -o {set_dir} "
                             f"--scales {scale_tag(scale)}")
    _check_sizes(name, pairs, scale, f"hatast prepare benchmark {hr_dir} -o {set_dir} --scales {scale_tag(scale)} "
                                     "--overwrite")
    return pairs


def _check_sizes(name: str, pairs: list[Pair], scale: Scale, make: str) -> None:
    """Raise :class:`BenchmarkError` unless every LR image is the size that goes with its HR image at ``scale``
    (:func:`hatast.data.degradations.lr_size`, the rule the option-file checks use too), from the headers only."""
    from ..data.checks import image_size, lr_size_problem

    wrong = []
    for pair in pairs:
        hr, lr = image_size(pair.hr), image_size(pair.lr)
        for path, size in ((pair.hr, hr), (pair.lr, lr)):
            if size is None:
                raise BenchmarkError(f"{name}: {path} is not a readable image")
        try:
            problem = lr_size_problem(str(pair.lr), lr, pair.hr.name, hr, scale)
        except ValueError as err:  # a scale that is not a ratio of small integers: no LR size goes with it
            raise BenchmarkError(f"{name}: no benchmark LR size goes with scale {scale_tag(scale)} ({err})") from None
        if problem:
            wrong.append(problem)
    if wrong:
        raise BenchmarkError(f"{name}: {wrong[0]}; {len(wrong)} of {len(pairs)} pairs are wrong; remake the LR "
                             f"images with: {make}")
