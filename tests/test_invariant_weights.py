"""Property tests (issue 24): weights and tables with random corruption, fed to every command that reads them.

Checkpoints of four families (a tiny HAT, HAT+AST, USRNet and an SRLUTNet) get one drawn corruption (NaN or inf in
a tensor, a float tensor cast to another dtype, HAT's integer index buffer cast to float, a tensor of another
shape, a key dropped, renamed or added, a value that is not a tensor), a drawn wrapping (bare, ``params``,
``params_ema``, both, ``state_dict``, ``model``, a ``module.`` prefix, beside other entries, or under a key no
loader uses), a format (``.pth`` or ``.safetensors``) and, sometimes, byte damage (truncated at a drawn byte, or
drawn bytes flipped). Tables (an SR-LUT file of format 1 and 2, the IM-LUT NLC file, an SR-LUT authors' ``.npy``)
get a drawn change of their entries (dtype, shape, values), arrays (NaN, inf, dtype, shape), metadata (a value
replaced by a drawn one, a key deleted, JSON that is not an object) or bytes (truncation).

They go to ``hatast upscale`` (the main one), ``release``, ``convert-ast``, ``bench``, ``export`` and ``lut info``,
in-process (each command's ``main(argv)``, under a faulthandler hang guard) and a few as separate processes. The
invariants (:mod:`invariants`): exit 0 with a correct result only when the corruption is harmless (a half-precision
tensor, a wrapper key), else exit 2 and one ``error:`` line naming the file and, where the problem is one tensor or
table, its key; never a traceback; every input byte-identical; nothing written outside the output folder and
nothing but folders on a refusal.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import json
import math
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, TINY_HAT, sample_image
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from invariants import Run, check_run, run, snapshot
from safetensors.torch import save as safetensors_bytes

from hatast.archs.detect import ARCHITECTURES
from hatast.archs.hat_arch import HAT
from hatast.archs.hat_ast_arch import HATAST
from hatast.archs.srlut_arch import SRLUTNet
from hatast.archs.usrnet_arch import USRNet
from hatast.cli import bench, convert_ast, export, lut, release, upscale
from hatast.data.degradations import bicubic_downsample

SETTINGS = dict(derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
HANG_S = 120
"""An in-process command that runs longer than this is a hang: faulthandler prints every stack and exits."""
SRLUT_FILE = REPO / "hatast" / "weights" / "srlut" / "SRLUT-S_SRx2.npz"
IMLUT_FILE = REPO / "hatast" / "weights" / "imlut" / "IMLUT-NLC.npz"
USRNET_TINY = dict(n_iter=2, h_nc=8, nc=[4, 8, 8, 8], nb=1)
IMAGE_HW = (12, 16)
USRNET_ARGS = ["--scale", "2", "--kernel", "gaussian:1.6"]


# ---------------------------------------------------------------------------------------------------------------
# running a command


def call(main, argv: list[str], cwd: Path) -> Run:
    """``main(argv)`` in ``cwd`` with stdout and stderr captured; a run past :data:`HANG_S` ends the test process
    with every thread's stack (faulthandler), so a hang cannot pass."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    faulthandler.dump_traceback_later(HANG_S, exit=True, file=sys.__stderr__)
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            code = main(argv)
    finally:
        faulthandler.cancel_dump_traceback_later()
        os.chdir(previous)
    return Run(list(argv), code, out.getvalue(), err.getvalue())


def sandbox(tmp_path: Path, assets: dict, bench_data: bool = False) -> Path:
    """A fresh folder holding the input image (and the tiny benchmark root): one per example."""
    box = Path(tempfile.mkdtemp(dir=tmp_path))
    (box / "img.png").write_bytes(assets["image"])
    if bench_data:
        for name, content in assets["bench"].items():
            (box / name).parent.mkdir(parents=True, exist_ok=True)
            (box / name).write_bytes(content)
    return box


@dataclass
class Expect:
    """What a corrupted file must give: ``ok`` True (exit 0 and a correct result), False (exit 2, one line with
    every fragment), None (either; exit 0 still needs a well-formed result). ``exact``: the result equals the
    clean file's (lossless changes); ``close``: within a few levels of it (half precision)."""

    ok: bool | None
    fragments: tuple[str, ...] = ()
    exact: bool = False
    close: bool = False
    notes: list[str] = field(default_factory=list)


