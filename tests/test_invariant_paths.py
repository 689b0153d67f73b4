"""Property tests of the one output-path policy (:class:`hatast.utils.paths.OutputFolder`, issue 24): output and
suffix strings generated from ``..``, ``.``, separators, symlinks (into the inputs, onto the output folder, out of
the folder they sit in, onto an input file), hard links, case variants of existing names and folders that do not
exist yet, given to the commands that write (``hatast upscale``, ``hatast prepare benchmark``, ``hatast lut
transfer``) as a user would (a subprocess in a fresh sandbox per example).

Invariants (tests/invariants.py): exit 0 with a correct result or 2 with one ``error:`` line, never a traceback, a
signal or a hang; every file that existed is byte-identical afterwards (outputs inside the output folder excepted
with ``--overwrite``); nothing is written outside the output folder the string names (resolved as the kernel
resolves it, after the run).

Each sandbox is ``S/p/q/r/work`` (the working folder) and a generated path climbs at most 3 levels (``..`` or the
``link_up -> ..`` symlink), so every write a run could make lands inside ``S``, where :func:`snapshot` sees it.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from invariants import check_run, run, snapshot

TIMEOUT = 120
"""Seconds per run (a loaded CI machine; a run takes 1-6 s)."""
SIZES = {"Photo": (10, 12), "a": (8, 6)}
"""Input stems and their (height, width)."""

UP = ("..", "link_up")
"""Components that climb a level (``link_up`` points to ``..``)."""
LINKS = ("link_up", "link_in", "link_out", "link_a.png", "link_net.npz", "link_loop", "link_dangling")
"""The symlinks in the working folder (a path starts with one a fifth of the time, often followed by ``..``)."""
EXISTING = LINKS[1:] + ("in", "out", "afile", "set", "HR", "work", "a.png", "Photo.PNG", "a.jpg", "weights.npz",
                        "net.npz", "empty")
"""Names in the working folder (and in ``out``, ``set``, ``in``): the inputs, the links, a file where a folder is
expected (``afile``), a folder named like an output file (``out/a.jpg``), the working folder's own name."""
CASE_VARIANTS = ("IN", "Out", "OUT", "Link_In", "photo.png", "PHOTO.PNG", "A.png", "hr", "Set")
NEW = ("new", "dd", "newdir", "x", "net", "link_net", "weights", "Photo", "a")
"""Names that do not exist (some become existing files once ``.npz`` is added: ``net.npz``, ``link_net.npz``)."""
COMPONENTS = st.one_of(st.sampled_from(UP + (".",)), st.sampled_from(EXISTING), st.sampled_from(CASE_VARIANTS),
                       st.sampled_from(NEW))
"""A climbing or ``.`` component, an existing name, a case variant or a new name, each a quarter of the time."""
SUFFIXES = st.one_of(st.sampled_from(["", "_x", "_X", "..", ".", ".png", ".PNG", " ", "-", "--overwrite", "_IN", "in"]),
                     st.sampled_from(["", "_x", "in", "IN"]), st.sampled_from(["", "_x"]),
                     st.sampled_from(["/", "/../x", "\\", "x/", "_x/.."]))
"""Suffixes making plain names, names of existing entries (``a_x.png``, ``Photo_x.png`` in ``out``), or holding a
separator (a quarter of the time: refused before anything else is looked at)."""
INPUTS = {
    "in": ["in"], "in/": ["in/"], "link_in": ["link_in"], "./link_in/": ["./link_in/"],
    "files": ["in/Photo.PNG", "in/a.png"], "linked file": ["in/Photo.PNG", "link_a.png"],
}
"""How the inputs are named (upscale): each spelling's arguments."""


@st.composite
def paths(draw) -> tuple[str, bool]:
    """A path string joined from components (at most 3 climbing), with single, doubled or backslash separators, an
    optional leading ``./`` and trailing separator; and whether it is given absolute (from the working folder)."""
    first = draw(st.one_of(st.sampled_from(LINKS), COMPONENTS, COMPONENTS, COMPONENTS, COMPONENTS))
    rest = st.lists(st.one_of(st.just(".."), COMPONENTS, COMPONENTS), max_size=4)
    parts = [first, *draw(rest.filter(lambda p: sum(c in UP for c in [first, *p]) <= 3))]
    text = parts[0]
    for part in parts[1:]:
        text += draw(st.sampled_from(["/", "/", "/", "//", "\\"])) + part
    text = draw(st.sampled_from(["", "", "./"])) + text + draw(st.sampled_from(["", "", "/", "//"]))
    return text, draw(st.booleans())


SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _image(shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    """Made once: a tiny SR-LUT table (upscale runs it without torch), an SRLUTNet checkpoint (lut transfer reads
    it; named like a table, so ``-o net.npz`` is the input), and the two input images."""
    import torch

    from hatast.archs.srlut_arch import SRLUTNet

    folder = tmp_path_factory.mktemp("path-assets")
    torch.manual_seed(0)
    net = SRLUTNet("S", 2)
    net.to_table(4).save(folder / "weights.npz")
    torch.save({"params": net.state_dict()}, folder / "net.npz")
    cv2.imwrite(str(folder / "Photo.PNG"), _image(SIZES["Photo"], 1))
    cv2.imwrite(str(folder / "a.png"), _image(SIZES["a"], 2))
    return folder


def make_sandbox(assets: Path) -> tuple[Path, Path]:
    """A fresh sandbox ``S`` and its working folder ``S/p/q/r/work`` holding:

    ``in/`` (``Photo.PNG``, ``a.png``), ``set/HR/`` (copies), ``weights.npz`` (table), ``net.npz`` (checkpoint),
    ``out/`` (an earlier result ``Photo.png``; ``a_x.png`` a hard link to ``in/a.png``; ``Photo_x.png`` a symlink to
    ``in/Photo.PNG``; ``net.npz`` a hard link to the checkpoint; a folder ``a.jpg/``; a file ``LR_bicubic`` where
    ``hatast prepare benchmark`` makes a folder), the links ``link_in -> in``,
    ``link_out -> out``, ``link_up -> ..``, ``link_a.png -> in/a.png``, ``link_net.npz -> net.npz``, a loop
    ``link_loop -> link_loop``, a dangling ``link_dangling -> gone/deeper``, a regular file ``afile`` and an empty
    folder ``empty``."""
    sandbox = Path(tempfile.mkdtemp(prefix="hatast-paths-"))
    cwd = sandbox / "p" / "q" / "r" / "work"
    for folder in ("in", "set/HR", "out/a.jpg", "empty"):
        (cwd / folder).mkdir(parents=True)
    for name in ("Photo.PNG", "a.png"):
        shutil.copy(assets / name, cwd / "in" / name)
        shutil.copy(assets / name, cwd / "set" / "HR" / name)
    for name in ("weights.npz", "net.npz"):
        shutil.copy(assets / name, cwd / name)
    h, w = SIZES["Photo"]
    cv2.imwrite(str(cwd / "out" / "Photo.png"), _image((2 * h, 2 * w), 3))
    (cwd / "out" / "a.jpg" / "keep.txt").write_text("a folder named like an output file\n")
    (cwd / "out" / "LR_bicubic").write_text("a file where a folder is expected\n")
    os.link(cwd / "in" / "a.png", cwd / "out" / "a_x.png")
    os.link(cwd / "net.npz", cwd / "out" / "net.npz")
    os.symlink("../in/Photo.PNG", cwd / "out" / "Photo_x.png")
    for link, target in (("link_in", "in"), ("link_out", "out"), ("link_up", ".."), ("link_a.png", "in/a.png"),
                         ("link_net.npz", "net.npz"), ("link_loop", "link_loop"), ("link_dangling", "gone/deeper")):
        os.symlink(target, cwd / link)
    (cwd / "afile").write_text("a file where a folder is expected\n")
    return sandbox, cwd


def kernel_path(cwd: Path, text: str) -> Path:
    """``text`` from ``cwd`` resolved as the kernel resolves it (symlinks first, then ``..``; a folder that does not
    exist yet as if made)."""
    return Path(os.path.realpath(os.path.join(cwd, text)))


def kernel_entry(cwd: Path, text: str) -> Path:
    """The directory entry a file path names: its folder resolved, its name kept."""
    head, name = os.path.split(text)
    return kernel_path(cwd, head or ".") / name


@settings(max_examples=300, **SETTINGS)
@given(output=paths(), suffix=SUFFIXES, ext=st.sampled_from(["png", "jpg"]), inputs=st.sampled_from(sorted(INPUTS)))
@example(output=("link_up/../work/out", False), suffix="", ext="png", inputs="in")
@example(output=("new/../afile/..", False), suffix="_x", ext="png", inputs="in")
def test_output_folder_policy(assets, output, suffix, ext, inputs):
    """The policy object itself, in this process (many more spellings than the commands can be run with): the
    folder is where the kernel puts the path, a path the kernel refuses (a file followed by more components) is
    refused, and every planned output lies directly in that folder, on no input (any name for it, any letter case)
    and on no other output."""
    from hatast.upscaling import collect_inputs, plan_outputs
    from hatast.utils.files import OutputError
    from hatast.utils.paths import OutputFolder

    text, absolute = output
    sandbox, cwd = make_sandbox(assets)
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        target = f"{cwd}/{text}" if absolute else text
        files = collect_inputs(INPUTS[inputs])
        try:
            folder = OutputFolder(target, "-o", inputs=[*files, "weights.npz"])
            plan = plan_outputs(files, folder, suffix, ext)
            folder.check_writable()
        except OutputError:
            return
        try:
            os.stat(target)
        except OSError as err:
            assert err.errno != errno.ENOTDIR, f"{target}: the kernel refuses it, hatast took it"
        assert folder.root == kernel_path(cwd, target) and folder.root.is_dir()
        names = set()
        for _, out in plan:
            assert out.parent == folder.root, out
            assert out.name.casefold() not in names, f"{out} planned twice"
            names.add(out.name.casefold())
            for given in files:
                assert not (out.exists() and os.path.samefile(out, given)), f"{out} is the input {given}"
                for entry in (kernel_entry(cwd, str(given)), kernel_path(cwd, given)):  # the link, its target
                    assert not (os.path.samefile(out.parent, entry.parent)
                                and out.name.casefold() == entry.name.casefold()), f"{out} is {given} (case)"
    finally:
        os.chdir(previous)
        shutil.rmtree(sandbox, ignore_errors=True)


def _size(path: Path) -> tuple[int, int]:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} is not a readable image"
    return image.shape[:2]


