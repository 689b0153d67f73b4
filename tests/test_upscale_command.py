"""`hatast upscale` and `hatast.upscale`: released names through the manifest (SHA-256 checked), glob inputs, kept
outputs, output formats, automatic tile size from the free memory, per-tile progress and half precision."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY_HAT, file_hashes, sample_image, single_error_line

import hatast
from hatast.archs.hat_arch import HAT
from hatast.archs.hat_ast_arch import HATAST
from hatast.archs.srlut_arch import SRLUTNet
from hatast.cli.upscale import main as upscale_command
from hatast.inference import Upscaler
from hatast.release import Release, ReleaseFile, publish
from hatast.utils import tiling
from hatast.utils.files import file_sha256
from hatast.utils.image import read_image


@pytest.fixture
def table(tmp_path):
    torch.manual_seed(0)
    return SRLUTNet("S", 2).to_table(4).save(tmp_path / "S_x2.npz")


@pytest.fixture
def hat(tmp_path):
    torch.manual_seed(0)
    net = HAT(**TINY_HAT).eval()
    path = tmp_path / "tiny_x2.pth"
    torch.save({"params_ema": net.state_dict()}, path)
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), sample_image("coffee")[:20, :24])
    cv2.imwrite(str(folder / "b.jpg"), sample_image("astronaut")[:16, :18])
    return folder


@pytest.fixture
def released(tmp_path, table):
    """A weights folder with a manifest naming the table, as `hatast release` writes it."""
    folder = tmp_path / "weights"
    (folder / "srlut").mkdir(parents=True)
    shutil.copy(table, folder / "srlut" / "Tiny_SRx2.npz")
    entry = Release(name="Tiny_SRx2", title="a test table", family="srlut", architecture="SR-LUT S table", scale=2,
                    files=[ReleaseFile("Tiny_SRx2.npz", file_sha256(table), table.stat().st_size)])
    publish(entry, folder)
    return folder


def run(argv, capsys):
    try:
        code = upscale_command([str(a) for a in argv] + ["--no-progress"])
    except SystemExit as done:
        code = done.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_a_released_name_resolves_through_the_manifest(tmp_path, photos, released, table, capsys):
    code, out, _ = run([photos, "--model", "tiny_srx2", "--weights-dir", released, "-o", tmp_path / "out"], capsys)
    assert code == 0 and "Tiny_SRx2.npz" in out
    assert out.strip().splitlines()[-1].startswith("2 of 2 image(s) upscaled, 0 failed, in ")
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == (40, 48, 3)


def test_a_released_file_with_another_checksum_is_refused(tmp_path, photos, released, capsys):
    damaged = released / "srlut" / "Tiny_SRx2.npz"
    data = damaged.read_bytes()
    damaged.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    code, out, err = run([photos, "--model", "Tiny_SRx2", "--weights-dir", released, "-o", tmp_path / "o"], capsys)
    assert code == 2 and out == ""
    single_error_line(err, "Tiny_SRx2.npz: SHA-256", "does not match Tiny_SRx2's")
    assert not (tmp_path / "o").exists()


def test_an_unknown_name_lists_the_released_ones(tmp_path, photos, released, capsys):
    code, _, err = run([photos, "--model", "Nope_SRx2", "--weights-dir", released, "-o", tmp_path / "o"], capsys)
    assert code == 2
    single_error_line(err, "--model Nope_SRx2: not a file and not a released model", "Tiny_SRx2")


def test_glob_patterns_and_kept_outputs(tmp_path, photos, table, capsys):
    out = tmp_path / "out"
    code, _, _ = run([str(photos / "*.png"), "-w", table, "-o", out], capsys)
    assert code == 0 and sorted(p.name for p in out.iterdir()) == ["a.png"]
    (out / "a.png").write_bytes(b"mine")  # an existing output is kept unless --overwrite
    code, stdout, _ = run([str(photos / "*.*"), "-w", table, "-o", out], capsys)
    assert code == 0 and (out / "a.png").read_bytes() == b"mine" and (out / "b.png").is_file()
    assert "1 of 2 image(s) upscaled, 1 kept" in stdout
    code, _, _ = run([photos, "-w", table, "-o", out, "--overwrite"], capsys)
    assert code == 0 and cv2.imread(str(out / "a.png")).shape == (40, 48, 3)
    code, _, err = run([str(photos / "*.gif"), "-w", table, "-o", out], capsys)
    assert code == 2
    single_error_line(err, "*.gif: the pattern matches no image file")


def test_overwrite_never_replaces_an_input(tmp_path, photos, table, capsys):
    before = file_hashes(photos)
    code, _, err = run([photos / "a.png", "-w", table, "-o", photos, "--overwrite"], capsys)
    assert code == 2 and file_hashes(photos) == before
    single_error_line(err, "would overwrite the input")


def test_output_formats(tmp_path, table, capsys):
    rgba = np.dstack([sample_image("coffee")[:20, :24], np.full((20, 24), 200, np.uint8)]).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), rgba)
    code, out, _ = run([tmp_path / "deep.png", "-w", table, "-o", tmp_path / "jpg", "--ext", "jpg"], capsys)
    assert code == 0 and "alpha dropped: jpg has none; 16-bit input written as 8-bit jpg" in out
    img = cv2.imread(str(tmp_path / "jpg" / "deep.jpg"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (40, 48, 3) and img.dtype == np.uint8
    code, _, _ = run([tmp_path / "deep.png", "-w", table, "-o", tmp_path / "tif", "--ext", "tif"], capsys)
    img = cv2.imread(str(tmp_path / "tif" / "deep.tif"), cv2.IMREAD_UNCHANGED)
    assert code == 0 and img.shape == (40, 48, 4) and img.dtype == np.uint16


def test_the_python_function_takes_the_same_options(tmp_path, photos, table):
    lines = []
    summary = hatast.upscale(photos, tmp_path / "out", table, suffix="_x2", ext="webp", progress=False,
                             report=lines.append)
    assert [p.name for p in summary.written] == ["a_x2.webp", "b_x2.webp"] and not summary.failed
    assert summary.total == 2 and len(lines) == 3
    with pytest.raises(ValueError, match="--ext gif"):
        hatast.upscale(photos, tmp_path / "out", table, ext="gif")


def test_auto_tile_size_follows_the_free_memory(monkeypatch):
    """1000 bytes per input pixel and 8 MB free: half of it, less the whole-image buffers, sets the tile."""
    monkeypatch.setattr(tiling, "free_memory", lambda device: 8_000_000)
    monkeypatch.setattr(tiling, "peak_memory", lambda fn, x: 1000 * x.shape[-2] * x.shape[-1])
    x = torch.zeros(1, 3, 100, 90)
    tile, per_pixel = tiling.auto_tile_size(lambda t: t, x, scale=2, tile_pad=8, multiple=4)
    budget = 0.5 * 8_000_000 - 7 * 100 * 90 * 4 * 4
    assert tile == (int((budget / 1000) ** 0.5) - 16) // 4 * 4 == 36 and per_pixel == 1000
    monkeypatch.setattr(tiling, "free_memory", lambda device: 10**12)
    assert tiling.auto_tile_size(lambda t: t, x, scale=2, tile_pad=8, multiple=4)[0] == 0  # fits: whole image


def test_peak_memory_sees_a_large_allocation():
    peak = tiling.peak_memory(lambda x: torch.ones(64, 2**20).sum(), torch.zeros(1))  # 256 MiB
    assert peak is None or peak >= 200 * 2**20


def test_auto_tiles_upscale_a_large_image_close_to_the_whole(tmp_path, hat, monkeypatch):
    img = sample_image("astronaut")[:100, :90]
    cv2.imwrite(str(tmp_path / "big.png"), img)
    upscaler = Upscaler.load(str(hat), None, "cpu")
    whole = upscaler(read_image(tmp_path / "big.png"), 0, 8, "cpu")
    monkeypatch.setattr(tiling, "free_memory", lambda device: 8_000_000)
    monkeypatch.setattr(tiling, "peak_memory", lambda fn, x: 1000 * x.shape[-2] * x.shape[-1])
    calls = []
    tiled = upscaler(read_image(tmp_path / "big.png"), None, 8, "cpu", progress=lambda d, t: calls.append((d, t)))
    assert upscaler.last_tile == 36 and calls == [(i, 9) for i in range(1, 10)]
    assert tiled.shape == whole.shape and (tiled - whole).abs().mean() < 2e-3


@pytest.mark.parametrize("arch", [HAT, HATAST])
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_for_networks_tested_in_it(tmp_path, arch, precision):
    """The dtypes detect.HALF_PRECISION declares for the HAT family."""
    torch.manual_seed(0)
    weights = tmp_path / "net.pth"
    torch.save({"params": arch(**TINY_HAT).state_dict()}, weights)
    image = read_image(_write(tmp_path, sample_image("coffee")[:24, :28]))
    full = Upscaler.load(str(weights), None, "cpu")(image, 0, 8, "cpu")
    half = Upscaler.load(str(weights), None, "cpu", precision=precision)
    out = half(image, 0, 8, "cpu")
    assert out.dtype == torch.float32 and (out - full).abs().max() < 1e-2 and precision in half.label


def test_half_precision_is_refused_where_untested(tmp_path, photos, table, capsys):
    code, _, err = run([photos, "-w", table, "-o", tmp_path / "o", "--precision", "bf16"], capsys)
    assert code == 2
    single_error_line(err, "--precision bf16: tables compute in integers")


def _write(folder, img):
    path = folder / "img.png"
    cv2.imwrite(str(path), img)
    return path