def check_outcome(result: Run, box: Path, before: dict, output: str, expect: Expect, weights: str) -> bool:
    """The invariants, then the expectation; returns whether the command succeeded."""
    check_run(result, box, before, box / output, codes=(0, 2))
    if currently_in_test_context():
        event(f"exit {result.code}" + (" (harmless)" if expect.ok else ""))
    if expect.ok is True:
        assert result.code == 0, f"a harmless change was refused ({expect.notes})\n{result}"
    elif expect.ok is False:
        assert result.code == 2, f"a damaged file was accepted ({expect.notes})\n{result}"
    if result.code == 2:
        line = result.err.strip()
        assert weights in line, f"the error line does not name the file {weights}\n{result}"
        for fragment in expect.fragments:
            assert fragment in line, f"the error line does not name {fragment!r} ({expect.notes})\n{result}"
    return result.code == 0


def check_image(box: Path, expect: Expect, baseline: np.ndarray | None) -> None:
    """``out/img.png``: twice the input's size, not one flat value, and equal (or close) to the clean result."""
    out = cv2.imread(str(box / "out" / "img.png"), cv2.IMREAD_UNCHANGED)
    assert out is not None, "exit 0 without the output image"
    assert out.shape[:2] == (2 * IMAGE_HW[0], 2 * IMAGE_HW[1]), out.shape
    if expect.ok is not True or not (expect.exact or expect.close):
        return  # random table entries may well give a flat image
    assert int(out.max()) != int(out.min()), f"a flat output ({expect.notes})"
    if baseline is not None and expect.exact:
        assert np.array_equal(out, baseline), f"a lossless change changed the result ({expect.notes})"
    if baseline is not None and expect.close:
        assert np.abs(out.astype(int) - baseline).mean() <= 3, f"far from the clean result ({expect.notes})"


# ---------------------------------------------------------------------------------------------------------------
# the clean files


def _usrnet() -> USRNet:
    net = USRNet(**USRNET_TINY).eval()
    for p in net.parameters():  # non-trivial weights everywhere (the default init leaves outputs near zero)
        p.data.normal_(0, 0.05)
    return net


class Assets(dict):
    """The fixture's dict, shown by name in hypothesis' reports (its repr would be megabytes of tensors)."""

    def __repr__(self) -> str:
        return "assets"


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict:
    """Clean state dicts and tables, the input image, a tiny benchmark root, and each clean file's output."""
    folder = tmp_path_factory.mktemp("clean")
    torch.manual_seed(0)
    states = {
        "HAT": HAT(**TINY_HAT).state_dict(),
        "HATAST": HATAST(**TINY_HAT).state_dict(),
        "USRNet": _usrnet().state_dict(),
        "SRLUTNet": SRLUTNet("S", 2, num_feat=8, num_hidden=1).state_dict(),
    }
    states = {name: {k: v.detach().clone().contiguous() for k, v in state.items()} for name, state in states.items()}
    image = sample_image("coffee")[100:100 + IMAGE_HW[0], 200:200 + IMAGE_HW[1]]
    ok, encoded = cv2.imencode(".png", image)
    hr = sample_image("astronaut")[64:96, 64:96]
    bench_files = {"bench/Tiny/HR/a.png": cv2.imencode(".png", hr)[1].tobytes(),
                   "bench/Tiny/LR_bicubic/X2/ax2.png": cv2.imencode(".png", bicubic_downsample(hr, 2))[1].tobytes()}
    tables = _clean_tables()
    assets = Assets(states=states, image=encoded.tobytes(), bench=bench_files, tables=tables, baseline={})
    (folder / "img.png").write_bytes(assets["image"])
    for family, state in states.items():
        torch.save({"params": state}, folder / f"{family}.pth")
        extra = USRNET_ARGS if family == "USRNet" else []
        result = call(upscale.main, ["img.png", "-w", f"{family}.pth", "-o", f"out_{family}", *extra], folder)
        assert result.code == 0, result
        assets["baseline"][family] = cv2.imread(str(folder / f"out_{family}" / "img.png"), cv2.IMREAD_UNCHANGED)
    for kind, table in tables.items():
        (folder / table.name).write_bytes(table.content())
        extra = ["--scale", "2"] if kind == "imlut" else []
        result = call(upscale.main, ["img.png", "-w", table.name, "-o", f"out_{kind}", *extra], folder)
        assert result.code == 0, result
        assets["baseline"][kind] = cv2.imread(str(folder / f"out_{kind}" / "img.png"), cv2.IMREAD_UNCHANGED)
    return assets


# ---------------------------------------------------------------------------------------------------------------
# checkpoints


WRAPPERS = ["bare", "params", "params_ema", "both", "state_dict", "model", "module.", "beside other entries",
            "under another key"]
CASTS = {"int32": torch.int32, "int64": torch.int64, "bool": torch.bool, "float16": torch.float16,
         "bfloat16": torch.bfloat16, "float64": torch.float64, "complex64": torch.complex64}