@settings(max_examples=25, **SETTINGS)
@given(output=paths(), suffix=SUFFIXES, overwrite=st.booleans(), ext=st.sampled_from(["png", "jpg"]),
       inputs=st.sampled_from(sorted(INPUTS)))
@example(output=("dd/newdir/../in", False), suffix="", overwrite=True, ext="png", inputs="in")
@example(output=("dd/newdir/../../in", False), suffix="", overwrite=True, ext="png", inputs="files")
@example(output=("in", False), suffix="", overwrite=False, ext="png", inputs="files")
@example(output=("link_in", False), suffix="", overwrite=True, ext="png", inputs="in")
@example(output=("link_up/../work/out", False), suffix="", overwrite=True, ext="png", inputs="in")
@example(output=("link_out", False), suffix="_x", overwrite=True, ext="png", inputs="in")
@example(output=("out", False), suffix="", overwrite=True, ext="jpg", inputs="in")
@example(output=("afile/../new", False), suffix="", overwrite=False, ext="png", inputs="in")
@example(output=(".", False), suffix="", overwrite=True, ext="png", inputs="linked file")
def test_upscale_output_paths(assets, output, suffix, overwrite, ext, inputs):
    """``hatast upscale IN -o OUTPUT --suffix S [--overwrite] --ext E`` keeps the invariants; when it succeeds,
    every output is in the folder OUTPUT names, twice the input's size. The examples: the spellings issue 24
    reported (through folders not made yet; ``in`` holding ``Photo.PNG``; ``link_in``), and the ones this test
    found: ``link_up/../work/out`` (the ``..`` was dropped as text before ``link_up`` was read, so the outputs went
    to ``./work/out``, not ``../../work/out``) and ``afile/../new`` (taken as ``./new``; the kernel refuses it)."""
    text, absolute = output
    sandbox, cwd = make_sandbox(assets)
    try:
        target = f"{cwd}/{text}" if absolute else text
        before = snapshot(sandbox)
        argv = ["upscale", *INPUTS[inputs], "-m", "weights.npz", "-o", target, f"--suffix={suffix}", "--ext", ext,
                "--no-progress"] + (["--overwrite"] if overwrite else [])
        result = run(argv, cwd, timeout=TIMEOUT)
        check_run(result, sandbox, before, cwd / target, overwrite=overwrite, codes=(0, 2))
        if result.code == 0:
            root = kernel_path(cwd, target)
            stems = [Path(arg).stem for arg in INPUTS[inputs]] if inputs in ("files", "linked file") else list(SIZES)
            for stem in stems:
                out = root / f"{stem}{suffix}.{ext}"
                assert out.is_file(), f"{out} missing after exit 0\n{result}"
                h, w = SIZES.get(stem, SIZES["a"])  # link_a.png is a.png
                assert _size(out) == (2 * h, 2 * w), f"{out}: not twice the input's size\n{result}"
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


