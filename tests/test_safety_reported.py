"""Every case reported in issue 24 ("Reliability, second pass: invariants that hold for every command"), run as a
user runs it: ``python -m hatast.cli.main ...`` in a subprocess whose working folder is a fresh sandbox, with the
invariants of :mod:`invariants` checked on each run (:func:`invariants.check_run`: exit status 0 or 2, never a
signal or a traceback, every file that existed byte-identical, nothing written outside the output folder) and the
one line each refusal prints asserted: its exit status and the path, key or file it names.

Each command starts a Python that imports PyTorch (several seconds on a loaded CPU), so the cases' commands are
started together at the beginning of the module, a few at a time (:func:`launched`); each case's commands run in
order in its own sandbox and the test of the case waits for them. A case's job returns its :class:`Step` records
(run, invariants checked, error line); its test asserts what the issue requires of them.

Two cases of the issue are covered elsewhere and not repeated here:

* the numba kernel cache written inside ``site-packages`` ("Newcomer"): ``tests/test_packaging.py`` installs a copy
  with pip and holds that no run adds a file to the installed package (``test_installed_package_is_left_as_pip_
  wrote_it``, ``test_unwritable_cache_compiles_in_memory``);
* USRNet checkpoints saved by the authors' code with ``nb: 1``:
  ``tests/test_usrnet.py::test_upscale_command_runs_an_authors_nb1_checkpoint``.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_HAT, sample_image, write_image_folder, write_options
from invariants import TIMEOUT, Run, check_run, error_lines, run, snapshot

import hatast
from hatast.archs.hat_arch import HAT
from hatast.data.degradations import bicubic_downsample

WEIGHTS = Path(hatast.__file__).parent / "weights"
SRLUT_X4 = WEIGHTS / "srlut" / "SRLUT-S_SRx4.npz"
IMLUT = WEIGHTS / "imlut" / "IMLUT-NLC.npz"
TAG = "!!python/object/apply:os.system"


# --- running the cases ------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One command of a case: its run, the entries it added or changed (after :func:`check_run` passed) and its one
    ``error:`` line ('' when it printed none)."""

    box: Path
    result: Run
    changed: dict = field(default_factory=dict)
    line: str = ""


def step(box: Path, argv: list, output: str | bytes | None = None, *, overwrite: bool = False,
         timeout: float = TIMEOUT) -> Step:
    """Run ``hatast ARGV`` in ``box`` and check the invariants on it at once (before the next command of the case
    changes the folder): ``output`` is the output folder the command was named (relative to ``box``; None: it may
    write nothing at all)."""
    before = snapshot(box)
    result = run(argv, box, timeout=timeout)
    folder = box / os.fsdecode(output) if output is not None else None
    changed = check_run(result, box, before, folder, overwrite=overwrite)
    lines = error_lines(result.err)
    return Step(box, result, changed, lines[0] if lines else "")


def refused(done: Step, *fragments: str) -> str:
    """Assert that ``done`` exited 2 with exactly one ``error:`` line holding every fragment; return the line."""
    assert done.result.code == 2, str(done.result)
    assert done.result.err.strip().splitlines() == [done.line], f"expected one line\n{done.result}"
    assert done.line.startswith("error: "), done.line
    for fragment in fragments:
        assert fragment in done.line, f"{fragment!r} not in {done.line!r}"
    return done.line


def succeeded(done: Step) -> Step:
    assert done.result.code == 0, str(done.result)
    assert not done.line, str(done.result)
    return done


JOBS: dict[tuple[str, str], Callable[[Path], list[Step]]] = {}
"""(test name, case variant) -> the job that makes the case's inputs in a sandbox and runs its commands."""


def job(test: str, variant: str = "") -> Callable:
    def register(function: Callable) -> Callable:
        JOBS[test, variant] = function
        return function
    return register


