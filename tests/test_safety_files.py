"""Table and checkpoint files: a damaged, empty or contradictory file is one line saying which, from the Python API,
`hatast lut info`, `hatast lut transfer`, `hatast upscale` and `hatast convert-ast` alike; the commands that write
refuse to write onto their input."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch
from conftest import FIXTURES, TINY_HAT, file_hashes, sample_image, single_error_line

from hatast.archs.hat_arch import HAT, build_hat
from hatast.archs.srlut_arch import SRLUTNet
from hatast.cli.convert_ast import main as convert_ast
from hatast.cli.lut import main as lut_command
from hatast.cli.upscale import main as upscale
from hatast.lut import LUTError, load_table
from hatast.utils.checkpoint import CheckpointError, load_state_dict, read_state_dict
from hatast.utils.files import remove_stale_temporaries


@pytest.fixture
def table_file(tmp_path):
    torch.manual_seed(0)
    return SRLUTNet("F", 2).to_table(4).save(tmp_path / "F_x2.npz")


def _with_metadata(tmp_path, table_file, name, meta):
    """The table's entries with other metadata: a version 2 file, or a version 1 one when ``meta`` says so."""
    with np.load(table_file) as archive:
        entries = archive["table.sr"]
    path = tmp_path / name
    key = "entries" if isinstance(meta, dict) and meta.get("format_version") == 1 else "table.sr"
    np.savez(path, metadata=np.array(json.dumps(meta)), **{key: entries})
    return path