MUTATIONS = ["none", "none", "none", "nan", "inf", "cast", "index to float", "index to int32", "reshape", "drop",
             "rename", "add", "not a tensor"]
RESHAPES = ["flatten", "unsqueeze", "drop first row", "double first dim", "transpose", "scalar"]
NOT_TENSORS = ["text", [1, 2], 3.5, None, {"nested": 1}]
INDEXED = ("HAT", "HATAST")
"""The families with integer buffers (HAT's relative position indices)."""


@dataclass(frozen=True)
class Corruption:
    """One corruption of a clean checkpoint, as data (so a failing case can be kept as an ``@example``).

    ``key``: the tensor (a name, or an index into the candidates, taken modulo their count); ``detail``: the dtype,
    the reshape, the value, or ``(element, value)`` for NaN/inf; ``damage``: ``()``, ``("truncate", fraction)`` or
    ``("flip", ((fraction, xor), ...))``."""

    family: str
    mutation: str = "none"
    key: str | int = 0
    detail: object = None
    wrapper: str = "bare"
    suffix: str = ".pth"
    damage: tuple = ()


@st.composite
def corruptions(draw, families=("HAT", "HATAST", "SRLUTNet", "USRNet"), mutations=MUTATIONS,
                damage: bool = True) -> Corruption:
    family = draw(st.sampled_from(sorted(families)), label="family")
    mutation = draw(st.sampled_from([m for m in mutations if family in INDEXED or not m.startswith("index")]),
                    label="mutation")
    detail = None
    if mutation in ("nan", "inf"):
        detail = (draw(st.integers(0, 10**6), label="element"),
                  math.nan if mutation == "nan" else draw(st.sampled_from([math.inf, -math.inf])))
    elif mutation in ("cast", "reshape", "add", "not a tensor"):
        detail = draw(st.sampled_from({"cast": sorted(CASTS), "reshape": RESHAPES, "not a tensor": NOT_TENSORS,
                                       "add": ["extra.weight", "net.extra", "h.extra.bias"]}[mutation]), label="how")
    suffix = ".pth" if mutation == "not a tensor" else draw(st.sampled_from([".pth", ".safetensors"]), label="format")
    wrapper = draw(st.sampled_from(WRAPPERS if suffix == ".pth" else ["bare", "module."]), label="wrapper")
    how = draw(st.sampled_from(["none"] * 6 + ["truncate", "flip"]), label="bytes") if damage else "none"
    fraction = st.floats(0, 1, exclude_max=True)
    harm = {"none": (), "truncate": ("truncate", draw(fraction) if how == "truncate" else 0),
            "flip": ("flip", tuple(draw(st.lists(st.tuples(fraction, st.integers(1, 255)), min_size=1, max_size=4)))
                     if how == "flip" else ())}[how]
    return Corruption(family, mutation, draw(st.integers(0, 10**6), label="key"), detail, wrapper, suffix, harm)


