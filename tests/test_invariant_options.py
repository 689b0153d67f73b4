"""Invariant tests of option files at the text and byte level (issue 24): the shipped files' text with drawn
mutations that a dict-level fuzz cannot write (tags on values and keys, anchors, aliases and merge keys, recursive
aliases, a "billion laughs" block, duplicate and non-text keys, other encodings, stray bytes, truncation, deep
nesting, long lines, YAML 1.1 values), and ``--force_yml KEY=VALUE`` entries drawn from the same vocabulary.

For every input: ``--check`` exits 0 ("options OK") or 2 with ``error:`` lines, each naming the file or the
``--force_yml`` entry (a YAML problem also its line); never a traceback, a signal or a hang; every file it was given
is byte-identical afterwards; nothing is written (no ``PWNED`` above all). A few runs as separate processes, without
``--check`` too, prove the python tags are refused before anything is written.

Then the ``--check`` gaps: options that ``--check`` passed but the real run failed on (found by running the shipped
files and number mutations for two iterations), each refused by ``--check`` now in one line.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, populate_datasets
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from invariants import check_run, run, snapshot

from hatast import engine
from hatast.archs.imlut_arch import IMNet
from hatast.lut import LUTTable, receptive_field
from hatast.lut.lattice import levels
from hatast.options import expand_env, load_option_file

OPTION_FILES = sorted((REPO / "options" / "train").glob("*.yml")) + sorted((REPO / "options" / "test").glob("*.yml"))
EXAMPLES = int(os.environ.get("HATAST_INVARIANT_EXAMPLES", 250))
"""Examples per property (the mutation and the --force_yml one); raise it for a longer hunt."""
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                    database=None, derandomize=True)
HANG_SECONDS = 60
"""A --check that takes longer is a hang: faulthandler prints every thread's stack and ends the test run."""

PWN = '!!python/object/apply:os.system ["touch PWNED"]'
#: Tags the reader must refuse (with the line), as they are written before a value.
REFUSED_TAGS = [
    PWN, "!!python/object/new:os.system [touch PWNED]", "!!python/name:os.system",
    "!!python/object:collections.OrderedDict {}", "!<tag:yaml.org,2002:python/name:os.system>", "!!binary aGk=",
    "!!set {a: null}", "!!timestamp 2001-12-14", "!!omap [{a: 1}]", "!!pairs [{a: 1}]", "!foo bar", "!foo",
    "!!python/tuple [1, 2]", "!!python/bytes aGk=",
]
#: Tags that are plain data (kept or refused as ill-formed values, never acted on).
PLAIN_TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!seq", "!!map", "!"]
#: Keys that are not text: refused with the line (the date is a key in text, dates are not read as dates).
NON_TEXT_KEYS = ["1: x", "[a]: b", "? {a: 1}\n{indent}: 2", "~: 1", "yes: 1", "1.5: x", ".nan: 1", "{a: 1}: x",
                 "? [a, b]\n{indent}: c", "!!int 3: x"]
#: Values that YAML 1.1 reads as something else than they look, and values at the edge of every type.
VALUES = ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "~", "null", "''", '""', ".nan", ".NaN", ".inf", "-.inf",
          "1e400", "-1e400", "1e-400", "1.0e+400", "0x10", "0o17", "017", "0b101", "1_000", "190:20:30", "-0",
          "-0.0", "2001-12-14", "2001-12-14T21:59:43.10-05:00", "9" * 400, "9" * 401, "9" * 5000,
          ":".join(["59"] * 300), "0." + "0" * 3000 + "1", '"\\ud800"', '"\\0"', '"a\\nb"', '"\\x1b[31m"', "${NOPE}",
          "${HATAST_DATA}", "${NOPE:-}", "${HOME}/x", "-1", "0", "1", "2147483647", "2147483648", "-2147483649",
          "4294967296", "1.5", "3", "1e3", "'5e-4'", "[]", "{}", "[1, x]", "{type: L1loss}", "'{}{}'", "../x", "/",
          "a/b", ".hidden", "'\\'", "x" * 10000, "*undefined", "&a x", "&a [*a]", "{a: 1, a: 2}", "{1: x}",
          "[" * 60 + "]" * 60, "{a: " * 60 + "1" + "}" * 60, "'unterminated", "{", "]", "- a\n- b", "a: b: c",
          "!!binary aGk=", PWN, "!!python/name:os.system", "!!int abc", "!!float x", "!!bool maybe", "!!int 0x1f",
          "!!str 3"]