def _damaged_tables(tmp_path, table_file) -> dict[str, tuple[object, str]]:
    data = table_file.read_bytes()
    meta = json.loads(str(np.load(table_file)["metadata"]))
    v1 = {"format": "hatast-lut", "format_version": 1, "kind": "F", "scale": 2, "interval": 4,
          "offsets": [[0, 0], [0, 1], [0, 2]]}
    described = meta["tables"]["sr"]
    authors = np.zeros((17**4, 1, 3, 3), np.int8)
    cases = {
        "empty.npz": (b"", "is empty (0 bytes): an interrupted download or copy?"),
        "truncated.npz": (data[: len(data) // 2], "is a truncated or damaged zip archive"),
        "empty.npy": (b"", "is empty (0 bytes)"),
        "random.npz": (os.urandom(500), "not an .npz archive"),
        "random.npy": (b"\x93NUMPY" + os.urandom(300), "unreadable LUT file"),
        "list_meta.npz": (_with_metadata(tmp_path, table_file, "list_meta.npz", [1, 2]),
                          "metadata is a JSON list, expected an object"),
        "text_scale_v1.npz": (_with_metadata(tmp_path, table_file, "text_scale_v1.npz", {**v1, "scale": "two"}),
                              "metadata scale is 'two', expected an integer"),
        "bad_kind_v1.npz": (_with_metadata(tmp_path, table_file, "bad_kind_v1.npz", {**v1, "kind": "Q"}),
                            "unknown LUT kind 'Q'"),
        "text_scale.npz": (_with_metadata(tmp_path, table_file, "text_scale.npz", {**meta, "tables": {"sr": {
            **described, "outputs": {**described["outputs"], "scale": "two"}}}}),
            "table 'sr' outputs scale is 'two', expected an integer"),
        "bad_field.npz": (_with_metadata(tmp_path, table_file, "bad_field.npz", {**meta, "tables": {"sr": {
            **described, "receptive_field": {"kind": "Q", "offsets": [[0, 1], [1, 1]]}}}}),
            "offsets must be distinct, non-negative and include (0, 0)"),
        "no_tables.npz": (_with_metadata(tmp_path, table_file, "no_tables.npz", {**meta, "tables": {}}),
                          "must name at least one table"),
        "Model_S_x4_4bit_int8.npy": (authors, "the file name says x4 but its entries are 3x3 patches (x3)"),
    }
    np.save(tmp_path / "full.npy", np.zeros((17**4, 1, 4, 4), np.int8))
    cases["truncated.npy"] = ((tmp_path / "full.npy").read_bytes()[:4000], "ends early|unreadable LUT file")
    paths = {}
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, np.ndarray):
            np.save(path, content)
        paths[name] = (path, message)
    return paths


def test_damaged_tables_are_named_as_such(tmp_path, table_file, capsys):
    """Before: BadZipFile, EOFError, AttributeError; an x4-named 3x3 table ran silently as x3."""
    image = tmp_path / "in.png"
    import cv2

    cv2.imwrite(str(image), sample_image("coffee")[:8, :8])
    for name, (path, message) in _damaged_tables(tmp_path, table_file).items():
        with pytest.raises(LUTError) as raised:
            load_table(path)
        assert str(raised.value).startswith(str(path)), raised.value
        assert any(m in str(raised.value) for m in message.split("|")), (name, raised.value)
        assert lut_command(["info", str(path)]) == 2
        single_error_line(capsys.readouterr().err, str(path))
        assert upscale([str(image), "-w", str(path), "-o", str(tmp_path / "out")]) == 2
        single_error_line(capsys.readouterr().err, str(path))
    assert not (tmp_path / "out").exists()


def test_the_authors_table_still_loads_under_its_own_name(tmp_path):
    authors = FIXTURES / "srlut" / "Model_S_x4_4bit_int8.npy"
    if not authors.exists():
        pytest.skip(f"shared fixture {authors} not found")
    table = load_table(authors)
    assert (table.kind, table.scale, table.interval) == ("S", 4, 4)


def test_transfer_refuses_bad_outputs(tmp_path, capsys):
    torch.manual_seed(0)
    net_file = tmp_path / "net.npz"  # a checkpoint with a table's name: output = input must be refused
    torch.save({"params": SRLUTNet("V", 2).state_dict()}, net_file)
    before = file_hashes(net_file)
    assert lut_command(["transfer", str(net_file), "-o", str(net_file), "--interval", "4"]) == 2
    single_error_line(capsys.readouterr().err, f"-o {net_file} would overwrite the input",
                      "never writes onto its inputs")
    assert file_hashes(net_file) == before
    (tmp_path / "afile").write_text("x")
    assert lut_command(["transfer", str(net_file), "-o", str(tmp_path / "afile" / "x.npz")]) == 2
    single_error_line(capsys.readouterr().err, f"{tmp_path / 'afile'} is a file, not a folder")
    assert lut_command(["transfer", str(net_file), "-o", str(tmp_path / "x.pth")]) == 2
    single_error_line(capsys.readouterr().err, "LUT files are written as .npz")
    assert lut_command(["transfer", str(net_file), "-o", str(tmp_path / "ok.npz"), "--interval", "9"]) == 2
    single_error_line(capsys.readouterr().err, "argument --interval: must be a whole number from 0 to 8, got 9",
                      prefix="hatast lut transfer: error: ")
    assert lut_command(["transfer", str(net_file), "-o", str(tmp_path / "ok.npz"), "--interval", "4"]) == 0
    assert load_table(tmp_path / "ok.npz").kind == "V"


def test_table_writes_are_atomic_and_their_leftovers_recognised(tmp_path, table_file, monkeypatch):
    """Before: lut/table.py had its own temporary names, which a resumed run did not clean."""
    table = load_table(table_file)

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError):
        table.save(table_file)
    assert load_table(table_file).kind == "F"  # the old file is intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    stale = tmp_path / ".F_x2.npz.abcd1234.tmp"
    stale.write_bytes(b"half")
    assert remove_stale_temporaries(tmp_path) == [stale]