def build_checkpoint(case: Corruption, clean: dict) -> tuple[bytes, Expect]:
    """The file ``case`` describes and what it must give."""
    state = dict(clean)
    floats = sorted(k for k, v in state.items() if v.is_floating_point())
    indices = sorted(k for k, v in state.items() if not v.is_floating_point())

    def pick(keys: list[str]) -> str:
        return case.key if isinstance(case.key, str) else keys[case.key % len(keys)]

    mutation, detail = case.mutation, case.detail
    expect = Expect(True, exact=True, notes=[mutation])
    if mutation in ("nan", "inf"):
        key = pick(floats)
        flat = state[key].flatten().clone()
        flat[detail[0] % flat.numel()] = detail[1]
        state[key] = flat.view(state[key].shape)
        expect = Expect(False, (key,), notes=[mutation, key])
    elif mutation == "cast":
        key = pick(floats)
        state[key] = state[key].to(CASTS[detail])
        expect = (Expect(True, exact=detail == "float64", close=detail != "float64", notes=[detail, key])
                  if CASTS[detail].is_floating_point else Expect(False, (key,), notes=[detail, key]))
    elif mutation in ("index to float", "index to int32"):
        key = pick(indices)
        state[key] = state[key].float() if mutation == "index to float" else state[key].to(torch.int32)
        if mutation == "index to float":
            expect = Expect(False, (key,), notes=[mutation, key])
    elif mutation == "reshape":
        key = pick(sorted(state))
        tensor = state[key]
        if detail == "flatten" and tensor.ndim > 1:
            tensor = tensor.flatten()
        elif detail == "drop first row" and tensor.ndim and tensor.shape[0] > 1:
            tensor = tensor[1:]
        elif detail == "double first dim" and tensor.ndim:
            tensor = torch.cat([tensor, tensor])
        elif detail == "transpose" and tensor.ndim > 1 and tensor.shape[0] != tensor.shape[-1]:
            tensor = tensor.transpose(0, -1)
        elif detail == "scalar":
            tensor = tensor.flatten()[0].clone()
        else:
            tensor = tensor.unsqueeze(0)
        state[key] = tensor.contiguous()
        expect = Expect(False, (key,), notes=[detail, key])
    elif mutation == "drop":
        key = pick(sorted(state))
        del state[key]
        expect = Expect(False, (key,), notes=[mutation, key])
    elif mutation == "rename":
        key = pick(sorted(state))
        state[key + "_old"] = state.pop(key)
        expect = Expect(False, (key,), notes=[mutation, key])
    elif mutation == "add":
        state[detail] = torch.zeros(3)
        expect = Expect(False, (detail,), notes=[mutation, detail])
    elif mutation == "not a tensor":
        key = pick(sorted(state))
        state[key] = detail
        expect = Expect(False, (key,), notes=[mutation, key])
    if mutation in ("reshape", "drop", "rename", "add") and _settings(case.family, state) not in (
            None, _settings(case.family, clean)):
        # a tensor the architecture's settings are read from: the file describes another network, and the refusal
        # names what does not fit it (the key changed may be one of many)
        expect.fragments = ()
        expect.notes.append("settings read from it")

    expect.notes.append(case.wrapper)
    if case.wrapper == "module.":
        state = {"module." + k: v for k, v in state.items()}
    if case.suffix == ".safetensors":
        content = safetensors_bytes(state)
    else:
        obj = {"bare": state, "module.": state, "both": {"params": state, "params_ema": state},
               "beside other entries": {"params": state, "iter": 7, "note": "trained", "optimizer": [0.5]},
               "under another key": {"generator": state}}.get(case.wrapper, {case.wrapper: state})
        if case.wrapper == "under another key":  # refused for the wrapping, whatever else is wrong
            expect = Expect(False, ("generator",), notes=expect.notes)
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        content = buffer.getvalue()
    if case.damage and case.damage[0] == "truncate":
        content = content[:int(case.damage[1] * len(content))]
        expect = Expect(False, notes=[*expect.notes, "truncated"])
    elif case.damage:
        damaged = bytearray(content)
        for at, xor in case.damage[1]:
            damaged[int(at * len(content))] ^= xor
        content = bytes(damaged)
        expect = Expect(None, notes=[*expect.notes, "flipped"])
    return content, expect


ARCHITECTURE = {arch.name: arch for arch in ARCHITECTURES}


def _settings(family: str, state: dict) -> dict | None:
    """The constructor arguments detection reads from ``state`` (None when the reader refuses it: then its message
    must name the key)."""
    arch = ARCHITECTURE[family]
    try:
        return arch.read_config(arch.canonical(state))
    except Exception:  # noqa: BLE001
        return None


def _write(box: Path, name: str, content: bytes) -> str:
    (box / name).write_bytes(content)
    return name


@settings(max_examples=100, **SETTINGS)
@given(case=corruptions())
@example(case=Corruption("SRLUTNet", "drop", "net.body.0.bias"))  # was: "match none of the architectures"
@example(case=Corruption("SRLUTNet", "drop", "net.body.4.weight"))  # was: read as one layer fewer, key not named
@example(case=Corruption("HAT", "reshape", "conv_first.weight", "scalar"))  # was: IndexError in the settings reader
@example(case=Corruption("HAT", "cast", "conv_last.weight", "float16", "params_ema", ".safetensors"))
@example(case=Corruption("USRNet", "reshape", "p.m_tail.weight", "drop first row"))  # was: loaded, exit 70 at run time
@example(case=Corruption("HAT", "none", damage=("flip", ((0.015625, 1),))))  # an index buffer: exit 70 at run time
def test_upscale_with_corrupted_checkpoints(assets, tmp_path, case):
    content, expect = build_checkpoint(case, assets["states"][case.family])
    box = sandbox(tmp_path, assets)
    weights = _write(box, "w" + case.suffix, content)
    before = snapshot(box)
    extra = USRNET_ARGS if case.family == "USRNet" else []
    result = call(upscale.main, ["img.png", "-w", weights, "-o", "out", "--no-progress", *extra], box)
    if check_outcome(result, box, before, "out", expect, weights):
        check_image(box, expect, assets["baseline"][case.family])