@settings(max_examples=3, **SETTINGS)
@given(output=paths(), overwrite=st.booleans(), hr=st.sampled_from(["in", "link_in/", "set/HR"]))
@example(output=("set", False), overwrite=False, hr="set/HR")
@example(output=("link_out", False), overwrite=True, hr="in")
def test_prepare_benchmark_output_paths(assets, output, overwrite, hr):
    """``hatast prepare benchmark HR -o OUTPUT --scales 2`` keeps the invariants (each run imports torch: few
    examples). Examples: ``-o set`` for ``set/HR`` (the HR folder is the set's own); ``-o link_out``, where
    ``out/LR_bicubic`` is a file: it wrote ``HR/`` and then crashed with a traceback (exit 70)."""
    text, absolute = output
    sandbox, cwd = make_sandbox(assets)
    try:
        target = f"{cwd}/{text}" if absolute else text
        before = snapshot(sandbox)
        argv = ["prepare", "benchmark", hr, "-o", target, "--scales", "2", "--no-progress"]
        result = run(argv + (["--overwrite"] if overwrite else []), cwd, timeout=TIMEOUT)
        check_run(result, sandbox, before, cwd / target, overwrite=overwrite, codes=(0, 2))
        if result.code == 0:
            root = kernel_path(cwd, target)
            for stem, (h, w) in SIZES.items():
                assert (root / "HR" / f"{stem}.png").is_file() or (root / "HR" / f"{stem}.PNG").is_file(), result
                lr = root / "LR_bicubic" / "X2" / f"{stem}x2.png"
                assert _size(lr) == (math.ceil(h / 2), math.ceil(w / 2)), f"{lr}\n{result}"
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


@settings(max_examples=3, **SETTINGS)
@given(output=paths(), overwrite=st.booleans())
@example(output=("link_out/net", False), overwrite=True)
@example(output=("link_up/../work/t", False), overwrite=False)
@example(output=("link_a.png/../t", False), overwrite=False)
def test_lut_transfer_output_paths(assets, output, overwrite):
    """``hatast lut transfer net.npz -o OUTPUT.npz`` writes that one file or refuses. Examples: a hard link to the
    checkpoint, reached through a link (``link_out/net.npz``); the two spellings of the upscale test, as a file's
    folder (``link_up/../work/t.npz``, ``link_a.png/../t.npz``)."""
    from hatast.lut.table import load_file

    text, absolute = output
    sandbox, cwd = make_sandbox(assets)
    try:
        target = (f"{cwd}/{text}" if absolute else text) + ".npz"
        before = snapshot(sandbox)
        argv = ["lut", "transfer", "net.npz", "-o", target] + (["--overwrite"] if overwrite else [])
        result = run(argv, cwd, timeout=TIMEOUT)
        entry = kernel_entry(cwd, target)
        changed = check_run(result, sandbox, before, entry.parent, overwrite=overwrite, codes=(0, 2))
        for key, value in changed.items():  # the one file named, and the folders made for it
            if value[0] != "dir":
                assert kernel_entry(sandbox, key) == entry, f"{key} written, not {entry}\n{result}"
        if result.code == 0:
            table = load_file(entry).tables["sr"]
            assert (table.kind, table.scale) == ("S", 2), result
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