CONTROL = ["\t", "\x07", "\x1b", "\u2028", "\x85", "\ufeff", "\r", "\x7f", "\uffff", "\U0001f600"]
BILLION_LAUGHS = "lol0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9))
MANY_ALIASES = "anchor: &many 1\naliases: [" + ", ".join(["*many"] * 150) + "]\n"
ENTRY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>[ \t].*|)$")


# ------------------------------------------------------------------------------------------------------------------
# The shipped files made runnable here: data for each, no pretrained weights, stand-in tables


def _stand_in_table(path: Path, network: str, folder: Path) -> Path | None:
    if network == "LUTNet":
        kind, scale = re.search(r"SRLUT-([VFS])_SRx(\d)", path.name).groups()
        interval = 0 if kind == "V" else 4
        rows = levels(interval) ** receptive_field(kind).size
        return LUTTable.srlut(kind, int(scale), interval, np.zeros((rows, int(scale) ** 2), np.int8)).save(
            folder / "table.npz")
    if network == "IMLUT":
        variant = re.search(r"IMLUT-([NLCZ]+)_", path.name).group(1)
        return IMNet(variant, num_feat=4, num_hidden=0, refiner_rotations=1).to_tables(interval=4).save(
            folder / "imlut.npz")
    return None


def runnable_text(path: Path, folder: Path) -> str:
    """The file's text with its pretrained weights left out, and its table (LUT files) and the benchmark's blur
    kernel (USRNet) replaced by stand-ins: the text the mutations start from, which passes ``--check`` given the
    data ``populate_datasets`` writes."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(pretrain_network_g:[ \t]*)[^,}\n#]+", r"\1~", text)
    text = re.sub(r"(kernel:[ \t]*)\$\{HATAST_KERNELS[^}]*\}(:\d+)?", r"\1gaussian:1.6", text)  # nor USRNet's kernels
    network = (load_option_file(path).get("network_g") or {}).get("type")
    table = _stand_in_table(path, network, folder)
    if table is not None:
        text = re.sub(r"(lut_path:[ \t]*)[^,}\n#]+", lambda m: m.group(1) + str(table), text)
    return text


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """``prepare(path) -> (runnable text, data root)``, made once per shipped file."""
    base = tmp_path_factory.mktemp("invariant_options")
    cache: dict[Path, tuple[str, Path]] = {}

    def prepare(path: Path) -> tuple[str, Path]:
        if path not in cache:
            root = base / path.parent.name / path.stem
            root.mkdir(parents=True)
            previous = os.environ.get("HATAST_DATA")
            os.environ["HATAST_DATA"] = str(root)
            try:
                populate_datasets(expand_env(load_option_file(path)))
            finally:
                os.environ.pop("HATAST_DATA") if previous is None else os.environ.update(HATAST_DATA=previous)
            cache[path] = (runnable_text(path, root), root)
        return cache[path]

    return prepare


# ------------------------------------------------------------------------------------------------------------------
# Text mutations. Lines are [text, locked]: a mutation edits only unlocked lines and locks what it wrote, so a later
# one cannot undo a mutation that the reader must refuse.


class Text:
    def __init__(self, text: str) -> None:
        self.lines = [[line, False] for line in text.split("\n")]
        self.refused: list[str] = []  # the mutations the reader must refuse (with the line)

    def text(self) -> str:
        return "\n".join(line for line, _ in self.lines)

    def entries(self, scalar: bool | None = None) -> list[int]:
        """Unlocked ``key: value`` lines (``scalar``: True, a one-line scalar value; False, a section header)."""
        found = []
        for i, (line, locked) in enumerate(self.lines):
            match = ENTRY.match(line)
            if locked or not match:
                continue
            rest = match["rest"].split(" #")[0].strip()
            if scalar is None or (scalar and rest and rest[0] not in "[{&*!|>") or (scalar is False and not rest):
                found.append(i)
        return found

    def block_end(self, i: int) -> int:
        """The index after the block that the section header at ``i`` opens."""
        indent = len(self.lines[i][0]) - len(self.lines[i][0].lstrip(" "))
        j = i + 1
        while j < len(self.lines):
            line = self.lines[j][0]
            if line.strip() and not line.lstrip().startswith("#") and len(line) - len(line.lstrip(" ")) <= indent:
                break
            j += 1
        return j

    def insert(self, index: int, *lines: str) -> None:
        self.lines[index:index] = [[line, True] for line in lines]


def _pick(draw, items: list, label: str):
    return draw(st.sampled_from(items), label=label) if items else None


def mutate(doc: Text, kind: str, draw) -> None:
    """Apply one text mutation of ``kind`` (a no-op where the file has no place for it)."""
    if kind in ("tag on value", "plain tag on value", "special value", "deep nesting", "long value", "env"):
        i = _pick(draw, doc.entries(scalar=True), "line")
        if i is None:
            return
        match = ENTRY.match(doc.lines[i][0])
        value = match["rest"].strip()
        if kind == "tag on value":
            tag = draw(st.sampled_from(REFUSED_TAGS), label="tag")
            new = tag if " " in tag or tag.startswith("!!python/name") else f"{tag} {value}"
            doc.refused.append(kind)
        elif kind == "plain tag on value":
            new = f"{draw(st.sampled_from(PLAIN_TAGS), label='tag')} {value}"
        elif kind == "special value":
            new = draw(st.sampled_from(VALUES), label="value")
            new = new.replace("\n", "\n" + match["indent"] + "  ")
            if new in (PWN, "!!python/name:os.system", "!!binary aGk=", "{a: 1, a: 2}", "{1: x}", "&a [*a]",
                       "[" * 60 + "]" * 60, "{a: " * 60 + "1" + "}" * 60, "9" * 401, "9" * 5000, '"\\ud800"',
                       "!!int abc", "!!float x", "!!bool maybe"):
                doc.refused.append(f"{kind} {new[:20]}")
        elif kind == "deep nesting":
            depth = draw(st.integers(1, 400), label="depth")
            opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("[{a: ", "}]")]), label="brackets")
            new = opener * depth + "1" + closer * depth
            if depth * (2 if opener == "[{a: " else 1) > 50:
                doc.refused.append(kind)
        elif kind == "long value":
            new = "x" * draw(st.sampled_from([1000, 70_000, 300_000]), label="length")
        else:
            new = draw(st.sampled_from(["${NOPE}", "${NOPE:-}", "${HATAST_DATA}/x", "${HOME}", "$${X}", "${"]),
                       label="env")
        doc.lines[i] = [f"{match['indent']}{match['key']}: {new}", True]
    elif kind == "tag on key":
        i = _pick(draw, doc.entries(), "line")
        if i is None:
            return
        tag = draw(st.sampled_from(["!foo", "!!python/name:os.system", "!!binary", "!!set", "!!timestamp"]),
                   label="tag")
        match = ENTRY.match(doc.lines[i][0])
        doc.lines[i] = [f"{match['indent']}{tag} {match['key']}:{match['rest']}", True]
        doc.refused.append(kind)
    elif kind == "duplicate key":
        i = _pick(draw, doc.entries(), "line")
        if i is None:
            return
        doc.lines[i][1] = True
        doc.insert(i + 1, doc.lines[i][0])
        doc.refused.append(kind)
    elif kind == "non-text key":
        i = _pick(draw, doc.entries(), "line")
        if i is None:
            return
        indent = ENTRY.match(doc.lines[i][0])["indent"]
        key = draw(st.sampled_from(NON_TEXT_KEYS), label="key")
        doc.insert(i, *(indent + part for part in key.replace("{indent}", "").split("\n")))
        doc.refused.append(kind)
    elif kind in ("alias copy", "merge copy", "merge into", "recursive alias"):
        i = _pick(draw, doc.entries(scalar=False), "section")
        if i is None:
            return
        match = ENTRY.match(doc.lines[i][0])
        indent, key, end = match["indent"], match["key"], doc.block_end(i)
        doc.lines[i] = [f"{indent}{key}: &sec", True]
        child = indent + "  "
        if end > i + 1 and doc.lines[i + 1][0].strip():
            child = doc.lines[i + 1][0][:len(doc.lines[i + 1][0]) - len(doc.lines[i + 1][0].lstrip(" "))]
        if kind == "alias copy":
            doc.insert(end, f"{indent}{key}_copy: *sec")
        elif kind == "merge copy":
            doc.insert(end, f"{indent}{key}_copy:", f"{child}<<: *sec")
        elif kind == "merge into":  # into the next sibling section, if any
            siblings = [j for j in doc.entries(scalar=False) if j >= end
                        and ENTRY.match(doc.lines[j][0])["indent"] == indent]
            if siblings:
                doc.insert(siblings[0] + 1, f"{child}<<: *sec")
        else:
            doc.insert(i + 1, f"{child}itself: *sec")
            doc.refused.append(kind)
    elif kind == "billion laughs":
        doc.insert(0, *BILLION_LAUGHS.rstrip("\n").split("\n"))
        doc.refused.append(kind)
    elif kind == "many aliases":
        doc.insert(0, *MANY_ALIASES.rstrip("\n").split("\n"))
        doc.refused.append(kind)
    elif kind == "control character":
        i = draw(st.integers(0, len(doc.lines) - 1), label="line")
        if doc.lines[i][1]:
            return
        line = doc.lines[i][0]
        at = draw(st.integers(0, len(line)), label="column")
        doc.lines[i] = [line[:at] + draw(st.sampled_from(CONTROL), label="character") + line[at:], True]
    elif kind == "document markers":
        where = draw(st.sampled_from(["%YAML 1.1\n---", "%YAML 1.2\n---", "---", "%TAG !e! tag:e.com,2000:\n---",
                                      "--- !!map"]), label="header")
        doc.insert(0, *where.split("\n"))
        if draw(st.booleans(), label="second document"):
            doc.insert(len(doc.lines), "---", "b: 1")
            doc.refused.append(kind)
    elif kind == "long line":
        length = draw(st.sampled_from([10_000, 200_000]), label="length")
        doc.insert(draw(st.integers(0, len(doc.lines)), label="at"),
                   draw(st.sampled_from(["#" + "x" * length, f"k{'x' * length}: 1"]), label="line"))


TEXT_MUTATIONS = ["tag on value", "plain tag on value", "special value", "deep nesting", "long value", "env",
                  "tag on key", "duplicate key", "non-text key", "alias copy", "merge copy", "merge into",
                  "recursive alias", "billion laughs", "many aliases", "control character", "document markers",
                  "long line"]
BYTE_MUTATIONS = ["none", "UTF-8 BOM", "UTF-16", "UTF-16 without BOM", "UTF-32", "Latin-1", "stray 0xff", "NUL",
                  "CRLF", "truncate"]


def encode(text: str, kind: str, draw) -> tuple[bytes, bool]:
    """The file's bytes, and whether the reader must refuse them."""
    if kind == "UTF-8 BOM":
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass"), False
    if kind == "UTF-16":
        return text.encode("utf-16", "surrogatepass"), True
    if kind == "UTF-16 without BOM":
        return text.encode("utf-16-le", "surrogatepass"), True
    if kind == "UTF-32":
        return text.encode("utf-32", "surrogatepass"), True
    if kind == "Latin-1":  # a name with an accent, saved by an editor set to Latin-1
        data = re.sub(r"(?m)^name:.*$", "name: caf\u00e9", text, count=1)
        if data == text:
            data = "# caf\u00e9\n" + text
        return data.encode("latin-1", "replace"), True
    data = text.encode("utf-8", "surrogatepass")
    if kind in ("stray 0xff", "NUL"):
        at = draw(st.integers(0, len(data)), label="byte")
        return data[:at] + (b"\xff" if kind == "stray 0xff" else b"\x00") + data[at:], True
    if kind == "CRLF":
        return data.replace(b"\n", b"\r\n"), False
    if kind == "truncate":
        return data[:draw(st.integers(0, max(len(data) - 1, 0)), label="length")], False
    return data, False