@settings(max_examples=60, **SETTINGS)
@given(command=st.sampled_from(["release", "convert-ast", "bench"]), data=st.data())
def test_release_convert_and_bench_with_corrupted_checkpoints(assets, tmp_path, command, data):
    families = {"release": ("HAT", "HATAST", "SRLUTNet", "USRNet"), "convert-ast": ("HAT",),
                "bench": ("HAT", "HATAST", "SRLUTNet")}
    case = data.draw(corruptions(families[command]), label="corruption")
    content, expect = build_checkpoint(case, assets["states"][case.family])
    box = sandbox(tmp_path, assets, bench_data=command == "bench")
    weights = _write(box, "w" + case.suffix, content)
    before = snapshot(box)
    if command == "release":
        result = call(release.main, [weights, "--name", "Tiny_x2", "-o", "rel"], box)
        if check_outcome(result, box, before, "rel", expect, weights):
            assert "Tiny_x2" in (box / "rel" / "manifest.json").read_text()
            assert list((box / "rel").rglob("Tiny_x2.safetensors"))
    elif command == "convert-ast":
        result = call(convert_ast.main, [weights, "conv/ast.pth", "--check-size", "0", "--overlap-ratio", "1"], box)
        if check_outcome(result, box, before, "conv", expect, weights):
            converted = torch.load(box / "conv" / "ast.pth", weights_only=True)
            assert all(torch.isfinite(v).all() for v in converted["params"].values() if v.is_floating_point())
    else:
        result = call(bench.main, ["-w", weights, "--data", "bench", "--sets", "Tiny", "--scale", "2", "-o", "b",
                                   "--no-progress"], box)
        if check_outcome(result, box, before, "b", expect, weights):
            assert "PSNR" in (box / "b" / "summary.md").read_text()


@settings(max_examples=4, **SETTINGS)
@given(case=corruptions(("HAT",), ["nan", "index to float", "drop", "reshape"], damage=False))
def test_export_refuses_corrupted_checkpoints(assets, tmp_path, case):
    pytest.importorskip("onnxruntime")
    content, expect = build_checkpoint(case, assets["states"]["HAT"])
    box = sandbox(tmp_path, assets)
    weights = _write(box, "w" + case.suffix, content)
    before = snapshot(box)
    result = call(export.main, [weights, "-o", "onnx/m.onnx"], box)
    check_outcome(result, box, before, "onnx", expect, weights)


# ---------------------------------------------------------------------------------------------------------------
# tables


@dataclass
class TableFile:
    """A table file as members (``.npz``: metadata dict + arrays; ``.npy``: one array) that mutations edit."""

    name: str
    members: dict[str, np.ndarray]
    meta: dict | None = None
    raw_metadata: str | None = None
    """Written instead of ``meta`` (metadata that is not the JSON of an object)."""

    def copy(self) -> TableFile:
        return TableFile(self.name, dict(self.members), json.loads(json.dumps(self.meta)) if self.meta else None)

    def content(self) -> bytes:
        buffer = io.BytesIO()
        if self.name.endswith(".npy"):
            np.save(buffer, self.members["entries"], allow_pickle=False)
        else:
            text = self.raw_metadata if self.raw_metadata is not None else json.dumps(self.meta)
            np.savez(buffer, metadata=np.array(text), **self.members)
        return buffer.getvalue()


def _clean_tables() -> dict[str, TableFile]:
    from hatast.lut.table import load_file

    tables = {}
    with np.load(SRLUT_FILE) as archive:
        tables["srlut1"] = TableFile("t.npz", {"entries": archive["entries"]}, json.loads(str(archive["metadata"])))
        entries = archive["entries"]
    loaded = load_file(SRLUT_FILE)
    path = Path(tempfile.mkdtemp()) / "v2.npz"
    loaded.save(path)
    with np.load(path) as archive:
        tables["srlut2"] = TableFile("t.npz", {k: archive[k] for k in archive.files if k != "metadata"},
                                     json.loads(str(archive["metadata"])))
    path.unlink()
    with np.load(IMLUT_FILE) as archive:
        tables["imlut"] = TableFile("t.npz", {k: archive[k] for k in archive.files if k != "metadata"},
                                    json.loads(str(archive["metadata"])))
    tables["authors"] = TableFile("Model_S_x2_4bit_int8.npy", {"entries": entries.reshape(-1, 1, 2, 2)})
    return tables


VALUES = [-1, 0, 1, 2, 3, 4, 8, 9, 64, 100, 10**30, -10**30, 1.5, 1e308, math.nan, math.inf, -math.inf, "4", "",
          "NLC", "softmax", None, True, [], {}, [[0, 0], [0, 10**12]], [[0, 0], [1, 1], [0, 1], [1, 0]]]


