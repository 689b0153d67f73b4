"""Property tests: random mutations of the shipped option files (deleted keys, misspellings, wrong types, unknown
keys) and random or truncated bytes as image, table and checkpoint files. Every outcome is success or clear
`error:` lines (one per problem, naming the file); never a traceback."""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, TINY_HAT, populate_datasets, sample_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hatast import engine
from hatast.archs.hat_arch import HAT
from hatast.archs.srlut_arch import SRLUTNet
from hatast.cli.lut import main as lut_command
from hatast.cli.upscale import main as upscale
from hatast.lut import LUTTable, receptive_field
from hatast.lut.lattice import levels
from hatast.options import expand_env, load_option_file

OPTION_FILES = sorted((REPO / "options").rglob("*.yml"))
WRONG_VALUES = ["abc", -3, 0, 2.5, True, None, [], {}, "5e-4", [1, "x"], "{}{}", {"type": "L1loss"}]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                    database=None,
                    derandomize=True)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Per option file: a data root holding small valid data for it, and its options made runnable here (no
    pretrained weights; a stand-in table of the right kind for LUTNet)."""
    base = tmp_path_factory.mktemp("fuzz")
    cache = {}

    def prepare(path: Path) -> tuple[dict, Path]:
        if path not in cache:
            root = base / path.parent.name / path.stem
            root.mkdir(parents=True)
            raw = load_option_file(path)
            previous = os.environ.get("HATAST_DATA")
            os.environ["HATAST_DATA"] = str(root)
            try:
                populate_datasets(expand_env(raw))
            finally:
                os.environ.pop("HATAST_DATA") if previous is None else os.environ.update(HATAST_DATA=previous)
            (raw.get("path") or {})["pretrain_network_g"] = None
            if raw["network_g"]["type"] == "LUTNet":
                kind, scale = re.search(r"SRLUT-([VFS])_SRx(\d)", path.name).groups()
                interval = 0 if kind == "V" else 4
                rows = levels(interval) ** receptive_field(kind).size
                table = LUTTable.srlut(kind, int(scale), interval, np.zeros((rows, int(scale) ** 2), np.int8))
                raw["network_g"]["lut_path"] = str(table.save(root / "table.npz"))
            cache[path] = (yaml.safe_load(yaml.safe_dump(_plain(raw))), root)
        opt, root = cache[path]
        return yaml.safe_load(yaml.safe_dump(opt)), root

    return prepare


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _key_paths(opt: dict, prefix=()) -> list[tuple]:
    paths = []
    for key, value in opt.items():
        paths.append((*prefix, key))
        if isinstance(value, dict):
            paths += _key_paths(value, (*prefix, key))
    return paths


def _misspell(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    choice = rng.randrange(4)
    if choice == 0 and len(word) > 1:
        return word[:i] + word[i + 1:]
    if choice == 1 and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if choice == 2:
        return word[:i] + word[i] + word[i:]
    return word.swapcase() if word.swapcase() != word else word + "_"


def _mutate(opt: dict, kind: str, rng: random.Random) -> None:
    paths = _key_paths(opt)
    if not paths:
        return
    *parents, leaf = rng.choice(paths)
    node = opt
    for key in parents:
        node = node[key]
    if kind == "delete":
        del node[leaf]
    elif kind == "misspell":
        node[_misspell(str(leaf), rng)] = node.pop(leaf)
    elif kind == "wrong type":
        node[leaf] = rng.choice(WRONG_VALUES)
    elif kind == "unknown key":
        node["unexpected_key"] = 1


def _assert_clear(code: int, out: str, err: str, file: Path) -> None:
    assert "Traceback" not in err
    if code == 0:
        assert out.strip().endswith(f"options OK: {file}"), out
        return
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert lines, "exit status 2 without a message"
    for line in lines:
        assert line.startswith("error: ") and (str(file) in line or "--force_yml" in line), line


@SETTINGS
@given(data=st.data())
def test_mutated_option_files_give_success_or_clear_errors(prepared, tmp_path, data):
    path = data.draw(st.sampled_from(OPTION_FILES), label="option file")
    opt, root = prepared(path)
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    kinds = data.draw(st.lists(st.sampled_from(["delete", "misspell", "wrong type", "unknown key"]), min_size=1,
                               max_size=3), label="mutations")
    for kind in kinds:
        _mutate(opt, kind, rng)
    file = tmp_path / f"mutated_{path.name}"
    file.write_text(yaml.safe_dump(opt, sort_keys=False))
    run = engine.train if path.parent.name == "train" else engine.test
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = engine.run_cli(run, ["-opt", str(file), "--data-root", str(root), "--check"])
    _assert_clear(code, out.getvalue(), err.getvalue(), file)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    """One valid file of each kind, to truncate, plus a table and a network to run with."""
    folder = tmp_path_factory.mktemp("valid")
    img = sample_image("coffee")[:12, :12]
    cv2.imwrite(str(folder / "a.png"), img)
    cv2.imwrite(str(folder / "a.jpg"), img)
    torch.manual_seed(0)
    table = SRLUTNet("F", 2).to_table(4).save(folder / "t.npz")
    np.save(folder / "t.npy", np.zeros((17**3, 1, 2, 2), np.int8))
    torch.save({"params": HAT(**TINY_HAT).state_dict()}, folder / "w.pth")
    from safetensors.torch import save_file

    save_file(HAT(**TINY_HAT).state_dict(), str(folder / "w.safetensors"))
    return {"folder": folder, "table": table, "image": folder / "a.png",
            "samples": {ext: (folder / name).read_bytes() for ext, name in
                        ((".png", "a.png"), (".jpg", "a.jpg"), (".npz", "t.npz"), (".npy", "t.npy"),
                         (".pth", "w.pth"), (".safetensors", "w.safetensors"))}}


PREFIXES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"PK\x03\x04", b"\x80\x02", b"\x93NUMPY\x01\x00",
            b"\x08\x00\x00\x00\x00\x00\x00\x00{"]


@SETTINGS
@given(data=st.data())
def test_random_and_truncated_bytes_give_one_clear_line(valid_files, tmp_path, data):
    ext = data.draw(st.sampled_from(sorted(valid_files["samples"])), label="file kind")
    if data.draw(st.booleans(), label="truncate a valid file"):
        sample = valid_files["samples"][ext]
        content = sample[:data.draw(st.integers(0, len(sample) - 1), label="length")]
    else:
        content = data.draw(st.sampled_from(PREFIXES), label="magic") + data.draw(st.binary(max_size=600))
    file = tmp_path / f"x{ext}"
    file.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if ext in (".png", ".jpg"):  # as an image in a batch: skipped with one line, the batch goes on
            code = upscale([str(file), str(valid_files["image"]), "-w", str(valid_files["table"]), "-o",
                            str(tmp_path / "out")])
        elif ext in (".npz", ".npy"):
            code = lut_command(["info", str(file)])
        else:
            code = upscale([str(valid_files["image"]), "-w", str(file), "-o", str(tmp_path / "out")])
    lines = err.getvalue().strip().splitlines()
    assert "Traceback" not in err.getvalue()
    if ext in (".png", ".jpg"):
        assert code in (0, 1) and (tmp_path / "out" / "a.png").is_file()
        if code == 1:
            assert len(lines) == 2 and lines[0].startswith(f"skipped: {file}") and ", 1 failed, in " in lines[1]
    else:
        assert code in (0, 2)
        if code == 2:
            assert len(lines) == 1 and lines[0].startswith("error: ") and str(file) in lines[0], lines