# ------------------------------------------------------------------------------------------------------------------
# --force_yml entries


def _key_paths(value, prefix=()) -> list[tuple[str, ...]]:
    paths = []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.append((*prefix, str(key)))
            paths += _key_paths(child, (*prefix, str(key)))
    return paths


def _leaves(value, prefix=()) -> list[tuple[tuple[str, ...], object]]:
    if isinstance(value, dict):
        return [leaf for key, child in value.items() for leaf in _leaves(child, (*prefix, str(key)))]
    return [(prefix, value)] if prefix else []


#: Values of the same kind as a number, a flag or a name already there: the edges of its range.
NEAR_VALUES = {int: ["0", "1", "-1", "2", "3", "7", "1000000", "2147483647", "2147483648", "1e3", "2.5"],
               float: ["0", "0.0", "1", "-0.5", "1e-9", "0.999999", "1.0", "5e-4", "'5e-4'", "1e30"],
               bool: ["true", "false", "yes", "off", "~"],
               str: ["x", "''", "CamelCase", "a b", "../up", "~", "{}", "x{}y"]}


@st.composite
def force_entries(draw, opt: dict) -> list[str]:
    """1-3 entries: an existing key with a value of its own kind (its range's edges: where --check and the run can
    differ), or any key (existing, misspelt, nested too deep, ``:`` only, drawn text) with a value from the mutation
    vocabulary (tags, aliases, YAML 1.1 values, deep nesting) or drawn text."""
    paths = [":".join(p) for p in _key_paths(opt)]
    leaves = [(":".join(p), v) for p, v in _leaves(opt)]
    entries = []
    for _ in range(draw(st.integers(1, 3), label="entries")):
        if leaves and draw(st.booleans(), label="same kind"):
            key, current = draw(st.sampled_from(leaves), label="leaf")
            kind = next((t for t in (bool, int, float, str) if isinstance(current, t)), str)
            entries.append(f"{key}={draw(st.sampled_from(NEAR_VALUES[kind]), label='value')}")
            continue
        key = draw(st.one_of(
            st.sampled_from(paths),
            st.sampled_from(paths).map(lambda p: p[:-1] + p[-1].upper() if p[-1].islower() else p + "x"),
            st.sampled_from(paths).map(lambda p: p + ":a:b:c"),
            st.sampled_from([":", "::", "", " ", "train:", ":name", "a:b:c:d:e:f:g", "datasets:train:0",
                             "name\nx", "\u00e9t\u00e9", "network_g:type:x"]),
            st.text(max_size=12)), label="key")
        value = draw(st.one_of(st.sampled_from(VALUES + REFUSED_TAGS), st.text(max_size=20)), label="value")
        form = draw(st.sampled_from(["key=value", "key=value", "key only", "=value"]), label="form")
        entries.append({"key=value": f"{key}={value}", "key only": key, "=value": f"={value}"}[form])
    return entries