def _paths(meta, prefix=()) -> list[tuple]:
    found = []
    for key, value in meta.items():
        if key == "info" or key == "names" and value == []:  # provenance; an empty list has nothing to change
            continue
        found.append((*prefix, key))
        if isinstance(value, dict):
            found += _paths(value, (*prefix, key))
    return found


def _get(meta: dict, path: tuple):
    for key in path:
        meta = meta[key]
    return meta


IGNORED = {"levels", "range", "meaning", "format", "names"}
"""Metadata keys that describe the tables for people (or repeat what the entries say): any value, or none, may be
harmless; a reader may also refuse a value of the wrong type."""
MAX_VALUE_SCALE = 2**15


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(old, new) -> bool:
    if _number(old) and _number(new):
        return old == new  # 1 and 1.0 say the same; NaN is never equal
    return type(old) is type(new) and old == new


def expect_metadata(kind: str, path: tuple, old, new, deleted: bool) -> tuple[bool | None, bool | None]:
    """(what a command that runs the tables must give, what ``lut info`` must give) when metadata key ``path``
    (a tuple) is changed from ``old`` to ``new`` or ``deleted``: True exit 0, False exit 2, None either."""
    leaf, scope = path[-1], path[:2]
    if not deleted and _same(old, new):
        return True, True
    if leaf in IGNORED or (scope == ("arrays", "scale") and leaf == "dtype"):
        return None, None
    scale_ok = not deleted and isinstance(new, int) and not isinstance(new, bool) and 1 <= new <= MAX_VALUE_SCALE
    if kind == "srlut1":  # format 1: kind, scale, interval, offsets (optional), value_scale (optional, 127 runs)
        if leaf in ("offsets", "value_scale") and deleted:
            return True, True
        if leaf == "format_version":
            below_2 = deleted or (isinstance(new, int) and not isinstance(new, bool) and new < 2)
            return (True, True) if below_2 else (False, False)
        if leaf == "value_scale":
            return False, scale_ok
        return False, False
    if path == ("format_version",) or path[0] == "tables" and leaf in ("interval", "count", "dtype", "layout",
                                                                         "receptive_field", "outputs", "values"):
        return False, False
    if path == ("family",):
        return (False, True) if isinstance(new, str) else (False, False)
    if path in (("arrays",), ("config",)) and deleted:
        return (True, True) if kind == "srlut2" else (False, True)
    if len(path) == 2 and path[0] == "tables" and deleted:  # the table's entries stay, undescribed
        return False, kind == "imlut"
    if path in (("arrays",), ("config",)) or path == ("tables",) or len(path) == 2 and path[0] == "tables":
        return False, False
    if leaf == "kind":  # the offsets say which field; a name is for people
        return True, True
    if leaf == "offsets":
        return (None, True) if new == [[0, 0], [1, 1], [0, 1], [1, 0]] else (False, False)
    if leaf == "value_scale":
        return (False if kind == "srlut2" or not scale_ok else None), scale_ok
    if leaf == "rotations":
        valid = isinstance(new, int) and not isinstance(new, bool) and new in (1, 4)
        return False, valid
    if leaf == "scale" and path[0] == "tables":
        return (True, True) if deleted and kind == "imlut" else (False, False)
    if path == ("arrays", "scale"):  # deleted: the array stays, undescribed
        return (False, True) if deleted else (False, False)
    if scope == ("arrays", "scale"):
        return False, False
    if len(path) == 3 and path[1] == "scale_grid" and deleted and old == {"start": 1.0, "stop": 8.0, "step": 0.1}.get(
            leaf):
        return True, True  # the grid's default, the same grid
    if path[0] == "config":  # IM-LUT's settings: checked by the commands that run the tables
        if path == ("config", "normalise") and new in ("softmax", "sum"):
            return None, None
        if path == ("config", "refiner_range") and _number(new) and 0 < new <= 1:
            return None, None
        return False, None
    return False, False


TABLE_MUTATIONS = ["none", "entries dtype", "entries shape", "entries values", "metadata value", "metadata value",
                   "metadata value", "delete metadata", "metadata not an object", "truncate"]
AUTHORS_MUTATIONS = ["none", "entries dtype", "entries shape", "entries values", "file name", "truncate"]
ARRAY_MUTATIONS = ["array nan", "array dtype", "array shape"]
DETAILS = {
    "entries dtype": ["int16", "uint8", "int32", "float32", "float64", "bool"],
    "entries shape": ["drop a row", "flatten", "add a column", "3-D", "transpose"],
    "file name": ["Model_V_x2_4bit_int8.npy", "Model_S_x3_4bit_int8.npy", "Model_S_x2_6bit_int8.npy", "table.npy"],
    "array nan": [np.nan, np.inf, -np.inf],
    "array dtype": ["float32", "float64", "bool", "complex64", "U1"],
    "array shape": ["metadata says the old shape", "metadata says the new shape"],
    "metadata value": VALUES,
    "metadata not an object": ["[1, 2]", "null", "{\"format\": ", "", "NaN", "\"text\""],
}