@pytest.fixture(scope="module")
def launched(request, tmp_path_factory) -> dict[tuple[str, str], Future]:
    """The jobs of the selected tests, started together (a few at a time) in sandboxes of their own."""
    selected = {getattr(item, "originalname", item.name) for item in request.session.items
                if item.module is request.module}
    pool = ThreadPoolExecutor(max_workers=min(3, (os.cpu_count() or 2) + 1))
    futures = {}
    for (test, variant), function in JOBS.items():
        if test in selected:
            box = tmp_path_factory.mktemp(re.sub(r"\W+", "_", f"{test[5:35]}_{variant}").strip("_"))
            futures[test, variant] = pool.submit(function, box)
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def outcome(launched: dict, test: str, variant: str = "") -> list[Step]:
    """The steps of a case (waits for its job; an assertion that failed in the job fails the test)."""
    return launched[test, variant].result()


# --- small inputs -----------------------------------------------------------------------------------------------


_SEEDING = threading.Lock()


def tiny_hat(seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict of conftest's tiny HAT made from ``seed`` (the jobs run in threads: one seeding at a time)."""
    with _SEEDING:
        torch.manual_seed(seed)
        return {k: v.contiguous() for k, v in HAT(**TINY_HAT).state_dict().items()}


def write_photo(path: Path | str, side: int = 16) -> Path:
    """A ``side x side`` crop of a real photograph, encoded in memory (the name may be any bytes)."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(sample_image("coffee")[:side, :side]))
    assert ok
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data.tobytes())
    return Path(path)


def write_pairs(hr: Path, lr: Path, count: int, side: int, factor: int, template: str = "{}") -> None:
    """``count`` HR crops in ``hr`` and their MATLAB-bicubic downscales by ``factor`` in ``lr``."""
    write_image_folder(hr, count, side)
    lr.mkdir(parents=True, exist_ok=True)
    for path in sorted(hr.iterdir()):
        cv2.imwrite(str(lr / f"{template.format(path.stem)}.png"), bicubic_downsample(cv2.imread(str(path)), factor))


def make_test_options(box: Path, **changes) -> Path:
    """A minimal valid test option file (the released SR-LUT S x4 table on two x4 pairs), paths relative to ``box``."""
    write_pairs(box / "data" / "HR", box / "data" / "LR", 2, 32, 4)
    shutil.copy(SRLUT_X4, box / "table.npz")
    opt = {"name": "tiny_test", "model_type": "SRLUTModel", "scale": 4, "num_gpu": 0,
           "datasets": {"test_1": {"name": "tiny", "type": "PairedImageDataset", "dataroot_gt": "data/HR",
                                   "dataroot_lq": "data/LR", "io_backend": {"type": "disk"}}},
           "network_g": {"type": "LUTNet", "lut_path": "table.npz"},
           "path": {"pretrain_network_g": None},
           "val": {"save_img": False,
                   "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": True}}},
           **changes}
    file = box / "f.yml"
    file.write_text(yaml.safe_dump(opt, sort_keys=False))
    return file


def train_options(box: Path, train_images: int = 6, **dataset) -> Path:
    """A complete training option file for the tiny HAT (conftest's) on six photos, paths relative to ``box``."""
    write_image_folder(box / "train", crops=train_images, size=48)
    write_pairs(box / "val_hr", box / "val_lr", 2, 24, 2)
    file = write_options(box / "f.yml", {"train": Path("train"), "val_hr": Path("val_hr"), "val_lr": Path("val_lr")})
    opt = yaml.safe_load(file.read_text())
    opt["datasets"]["train"].update(dataset)
    file.write_text(yaml.safe_dump(opt, sort_keys=False))
    return file


def set_option(file: Path, key: str, value: object) -> None:
    opt = yaml.safe_load(file.read_text())
    opt[key] = value
    file.write_text(yaml.safe_dump(opt, sort_keys=False))


def archived(box: Path) -> list[Path]:
    """What BasicSR's "rename the existing experiment folder" would leave: ``*_archived_*`` in or beside ``box``."""
    return sorted(box.rglob("*_archived_*")) + sorted(box.parent.glob(f"{box.name}_archived_*"))


# --- Data loss --------------------------------------------------------------------------------------------------


@job("test_upscale_onto_the_input_through_a_folder_not_yet_made")
def _upscale_through_new_folder(box: Path) -> list[Step]:
    write_photo(box / "dd" / "in" / "a.png")
    return [step(box, ["upscale", "dd/in/a.png", "-o", "dd/newdir/../in", "--overwrite"], output="dd/in")]


def test_upscale_onto_the_input_through_a_folder_not_yet_made(launched):
    """`hatast upscale dd/in/a.png -o dd/newdir/../in --overwrite` replaced the input: the output path was compared
    as typed, before `newdir` existed."""
    (done,) = outcome(launched, "test_upscale_onto_the_input_through_a_folder_not_yet_made")
    refused(done, "would overwrite the input dd/in/a.png")  # check_run: a.png byte-identical
    assert not (done.box / "dd" / "newdir").exists()
    assert sorted(os.listdir(done.box / "dd")) == ["in"]


def _release_checkpoint(path: Path) -> Path:
    state = tiny_hat()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": state, "params_ema": state, "iter": 1000}, path)
    return path


@job("test_release_into_the_folder_of_its_training_checkpoint", "beside")
def _release_beside(box: Path) -> list[Step]:
    _release_checkpoint(box / "run" / "MyHAT.pth")
    return [step(box, ["release", "run/MyHAT.pth", "--name", "MyHAT", "-o", "run"], output="run")]


@job("test_release_into_the_folder_of_its_training_checkpoint", "where the release goes")
def _release_onto_source(box: Path) -> list[Step]:
    _release_checkpoint(box / "run" / "hat" / "MyHAT.pth")
    return [step(box, ["release", "run/hat/MyHAT.pth", "--name", "MyHAT", "-o", "run"], output="run")]


def test_release_into_the_folder_of_its_training_checkpoint(launched):
    """`hatast release run/MyHAT.pth --name MyHAT -o run` with a training checkpoint holding params, params_ema and
    iter: the source lost entries (it was rewritten with params_ema only). Also the spelling where the source lies
    where the release file goes: `hatast release run/hat/MyHAT.pth --name MyHAT -o run`."""
    (beside,) = outcome(launched, "test_release_into_the_folder_of_its_training_checkpoint", "beside")
    succeeded(beside)  # check_run: run/MyHAT.pth byte-identical
    source = torch.load(beside.box / "run" / "MyHAT.pth", map_location="cpu", weights_only=True)
    assert sorted(source) == ["iter", "params", "params_ema"]
    released = torch.load(beside.box / "run" / "hat" / "MyHAT.pth", map_location="cpu", weights_only=True)
    assert sorted(released) == ["params_ema"]

    (onto,) = outcome(launched, "test_release_into_the_folder_of_its_training_checkpoint", "where the release goes")
    refused(onto, "would overwrite the input run/hat/MyHAT.pth")  # check_run: the source byte-identical
    source = torch.load(onto.box / "run" / "hat" / "MyHAT.pth", map_location="cpu", weights_only=True)
    assert sorted(source) == ["iter", "params", "params_ema"]
    assert not (onto.box / "run" / "manifest.json").exists()


@job("test_a_second_release_of_one_name")
def _release_twice(box: Path) -> list[Step]:
    torch.save({"params_ema": tiny_hat(0)}, box / "A.pth")
    torch.save({"params_ema": tiny_hat(1)}, box / "B.pth")
    first = step(box, ["release", "A.pth", "--name", "X", "-o", "rel"], output="rel")
    second = step(box, ["release", "B.pth", "--name", "X", "-o", "rel"], output="rel")  # check_run: rel unchanged
    third = step(box, ["release", "B.pth", "--name", "X", "-o", "rel", "--overwrite"], output="rel", overwrite=True)
    return [first, second, third]


def test_a_second_release_of_one_name(launched):
    """`hatast release A.pth --name X -o rel` then `hatast release B.pth --name X -o rel`: the second replaced the
    first release without being asked."""
    first, second, third = outcome(launched, "test_a_second_release_of_one_name")
    succeeded(first)
    assert {"rel/manifest.json", "rel/hat/X.pth", "rel/hat/X.safetensors"} <= set(first.changed)
    refused(second, "X is already released", "--overwrite")
    assert second.changed == {}  # the first release's files (and the manifest) are unchanged
    succeeded(third)
    assert "replaced the earlier release X" in third.result.out
    assert {"rel/manifest.json", "rel/hat/X.pth", "rel/hat/X.safetensors"} <= set(third.changed)  # B's weights now
    released = torch.load(third.box / "rel" / "hat" / "X.pth", map_location="cpu", weights_only=True)
    assert torch.equal(released["params_ema"]["conv_first.weight"], tiny_hat(1)["conv_first.weight"])


NAME_COMMANDS = {"test --check": ["test", "-opt", "f.yml", "--check"], "test": ["test", "-opt", "f.yml"],
                 "train --check": ["train", "-opt", "f.yml", "--check"]}


def _option_name_job(name: str, command: str) -> Callable[[Path], list[Step]]:
    def case(box: Path) -> list[Step]:
        (box / "victim").mkdir()
        (box / "victim" / "keep.txt").write_text("a file the folder must keep\n")
        (box / "keep.txt").write_text("results/.. is this folder\n")
        file = train_options(box) if command.startswith("train") else make_test_options(box)
        set_option(file, "name", str(box / "victim") if name == "absolute" else "..")
        return [step(box, NAME_COMMANDS[command])]
    return case


for _name in ("absolute", "dotdot"):
    for _command in NAME_COMMANDS:
        job("test_option_name_that_is_a_path", f"{_name}-{_command}")(_option_name_job(_name, _command))


@pytest.mark.parametrize("command", list(NAME_COMMANDS))
@pytest.mark.parametrize("name", ["absolute", "dotdot"])
def test_option_name_that_is_a_path(launched, name, command):
    """An option file with `name: /some/folder` (an existing folder holding a file), and with `name: ..`:
    `hatast test -opt f.yml --check`, `hatast test -opt f.yml` and `hatast train -opt f.yml --check` renamed that
    folder (BasicSR archives an existing experiment folder as `<name>_archived_<time>`) or wrote into it."""
    (done,) = outcome(launched, "test_option_name_that_is_a_path", f"{name}-{command}")
    given = str(done.box / "victim") if name == "absolute" else ".."
    refused(done, "f.yml: name:", repr(given))
    assert (done.box / "victim" / "keep.txt").is_file() and (done.box / "keep.txt").is_file()
    assert archived(done.box) == []


@job("test_output_differing_from_the_input_only_in_letter_case")
def _letter_case(box: Path) -> list[Step]:
    write_photo(box / "in" / "Photo.PNG")
    return [step(box, ["upscale", "in", "-o", "in"], output="in")]


def test_output_differing_from_the_input_only_in_letter_case(launched):
    """`hatast upscale in -o in` with `in/Photo.PNG` wrote `in/Photo.png`: on a case-insensitive file system
    (macOS, Windows) that replaced the input."""
    (done,) = outcome(launched, "test_output_differing_from_the_input_only_in_letter_case")
    refused(done, "in/Photo.png", "differs from the input in/Photo.PNG only in letter case")
    assert os.listdir(done.box / "in") == ["Photo.PNG"]


# --- Code execution, crashes, hangs -----------------------------------------------------------------------------

TAG_RUNS = {
    "file --check": (f'{TAG} ["touch PWNED"]', None, ["--check"]),
    "file": (f'{TAG} ["touch PWNED"]', None, []),
    "force_yml --check": (None, f'name={TAG} ["touch PWNED2"]', ["--check"]),
    "force_yml": (None, f'name={TAG} ["touch PWNED2"]', []),
}


def _tag_job(variant: str) -> Callable[[Path], list[Step]]:
    in_file, forced, extra = TAG_RUNS[variant]

    def case(box: Path) -> list[Step]:
        file = make_test_options(box)
        if in_file:
            text = file.read_text().replace("name: tiny_test\n", f"name: {in_file}\n", 1)
            assert text != file.read_text()
            file.write_text(text)
        argv = ["test", "-opt", "f.yml", *extra] + (["--force_yml", forced] if forced else [])
        return [step(box, argv)]
    return case


for _variant in TAG_RUNS:
    job("test_yaml_tags_that_run_code", _variant)(_tag_job(_variant))


@pytest.mark.parametrize("variant", list(TAG_RUNS))
def test_yaml_tags_that_run_code(launched, variant):
    """An option file with `name: !!python/object/apply:os.system ["touch PWNED"]`, and a
    `--force_yml 'name=!!python/object/apply:os.system ["touch PWNED2"]'`, with and without `--check`: the command
    ran (the YAML loader built Python objects)."""
    (done,) = outcome(launched, "test_yaml_tags_that_run_code", variant)
    where = "--force_yml" if variant.startswith("force_yml") else "f.yml"
    refused(done, where, f"the tag {TAG} is not allowed")
    assert list(done.box.rglob("PWNED*")) == [] and list(done.box.parent.glob("PWNED*")) == []


@job("test_a_checkpoint_whose_pickle_runs_code")
def _evil_checkpoint(box: Path) -> list[Step]:
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch PWNED",))

    torch.save({"params": Evil()}, box / "evil.pth")
    write_photo(box / "img.png")
    return [step(box, ["upscale", "img.png", "-w", "evil.pth", "-o", "out"], output="out")]


def test_a_checkpoint_whose_pickle_runs_code(launched):
    """A zip `.pth` whose pickle calls `os.system`: `hatast upscale img.png -w evil.pth -o out` must be refused with
    one line that says the file holds code (Python objects) and was not run; not that it is "damaged", and not
    PyTorch's explanation cut mid-sentence."""
    (done,) = outcome(launched, "test_a_checkpoint_whose_pickle_runs_code")
    line = refused(done, "evil.pth", "holds code")
    assert "did not run" in line or "not run" in line, line
    assert "damaged" not in line, line
    assert "Weights only load failed" not in line and "WeightsUnpickler" not in line, line  # no cut torch text
    assert list(done.box.rglob("PWNED*")) == [] and not (done.box / "out").exists()


BAD_NAME = os.fsdecode(b"bad\xff.png")


@job("test_a_file_name_that_is_not_utf8")
def _not_utf8(box: Path) -> list[Step]:
    write_photo(box / "in" / BAD_NAME)
    out_bad = os.fsdecode(b"out\xff")
    return [step(box, ["upscale", "in", "-o", "out"], output="out"),
            step(box, ["upscale", "in", "-o", out_bad], output=out_bad)]


def test_a_file_name_that_is_not_utf8(launched):
    """A file name that is not valid UTF-8 (`bad\\xff.png`) in an input folder, and as the output folder's name:
    `hatast upscale <folder> -o <out>` died with signal 11 (exit 139) in cv2.imwrite."""
    for done, out in zip(outcome(launched, "test_a_file_name_that_is_not_utf8"), (b"out", b"out\xff")):
        succeeded(done)
        folder = os.path.join(os.fsencode(done.box), out)
        assert os.listdir(folder) == [b"bad\xff.png"], os.listdir(folder)  # no temporary or 0-byte file beside it
        data = np.frombuffer(Path(os.fsdecode(os.path.join(folder, b"bad\xff.png"))).read_bytes(), np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        assert image is not None and image.shape == (64, 64, 3)  # the default model: SR-LUT S x4
        assert sorted(os.listdir(done.box / "in")) == [BAD_NAME]


@job("test_fewer_training_images_than_one_batch", "--check")
def _small_set_check(box: Path) -> list[Step]:
    train_options(box, batch_size_per_gpu=8, dataset_enlarge_ratio=1)
    return [step(box, ["train", "-opt", "f.yml", "--check"])]


@job("test_fewer_training_images_than_one_batch", "train")
def _small_set_train(box: Path) -> list[Step]:
    train_options(box, batch_size_per_gpu=8, dataset_enlarge_ratio=1)
    return [step(box, ["train", "-opt", "f.yml"], output="experiments", timeout=120)]


@pytest.mark.parametrize("variant", ["--check", "train"])
def test_fewer_training_images_than_one_batch(launched, variant):
    """Training with fewer images than one batch (six photos, batch_size_per_gpu 8, dataset_enlarge_ratio 1):
    `hatast train -opt f.yml` spun at iteration 0 forever (BasicSR drops incomplete batches)."""
    (done,) = outcome(launched, "test_fewer_training_images_than_one_batch", variant)  # under a timeout: no hang
    refused(done, "f.yml: datasets:train:", "6 training image(s)", "fewer than one batch", "batch_size_per_gpu 8")
    assert not (done.box / "experiments").exists()


# --- Silent wrong results ---------------------------------------------------------------------------------------


@job("test_bench_lr_images_of_another_scale")
def _bench_x8(box: Path) -> list[Step]:
    write_pairs(box / "bench" / "Set5" / "HR", box / "bench" / "Set5" / "LR_bicubic" / "X4", 2, 48, 8, "{}x4")
    shutil.copy(SRLUT_X4, box / "table.npz")
    argv = ["bench", "-w", "table.npz", "--data", "bench", "--sets", "Set5", "--scale", "4", "-o", "out",
            "--no-progress"]
    return [step(box, argv, output="out")]


def test_bench_lr_images_of_another_scale(launched):
    """`hatast bench` with LR images too small (HR/8 in the X4 folder) on a Set5-like root gave a PSNR table of
    meaningless numbers (the LR was resized to fit)."""
    (done,) = outcome(launched, "test_bench_lr_images_of_another_scale")
    refused(done, "bench/Set5/LR_bicubic/X4/img000x4.png", "x8")
    assert not (done.box / "out").exists() or not any(p.is_file() for p in (done.box / "out").rglob("*"))


WEIGHT_COMMANDS = {
    "upscale": ["upscale", "img.png", "-w", "w.safetensors", "-o", "out"],
    "release": ["release", "w.safetensors", "--name", "Tiny_SRx2", "-o", "out"],
    "bench": ["bench", "-w", "w.safetensors", "--data", "bench", "--sets", "Set5", "--scale", "2", "-o", "out",
              "--no-progress"],
}
KEY = "conv_first.weight"


def _bad_weights_job(damage: str, command: str) -> Callable[[Path], list[Step]]:
    def case(box: Path) -> list[Step]:
        from safetensors.torch import save_file

        state = tiny_hat()
        if damage == "nan":
            state[KEY] = state[KEY].clone()
            state[KEY].view(-1)[3] = float("nan")
        else:
            state[KEY] = state[KEY].to(torch.int32)
        save_file(state, str(box / "w.safetensors"))
        write_photo(box / "img.png")
        write_pairs(box / "bench" / "Set5" / "HR", box / "bench" / "Set5" / "LR_bicubic" / "X2", 2, 24, 2, "{}x2")
        return [step(box, WEIGHT_COMMANDS[command], output="out")]
    return case


def _bad_table(box: Path) -> list[Step]:
    from hatast.lut.table import load_file

    table = load_file(IMLUT)
    table.arrays["scale"] = table.arrays["scale"].copy()
    table.arrays["scale"].flat[5] = np.nan
    table.save(box / "nan.npz")
    write_photo(box / "img.png")
    return [step(box, ["upscale", "img.png", "-w", "nan.npz", "--scale", "2", "-o", "out"], output="out")]


BAD_WEIGHTS = [f"{d}-{c}" for d in ("nan", "int") for c in WEIGHT_COMMANDS] + ["nan-table-upscale"]
for _damage in ("nan", "int"):
    for _command in WEIGHT_COMMANDS:
        job("test_weights_with_nan_or_a_wrong_dtype", f"{_damage}-{_command}")(_bad_weights_job(_damage, _command))
job("test_weights_with_nan_or_a_wrong_dtype", "nan-table-upscale")(_bad_table)


@pytest.mark.parametrize("variant", BAD_WEIGHTS)
def test_weights_with_nan_or_a_wrong_dtype(launched, variant):
    """Weights with NaN, or an integer dtype for a float parameter, in a `.safetensors`: `hatast upscale` wrote
    black or garbage images, `hatast release` published them, `hatast bench` printed NaN scores; an IM-LUT table
    `.npz` whose float array holds NaN upscaled to garbage."""
    (done,) = outcome(launched, "test_weights_with_nan_or_a_wrong_dtype", variant)
    damage, command = variant.split("-", 1)
    if command == "table-upscale":
        refused(done, "nan.npz", "'scale'", "non-finite")
    else:
        refused(done, "w.safetensors", f"'{KEY}'", "NaN" if damage == "nan" else "torch.int32")
    out = done.box / "out"
    assert not (out / "img.png").exists() and not (out / "manifest.json").exists()
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))  # no image, nothing published


# Newcomer: the numba kernel cache inside site-packages is tests/test_packaging.py's case, and USRNet checkpoints
# of the authors' code with nb: 1 are tests/test_usrnet.py::test_upscale_command_runs_an_authors_nb1_checkpoint
# (see the module docstring); they are not repeated here.