def _checkpoint_cases(tmp_path):
    torch.save({"params": HAT(**TINY_HAT).state_dict()}, tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    cases = {
        "random.pth": (os.urandom(3000), "is not a PyTorch checkpoint (neither PyTorch's zip format nor a pickle"),
        "text.pth": (b"hello, these are not weights", "is not a PyTorch checkpoint"),
        "empty.pth": (b"", "is empty (0 bytes): an interrupted download or copy?"),
        "truncated.pth": (data[: len(data) // 2], "is a truncated or damaged zip archive"),
        "random.safetensors": (os.urandom(100), "is not a readable safetensors file"),
    }
    for name, (content, _) in cases.items():
        (tmp_path / name).write_bytes(content)
    return {tmp_path / name: message for name, (_, message) in cases.items()}


def test_damaged_checkpoints_are_named_as_such(tmp_path, capsys):
    """Before: random bytes in a .pth were reported as 'holds Python objects'."""
    import cv2

    cv2.imwrite(str(tmp_path / "in.png"), sample_image("coffee")[:8, :8])
    for path, message in _checkpoint_cases(tmp_path).items():
        with pytest.raises(CheckpointError) as raised:
            load_state_dict(path)
        assert message in str(raised.value) and "Python objects" not in str(raised.value), raised.value
        assert upscale([str(tmp_path / "in.png"), "-w", str(path), "-o", str(tmp_path / "out")]) == 2
        single_error_line(capsys.readouterr().err, str(path), message)
        assert convert_ast([str(path), str(tmp_path / "ast.pth"), "--check-size", "0"]) == 2
        single_error_line(capsys.readouterr().err, message)
    assert not (tmp_path / "out").exists() and not (tmp_path / "ast.pth").exists()


def test_convert_ast_refuses_to_overwrite_its_input(tmp_path, capsys):
    """Before: `hatast convert-ast X.pth X.pth` replaced the HAT checkpoint a training run owned."""
    src = tmp_path / "HAT-S.pth"
    torch.save({"params_ema": build_hat("HAT-S", 2).state_dict()}, src)
    os.symlink(src, tmp_path / "link.pth")
    before = file_hashes(src)
    for output in (src, tmp_path / "link.pth", tmp_path / "." / "HAT-S.pth"):
        assert convert_ast([str(src), str(output), "--check-size", "0"]) == 2
        single_error_line(capsys.readouterr().err, "would overwrite the input", "never writes onto its inputs")
    assert file_hashes(src) == before
    assert convert_ast([str(src), str(tmp_path), "--check-size", "0"]) == 2
    single_error_line(capsys.readouterr().err, "is a folder; give a file name")


def test_one_rule_for_the_checkpoint_entry(tmp_path, capsys, monkeypatch):
    """`hatast upscale` and `hatast test` read the same entry of one file: params_ema unless one is named, and a named
    entry must exist. Before, upscale read params_ema and test read params."""
    import cv2
    import yaml

    from hatast import engine

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    ema, raw = HAT(**TINY_HAT).state_dict(), HAT(**TINY_HAT).state_dict()
    torch.save({"params": raw, "params_ema": ema}, tmp_path / "w.pth")
    assert read_state_dict(tmp_path / "w.pth")[1] == "params_ema"
    with pytest.raises(CheckpointError, match=r"has no 'state_dict' entry \(entries found: params, params_ema\)"):
        read_state_dict(tmp_path / "w.pth", "state_dict")

    for folder in ("hr", "lr"):
        (tmp_path / folder).mkdir()
    hr = sample_image("astronaut")[:16, :16]
    cv2.imwrite(str(tmp_path / "hr" / "a.png"), hr)
    cv2.imwrite(str(tmp_path / "lr" / "a.png"), cv2.resize(hr, (8, 8), interpolation=cv2.INTER_AREA))
    opt = {"name": "entry", "model_type": "HATModel", "scale": 2, "num_gpu": 0,
           "datasets": {"test_1": {"name": "one", "type": "PairedImageDataset", "dataroot_gt": "hr",
                                   "dataroot_lq": "lr", "io_backend": {"type": "disk"}}},
           "network_g": {"type": "HAT", **TINY_HAT}, "path": {"pretrain_network_g": "w.pth"},
           "val": {"save_img": True, "suffix": "sr"}}
    (tmp_path / "t.yml").write_text(yaml.safe_dump(opt))
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("basicsr").addHandler(handler)
    try:
        engine.test(["-opt", "t.yml"])
    finally:
        logging.getLogger("basicsr").removeHandler(handler)
    assert upscale(["lr/a.png", "-w", "w.pth", "-o", "up"]) == 0
    assert "w.pth [params_ema]" in capsys.readouterr().out
    tested = cv2.imread("results/entry/visualization/one/a_sr.png")
    assert np.array_equal(tested, cv2.imread("up/a.png"))
    assert any("w.pth [params_ema]" in message for message in records)  # the log line names the entry


def test_atomic_writes_get_the_mode_a_new_file_gets(tmp_path):
    """Before: every atomic write (images, checkpoints, releases, ONNX files) came out 0600, mkstemp's mode."""
    import os

    from hatast.utils.files import write_bytes_atomic

    mask = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"x")
        (tmp_path / "b.bin").write_bytes(b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == (tmp_path / "b.bin").stat().st_mode & 0o777