@dataclass(frozen=True)
class TableCorruption:
    """One corruption of a clean table file, as data. ``target``: the member or the metadata key path (a dotted
    name, or an index into the candidates); ``detail``: the dtype, reshape, value, name or text; ``at``: an element
    or seed (index), or the fraction kept by a truncation."""

    kind: str
    mutation: str = "none"
    target: str | int = 0
    detail: object = None
    at: float | int = 0


@st.composite
def table_corruptions(draw, kinds=("authors", "imlut", "srlut1", "srlut2")) -> TableCorruption:
    kind = draw(st.sampled_from(sorted(kinds)), label="table")
    mutations = AUTHORS_MUTATIONS if kind == "authors" else TABLE_MUTATIONS + (ARRAY_MUTATIONS if kind == "imlut"
                                                                              else [])
    mutation = draw(st.sampled_from(mutations), label="mutation")
    detail = draw(st.sampled_from(DETAILS[mutation]), label="how") if mutation in DETAILS else None
    at = draw(st.floats(0, 1, exclude_max=True), label="kept") if mutation == "truncate" else draw(
        st.integers(0, 2**32 - 1), label="element")
    return TableCorruption(kind, mutation, draw(st.integers(0, 10**6), label="target"), detail, at)


def build_table(case: TableCorruption, clean: dict[str, TableFile]) -> tuple[str, bytes, Expect, Expect]:
    """The file ``case`` describes: (its name, its bytes, what a command that runs it must give, what ``lut info``
    must give)."""
    table = clean[case.kind].copy()
    mutation, detail = case.mutation, case.detail

    def pick(candidates: list) -> object:
        return case.target if isinstance(case.target, str) else candidates[case.target % len(candidates)]

    run_ok = info_ok = True
    fragments: tuple[str, ...] = ()
    exact = True
    notes = [case.kind, mutation]
    if mutation in ("entries dtype", "entries shape", "entries values"):
        member = pick(sorted(k for k in table.members if k == "entries" or k.startswith("table.")))
        entries = table.members[member]
        fragments = (member.removeprefix("table."),) if member.startswith("table.") else ()
        if mutation == "entries dtype":
            table.members[member] = entries.astype(detail)
        elif mutation == "entries shape":
            table.members[member] = {"drop a row": lambda e: e[1:], "flatten": lambda e: e.reshape(-1),
                                     "add a column": lambda e: np.concatenate([e, e[..., :1]], -1),
                                     "3-D": lambda e: e[None] if e.ndim < 4 else e.reshape(-1, 2, 2),
                                     "transpose": lambda e: e.T}[detail](entries)
        else:
            rng = np.random.default_rng(int(case.at))
            table.members[member] = rng.integers(-128, 128, entries.shape, dtype=np.int8)
            exact = False
        run_ok = info_ok = mutation == "entries values"
        notes += [member, str(detail)]
    elif mutation == "file name":
        table.name = detail
        run_ok = info_ok = detail == "table.npy"
    elif mutation.startswith("array"):
        scale = table.members["array.scale"].copy()
        fragments = ("scale",)
        if mutation == "array nan":
            scale.reshape(-1)[int(case.at) % scale.size] = detail
            run_ok = info_ok = False
        elif mutation == "array dtype":
            scale = scale.astype(detail)
            run_ok = info_ok = detail.startswith("float")
        else:
            scale = scale[1:]
            if detail == "metadata says the new shape":
                table.meta["arrays"]["scale"]["shape"] = list(scale.shape)
            run_ok, info_ok = False, (None if detail == "metadata says the new shape" else False)
        table.members["array.scale"] = scale
        notes.append(str(detail))
    elif mutation in ("metadata value", "delete metadata"):
        path = pick([".".join(p) for p in _paths(table.meta)])
        keys = tuple(path.split("."))
        parent = _get(table.meta, keys[:-1])
        old = parent.pop(keys[-1])
        if mutation == "metadata value":
            parent[keys[-1]] = detail
        run_ok, info_ok = expect_metadata(case.kind, keys, old, detail, mutation == "delete metadata")
        notes += [path, "deleted" if mutation == "delete metadata" else repr(detail)]
    elif mutation == "metadata not an object":
        table.raw_metadata = detail
        run_ok = info_ok = False
    content = table.content()
    if mutation == "truncate":
        content = content[:int(case.at * len(content))]
        run_ok = info_ok = False
    return (table.name, content, Expect(run_ok, fragments, exact=exact and run_ok is True, notes=notes),
            Expect(info_ok, fragments, notes=notes))