# ------------------------------------------------------------------------------------------------------------------
# Running --check in this process, with the invariants asserted


def check_in_process(path: Path, data: bytes, root: Path, sandbox: Path, overrides=(), name: str | None = None,
                     args=()):
    """Write ``data`` as an option file in ``sandbox`` and run ``hatast train|test -opt FILE --check`` on it with
    ``root`` as its data root (working folder: ``sandbox``); assert that nothing changed in either folder and no
    ``PWNED`` appeared. Returns (exit status, stdout, stderr, the file)."""
    file = sandbox / "options" / (name or f"mutated_{path.name}")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    before = snapshot(sandbox), snapshot(root)
    argv = ["-opt", str(file), "--data-root", str(root), "--check", *args]
    if overrides:
        argv += ["--force_yml", *overrides]
    command = engine.train if path.parent.name == "train" else engine.test
    out, err = io.StringIO(), io.StringIO()
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = engine.run_cli(command, argv)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert not list(sandbox.rglob("PWNED")) and not Path("PWNED").exists(), "a tag ran code"
    assert (snapshot(sandbox), snapshot(root)) == before, "--check changed or wrote a file"
    return code, out.getvalue(), err.getvalue(), file


def assert_clear(code: int, out: str, err: str, file: Path, refused: bool = False, line: bool = False,
                 override: bool = False) -> list[str]:
    """Exit 0 with "options OK", or 2 with ``error:`` lines each naming the file or the --force_yml entry; with
    ``refused``, exactly one line (the reader stops at the first problem), naming the file's ``line N`` with
    ``line``, the --force_yml entry with ``override``."""
    assert "Traceback" not in err and "Traceback" not in out, err
    if code == 0:
        assert not refused, f"accepted although the reader must refuse it:\n{out}{err}"
        assert out.strip().splitlines()[-1] == f"options OK: {file}", out
        return []
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert lines, "exit status 2 without a message"
    for text in lines:
        assert text.startswith("error: ") and (str(file) in text or "--force_yml" in text), text
    if refused:
        assert len(lines) == 1, lines
        if override:
            assert "--force_yml" in lines[0], lines[0]
        elif line:
            assert re.search(r"\bline \d+", lines[0]), lines[0]
    return lines


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """The working folder of every run (a ``touch PWNED`` would land here) and its HATAST_DATA restored after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HATAST_DATA", os.environ.get("HATAST_DATA", str(tmp_path / "unset")))
    return tmp_path


def test_the_runnable_shipped_files_pass_check(prepared, sandbox):
    """The starting point of the mutations: every shipped file (weights left out, tables stood in) passes --check
    with its data, so a mutation that breaks nothing must pass too."""
    for path in OPTION_FILES:
        text, root = prepared(path)
        code, out, err, file = check_in_process(path, text.encode(), root, sandbox)
        assert code == 0, f"{path.name}: {err}"


@SETTINGS
@given(data=st.data())
def test_mutated_option_text_gives_success_or_clear_errors(prepared, sandbox, data):
    path = data.draw(st.sampled_from(OPTION_FILES), label="option file")
    text, root = prepared(path)
    doc = Text(text)
    for kind in data.draw(st.lists(st.sampled_from(TEXT_MUTATIONS), min_size=0, max_size=3), label="mutations"):
        mutate(doc, kind, data.draw)
        event(f"text: {kind}")
    byte_kind = data.draw(st.sampled_from(BYTE_MUTATIONS), label="bytes")
    event(f"bytes: {byte_kind}")
    content, bad_bytes = encode(doc.text(), byte_kind, data.draw)
    refused = bad_bytes or (bool(doc.refused) and byte_kind != "truncate")
    code, out, err, file = check_in_process(path, content, root, sandbox)
    lines = assert_clear(code, out, err, file, refused=refused,
                         line=refused and byte_kind not in ("UTF-16", "UTF-32"))
    event(f"exit {code}" + (f", {len(lines)} line(s)" if lines else "") + (" (the reader refused)" if refused else ""))


@SETTINGS
@given(data=st.data())
def test_drawn_force_yml_entries_give_success_or_clear_errors(prepared, sandbox, data):
    path = data.draw(st.sampled_from(OPTION_FILES), label="option file")
    text, root = prepared(path)
    entries = data.draw(force_entries(yaml.safe_load(text)), label="--force_yml")
    code, out, err, file = check_in_process(path, text.encode(), root, sandbox, overrides=entries)
    lines = assert_clear(code, out, err, file)
    event(f"exit {code}" + (f", {len(lines)} line(s)" if lines else ""))


@pytest.mark.parametrize("value", REFUSED_TAGS + ["&a [*a]", "{a: 1, a: 2}", "{1: x}", "[" * 60 + "]" * 60,
                                                  "9" * 5000, "!!int abc", '"\\ud800"', "a\n---\nb"])
def test_a_force_yml_value_is_read_like_the_file(prepared, sandbox, value):
    path = REPO / "options/train/HAT-tiny_SRx4_CPU.yml"
    text, root = prepared(path)
    for key in ("name", "train:total_iter", "datasets:train:gt_size"):
        code, out, err, file = check_in_process(path, text.encode(), root, sandbox, overrides=[f"{key}={value}"])
        assert_clear(code, out, err, file, refused=True, override=True)


# ------------------------------------------------------------------------------------------------------------------
# End to end: the python tags as a user runs them, with and without --check


@pytest.mark.parametrize("how", ["file, train", "file, test", "file, train --check", "--force_yml, train"])
def test_python_tags_are_refused_before_anything_is_written(prepared, tmp_path, how):
    kind = "test" if how.endswith("test") else "train"
    path = REPO / f"options/{kind}/HAT-tiny_SRx4_CPU.yml"
    text, root = prepared(path)
    work = tmp_path / "work"
    work.mkdir()
    file = work / "opt.yml"
    overrides = []
    if how.startswith("file"):
        text = re.sub(r"(?m)^name: .*$", f"name: {PWN}", text, count=1)
        where = f"line {text[:text.index(PWN)].count(chr(10)) + 1}"
    else:
        where = "--force_yml"
        overrides = ["--force_yml", f"name={PWN}"]
    file.write_text(text)
    argv = [kind, "-opt", file, "--data-root", root, *overrides, *(["--check"] if "--check" in how else [])]
    before = snapshot(tmp_path)
    result = run(argv, cwd=work)
    check_run(result, tmp_path, before, output=None, codes=(2,))
    assert "is not allowed" in result.err and where in result.err, result
    assert not (work / "PWNED").exists() and not (work / "experiments").exists() and not (work / "results").exists()


# ------------------------------------------------------------------------------------------------------------------
# What the mutations found in the reader and the error lines, each now one clear line


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("manual_seed: 0", "manual_seed: !!int abc", "line 9, column 14: 'abc' is not a valid !!int"),
    ("manual_seed: 0", "manual_seed: !!float x", "'x' is not a valid !!float"),
    ("manual_seed: 0", "manual_seed: !!bool maybe", "'maybe' is not a valid !!bool"),
    ("manual_seed: 0", "manual_seed: " + "9" * 5000, "line 9, column 14: a number of 5000 characters is too large"),
    ("manual_seed: 0", "manual_seed: 1" + "0" * 399, "is too large for an option"),
    ("manual_seed: 0", "manual_seed: " + ":".join(["59"] * 2000), "a number of 5999 characters is too large"),
    ("manual_seed: 0", 'manual_seed: "\\ud800"', "line 9, column 14: the text '\\ud800' is not valid Unicode"),
    ("manual_seed: 0", "manual_seed: &a [*a]", "line 9, column 18: the alias *a is inside the value &a it names"),
    ("manual_seed: 0", "manual_seed: " + "[" * 60 + "]" * 60, "line 9, column 63: values nested more than 50 levels"),
    ("manual_seed: 0", "manual_seed: 0\x00", "a NUL byte at line 9"),
    ("manual_seed: 0", "manual_seed: 0\x07", "YAML syntax error at line 9: the character #x0007 is not allowed"),
    ("manual_seed: 0", "manual_seed: &a 0\nx: &a 1", "line 10, column 4: second occurrence (found duplicate anchor"),
    ("manual_seed: 0", "manual_seed: ${NOPE}", "manual_seed: environment variable NOPE is not set"),
])
def test_reader_problems_found_by_the_mutations(prepared, sandbox, old, new, fragment):
    """Before: a traceback (``!!int abc``, a 5000-digit number, a long base-60 number printed in an error, an
    escaped surrogate as a folder name later), ``RecursionError``-deep nesting or a recursive alias without a line,
    an unset variable without the file."""
    path = REPO / "options/train/HAT-tiny_SRx4_CPU.yml"
    text, root = prepared(path)
    assert old in text
    code, out, err, file = check_in_process(path, text.replace(old, new, 1).encode("utf-8", "surrogatepass"), root,
                                            sandbox)
    lines = assert_clear(code, out, err, file, refused=True)
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("entry", ["\x85=yes", "name\nx=1", "name=a\n---\nb", "\u2028:x=1"])
def test_a_line_break_in_an_entry_stays_in_its_line(prepared, sandbox, entry):
    """Before: a key or value holding a line break (``\\n``, or ``\\x85``, ``\\u2028``, which ``splitlines`` also
    breaks at) split its problem over two ``error:`` lines, the second naming nothing."""
    path = REPO / "options/train/HAT-tiny_SRx4_CPU.yml"
    text, root = prepared(path)
    code, out, err, file = check_in_process(path, text.encode(), root, sandbox, overrides=[entry])
    lines = assert_clear(code, out, err, file)
    assert len(lines) == 1


# ------------------------------------------------------------------------------------------------------------------
# --check gaps: options --check passed and the real run failed on (found by running the shipped files, and these
# mutations of them, for two iterations on data from populate_datasets); each is refused by --check now, in one line


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a rule about machines without CUDA")
GAPS = [
    # file, --force_yml entries, what the line says; the run's failure before the fix in the comment
    ("train/USRNet-tiny_CPU.yml", ["datasets:val:kernel=missing/kernels_12.mat:4"],
     "datasets:val: kernel: kernel 'missing/kernels_12.mat:4': no such file"),  # clean error after the run began
    ("train/USRNet-tiny_CPU.yml", ["datasets:train:scales=[5]"], "gt_size: 96 is not a multiple of scale(s) [5]"),
    ("train/USRNet-tiny_CPU.yml", ["datasets:train:kernel_size=3"], "kernel_size: expected a whole number >= 5"),
    ("train/USRNet-tiny_CPU.yml", ["datasets:train:noise_range=[255, 0]"], "noise_range: expected [low, high]"),
    ("train/USRNet-tiny_CPU.yml", ["datasets:train:variance_range=[10, 1]"], "variance_range: expected [low, high]"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["network_g:in_chans=1"], "HAT cannot run on the 3-channel 24x24 training crop"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["network_g:squeeze_factor=100"], "HAT cannot run on the 3-channel"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["network_g:compress_ratio=100"], "HAT cannot run on the 3-channel"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["datasets:train:color=y"], "HAT makes 3-channel images, but the ground truth"),
    ("test/HAT-tiny_SRx4_CPU.yml", ["datasets:test_1:color=y"], "HAT makes 3-channel images, but the ground truth"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["train:pixel_opt={type: GANLoss, gan_type: vanilla}"], "needs a discriminator"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["train:pixel_opt={type: PerceptualLoss, layer_weights: {conv5_4: 1}}"],
     "PerceptualLoss returns two losses"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["train:perceptual_opt={type: L1Loss}"], "L1Loss returns one loss"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["val:metrics:psnr:type=calculate_psnr_pt"], "calculate_psnr_pt takes tensors"),
    ("test/HAT-tiny_SRx4_CPU.yml", ["val:metrics:ssim:type=calculate_ssim_pt"], "calculate_ssim_pt takes tensors"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["val:metrics={niqe: {type: calculate_niqe, crop_border: 4}}"],
     "calculate_niqe needs at least 96x96"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["val:metrics:psnr:crop_border=24"], "crop_border: 24 leaves 0x0 pixels"),
    ("test/HAT-tiny_SRx4_CPU.yml", ["val:metrics:ssim:crop_border=19"], "calculate_ssim needs at least 11x11"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["train:scheduler={type: CosineAnnealingRestartLR, periods: [1, 1]}"],
     "periods and restart_weights should have the same length"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["train:optim_g:differentiable=true"], "train:optim_g: Adam cannot run"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["datasets:train:persistent_workers=true", "datasets:train:num_worker_per_gpu=0"],
     "persistent_workers: needs num_worker_per_gpu > 0"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["datasets:val:persistent_workers=true"], "loads val data without worker"),
    ("train/HAT-tiny_SRx4_CPU.yml", ["path:resume_state=${HATAST_DATA}/train/BSDS400/img0.png"],
     "path:resume_state: checkpoint"),  # a clean error, but only once the run started
    ("train/IMLUT-NL_CPU_net.yml", ["imlut:scales:range=[4, 1]"], "range: expected [low, high] with low <= high"),
    ("train/IMLUT-NL_CPU_net.yml", ["datasets:train:gt_size=4"], "gt_size: 4 is too small for the scale 1.1"),
    ("train/IMLUT-NL_CPU_net.yml", ["imlut:scales:step=0.001"], "1.001 is not a ratio of small integers"),
    pytest.param("train/SRLUT-S_SRx2_CPU_net.yml", ["lut:interval=0"], "lut:interval: 0 makes a table of 257^4",
                 marks=pytest.mark.skipif((os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) > 209e9,
                                          reason="this machine could build the table")),
    pytest.param("train/HAT-tiny_SRx4_CPU.yml", ["num_gpu=1"], "num_gpu: 1, but torch sees no CUDA GPU", marks=NO_CUDA),
    pytest.param("train/HAT-tiny_SRx4_CPU.yml", ["datasets:train:prefetch_mode=cuda"], "'cuda' needs a CUDA GPU",
                 marks=NO_CUDA),
    pytest.param("train/HAT-tiny_SRx4_CPU.yml", ["train:optim_g:capturable=true"], "Adam cannot run", marks=NO_CUDA),
]


@pytest.mark.parametrize(("name", "entries", "fragment"), GAPS)
def test_check_refuses_what_the_run_would_fail_on(prepared, sandbox, name, entries, fragment):
    path = REPO / "options" / name
    text, root = prepared(path)
    code, out, err, file = check_in_process(path, text.encode(), root, sandbox, overrides=entries)
    lines = assert_clear(code, out, err, file)
    assert len(lines) == 1 and fragment in lines[0], lines


def test_check_refuses_an_experiments_file_in_the_way(prepared, sandbox):
    """The run's output folder is checked by --check too (the run's own rule, finalize_options)."""
    path = REPO / "options/train/HAT-tiny_SRx4_CPU.yml"
    text, root = prepared(path)
    (sandbox / "experiments").write_text("not a folder")
    code, out, err, file = check_in_process(path, text.encode(), root, sandbox)
    (sandbox / "experiments").unlink()
    lines = assert_clear(code, out, err, file)
    assert len(lines) == 1 and "experiments" in lines[0] and "is a file" in lines[0], lines


def test_check_refuses_a_state_of_another_experiment(prepared, sandbox):
    """Before: --check passed, and the run made its folders and logs and then failed: a state resumes with its own
    experiment's ``net_g_<iter>.pth``, which another experiment does not have."""
    path = REPO / "options/train/HAT-tiny_SRx4_CPU.yml"
    text, root = prepared(path)
    state = sandbox / "elsewhere" / "2.state"
    state.parent.mkdir()
    torch.save({"iter": 2, "epoch": 0, "optimizers": [], "schedulers": []}, state)
    code, out, err, file = check_in_process(path, text.encode(), root, sandbox,
                                            overrides=[f"path:resume_state={state}"])
    lines = assert_clear(code, out, err, file)
    assert len(lines) == 1 and "is the state of iteration 2" in lines[0] and "net_g_2.pth" in lines[0], lines


@pytest.mark.parametrize(("launcher", "fragment"), [("pytorch", "environment variable RANK is not set"),
                                                    ("slurm", "environment variable SLURM_NODELIST is not set")])
def test_check_refuses_a_launcher_without_its_environment(prepared, sandbox, monkeypatch, launcher, fragment):
    """Before: --check passed; the run refused (pytorch) or raised KeyError (slurm) when it joined the group."""
    for var in ("RANK", "SLURM_NODELIST"):
        monkeypatch.delenv(var, raising=False)
    path = REPO / "options/train/HAT-tiny_SRx4_CPU.yml"
    text, root = prepared(path)
    code, out, err, file = check_in_process(path, text.encode(), root, sandbox, args=["--launcher", launcher])
    lines = assert_clear(code, out, err, file)
    assert len(lines) == 1 and fragment in lines[0], lines