@settings(max_examples=300, **SETTINGS)
@given(command=st.sampled_from(["upscale"] * 4 + ["lut info"] * 2 + ["bench", "release"]), case=table_corruptions())
# each was a violation: the authors' .npy released as a damaged .npz; an IM-LUT file without its weight table
# released; True as refiner_rotations, and SR-LUT tables with 1 rotation or another value_scale, run as if valid;
# a scale grid up to 1e308 (OverflowError, exit 70); a format-1 value_scale of 0 ignored, and a format-1
# file without its (optional) offsets refused
@example(command="release", case=TableCorruption("authors"))
@example(command="release", case=TableCorruption("imlut", "delete metadata", "tables.weight"))
@example(command="upscale", case=TableCorruption("imlut", "metadata value", "config.refiner_rotations", True))
@example(command="upscale", case=TableCorruption("imlut", "metadata value", "config.scale_grid.stop", 1e308))
@example(command="bench", case=TableCorruption("srlut2", "metadata value", "tables.sr.rotations", 1))
@example(command="upscale", case=TableCorruption("srlut2", "metadata value", "tables.sr.values.value_scale", 64))
@example(command="lut info", case=TableCorruption("srlut1", "metadata value", "value_scale", 0))
@example(command="upscale", case=TableCorruption("srlut1", "delete metadata", "offsets"))  # was: refused
@example(command="lut info", case=TableCorruption("imlut", "metadata value", "tables.weight.values.value_scale",
                                                  10**30))
def test_commands_with_corrupted_tables(assets, tmp_path, command, case):
    name, content, run_expect, info_expect = build_table(case, assets["tables"])
    box = sandbox(tmp_path, assets, bench_data=command == "bench")
    weights = _write(box, name, content)
    before = snapshot(box)
    if command == "upscale":
        extra = ["--scale", "2"] if case.kind == "imlut" else []
        result = call(upscale.main, ["img.png", "-w", weights, "-o", "out", *extra], box)
        if check_outcome(result, box, before, "out", run_expect, weights):
            check_image(box, run_expect, assets["baseline"][case.kind])
    elif command == "lut info":
        result = call(lut.main, ["info", weights], box)
        if check_outcome(result, box, before, "nothing", info_expect, weights):
            shown = json.loads(result.out)
            assert shown["tables"] and all(rows > 0 for rows in shown["rows"].values())
    elif command == "bench":
        result = call(bench.main, ["-w", weights, "--data", "bench", "--sets", "Tiny", "--scale", "2", "-o", "b",
                                   "--no-progress"], box)
        if check_outcome(result, box, before, "b", run_expect, weights):
            assert "PSNR" in (box / "b" / "summary.md").read_text()
    else:
        result = call(release.main, [weights, "--name", "Tiny_x2", "-o", "rel"], box)
        if check_outcome(result, box, before, "rel", run_expect, weights):
            assert list((box / "rel").rglob("Tiny_x2.npz"))


# ---------------------------------------------------------------------------------------------------------------
# as a user runs them: separate processes


@pytest.mark.parametrize("case", ["checkpoint with NaN", "truncated IM-LUT", "half-precision safetensors"])
def test_corrupted_files_in_separate_processes(assets, tmp_path, case):
    box = sandbox(tmp_path, assets)
    if case == "checkpoint with NaN":
        state = dict(assets["states"]["HAT"])
        state["conv_last.weight"] = state["conv_last.weight"].clone()
        state["conv_last.weight"][0, 0, 0, 0] = math.nan
        buffer = io.BytesIO()
        torch.save({"params_ema": state}, buffer)
        weights = _write(box, "w.pth", buffer.getvalue())
        argv, output, expect = ["upscale", "img.png", "-w", weights, "-o", "out"], "out", Expect(False,
                                                                                                ("conv_last.weight",))
    elif case == "truncated IM-LUT":
        content = assets["tables"]["imlut"].content()
        weights = _write(box, "t.npz", content[:len(content) // 2])
        argv, output, expect = ["upscale", "img.png", "-w", weights, "-o", "out", "--scale", "2"], "out", Expect(False)
    else:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in assets["states"]["HAT"].items()}
        weights = _write(box, "w.safetensors", safetensors_bytes(state))
        argv, output, expect = ["release", weights, "--name", "Half_x2", "-o", "rel"], "rel", Expect(True)
    before = snapshot(box)
    result = run(argv, box)
    check_outcome(result, box, before, output, expect, weights)
