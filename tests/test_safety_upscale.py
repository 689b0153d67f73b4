"""`hatast upscale` never loses data: it refuses before any compute to write onto an input, to send two inputs to one
output or to write where it cannot; it writes atomically; a bad image is reported and the batch goes on. Images are
read as displayed (EXIF orientation)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, TINY_HAT, file_hashes, sample_image, single_error_line

from hatast.archs.hat_arch import HAT
from hatast.archs.srlut_arch import SRLUTNet
from hatast.cli.upscale import main as upscale
from hatast.lut import LUTError, load_table
from hatast.lut import upscale as lut_upscale
from hatast.utils.image import apply_exif_orientation, read_image


@pytest.fixture
def table(tmp_path) -> Path:
    torch.manual_seed(0)
    return SRLUTNet("S", 2).to_table(4).save(tmp_path / "S_x2.npz")


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    img = sample_image("coffee")[:20, :26]
    cv2.imwrite(str(folder / "pic.png"), img)
    cv2.imwrite(str(folder / "other.png"), img[::-1])
    return folder


def _run(argv, capsys) -> tuple[int, str, str]:
    try:
        code = upscale([str(a) for a in argv])
    except SystemExit as done:  # argument errors exit from argparse, as on the command line
        code = done.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_output_folder_equal_to_the_input_folder_is_refused(tmp_path, photos, table, capsys):
    """Before: the originals were replaced by their upscaled versions, exit 0."""
    before = file_hashes(photos)
    code, out, err = _run([photos, "-w", table, "-o", photos], capsys)
    assert code == 2 and out == ""
    single_error_line(err, "would overwrite the input", "hatast never writes onto its inputs")
    assert file_hashes(photos) == before


def test_a_suffix_makes_the_same_folder_safe(tmp_path, photos, table, capsys):
    before = file_hashes(photos)
    code, _, _ = _run([photos, "-w", table, "-o", photos, "--suffix", "_x2"], capsys)
    assert code == 0 and (photos / "pic_x2.png").is_file()
    assert all(file_hashes(photos)[k] == v for k, v in before.items())


def test_names_that_differ_only_in_extension_keep_both_results(tmp_path, table, capsys):
    """Before: pic.png and pic.jpg were both written to pic.png (one result lost, exit 0)."""
    folder = tmp_path / "in"
    folder.mkdir()
    img = sample_image("astronaut")[:16, :16]
    for ext in ("png", "jpg", "webp", "tif", "bmp"):
        cv2.imwrite(str(folder / f"pic.{ext}"), img)
    code, _, _ = _run([folder, "-w", table, "-o", tmp_path / "out"], capsys)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "pic_bmp.png", "pic_jpg.png", "pic_png.png", "pic_tif.png", "pic_webp.png"]
    expected = lut_upscale(load_table(table), read_image(folder / "pic.jpg").bgr)
    assert np.array_equal(cv2.imread(str(tmp_path / "out" / "pic_jpg.png")), expected)


def test_the_same_name_in_two_folders_is_refused(tmp_path, photos, table, capsys):
    other = tmp_path / "more"
    shutil.copytree(photos, other)
    code, _, err = _run([photos, other, "-w", table, "-o", tmp_path / "out"], capsys)
    assert code == 2
    single_error_line(err, "would both be written to", "out/other.png")
    assert not (tmp_path / "out").exists()


def test_the_same_file_twice_is_upscaled_once(tmp_path, photos, table, capsys):
    code, out, _ = _run([photos / "pic.png", photos, "-w", table, "-o", tmp_path / "out"], capsys)
    assert code == 0 and "2 image(s)" in out


def test_an_output_folder_that_is_a_file_is_refused_before_any_compute(tmp_path, photos, table, capsys):
    for target in (table, table / "sub"):
        code, out, err = _run([photos, "-w", table, "-o", target], capsys)
        assert code == 2 and "->" not in out
        single_error_line(err, f"{table} is a file, not a folder")


def test_an_unwritable_output_folder_is_refused_before_any_compute(tmp_path, photos, table, capsys, monkeypatch):
    """Before: a traceback after the first image had been computed, the rest of the batch dropped."""
    import hatast.utils.files as files

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    code, out, err = _run([photos, "-w", table, "-o", tmp_path / "ro"], capsys)
    assert code == 2 and "->" not in out
    single_error_line(err, f"-o {tmp_path / 'ro'} is not writable (Permission denied)")


def test_a_read_only_folder_for_real(tmp_path):
    """The same refusal from the operating system: a 0555 folder, written to by an unprivileged user."""
    work = Path(tempfile.mkdtemp(prefix="hatast-ro-"))
    try:
        os.chmod(work, 0o755)
        torch.save({"params_ema": HAT(**TINY_HAT).state_dict()}, work / "w.pth")
        cv2.imwrite(str(work / "in.png"), sample_image("coffee")[:12, :12])
        (work / "ro").mkdir(mode=0o555)
        os.chmod(work / "ro", 0o555)
        for path in work.iterdir():
            os.chmod(path, os.stat(path).st_mode | 0o444)
        cmd = [sys.executable, "-m", "hatast.cli.main", "upscale", "in.png", "-w", "w.pth", "-o", "ro"]
        if os.geteuid() == 0:  # root writes anywhere: run as 'nobody' where the system allows it
            setpriv = shutil.which("setpriv")
            probe = setpriv and subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                                                sys.executable, "-c", "import hatast"], cwd=work,
                                               capture_output=True, env=dict(os.environ, HOME=str(work)))
            if not probe or probe.returncode != 0:
                pytest.skip("running as root and cannot switch to an unprivileged user to test a read-only folder "
                            "(the refusal itself is tested above)")
            cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        out = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=dict(os.environ, HOME=str(work)),
                             timeout=300)
        assert out.returncode == 2, out.stderr
        single_error_line(out.stderr, "-o ro is not writable (Permission denied)")
        assert list((work / "ro").iterdir()) == []
    finally:
        os.chmod(work / "ro", 0o755) if (work / "ro").exists() else None
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("args,message", [
    (["--tile", "-8"], "hatast upscale: error: argument --tile: must be a whole number from 0 to 65535, got -8"),
    (["--tile-pad", "x"], "argument --tile-pad: expected a whole number from 0 to 1024, got 'x'"),
    (["--device", "gpu"], "error: --device 'gpu' is not a device"),
    (["--device", f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"],
     "not available on this machine" if not torch.cuda.is_available() else "CUDA device(s)"),
])
def test_bad_arguments_are_one_line(tmp_path, photos, table, capsys, args, message):
    code, _, err = _run([photos, "-w", table, "-o", tmp_path / "out", *args], capsys)
    assert code == 2
    line = single_error_line(err, message, prefix="")
    assert line.startswith(("error: ", "hatast upscale: error: "))
    assert not (tmp_path / "out").exists()


def test_a_bad_image_is_skipped_and_the_batch_goes_on(tmp_path, photos, table, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (photos / "empty.jpg").write_bytes(b"")
    code, out, err = _run([photos, "-w", table, "-o", tmp_path / "out"], capsys)
    assert code == 1
    skipped = [line for line in err.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 2 and "broken.png: not a readable image" in skipped[0]
    assert "empty.jpg: not a readable image (empty file)" in skipped[1]
    assert err.splitlines()[-1].startswith("2 of 4 image(s) upscaled, 2 failed, in ")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["other.png", "pic.png"]


def test_a_folder_in_the_place_of_an_output_is_refused_before_any_compute(tmp_path, photos, table, capsys):
    (tmp_path / "out" / "other.png").mkdir(parents=True)  # a folder where the result should go
    code, _, err = _run([photos, "-w", table, "-o", tmp_path / "out"], capsys)
    assert code == 2
    single_error_line(err, "other.png is a folder")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["other.png"]  # nothing written


def test_a_write_failure_is_reported_and_the_batch_goes_on(tmp_path, photos, table, capsys, monkeypatch):
    import hatast.utils.image as image_io
    from hatast.utils.files import atomic_write

    real = image_io.write_bytes_atomic

    def disk_full_for_other(path, data):
        if Path(path).name == "other.png":
            with atomic_write(path) as stream:  # fails after its temporary file was made
                stream.write(bytes(data)[:100])
                raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(image_io, "write_bytes_atomic", disk_full_for_other)
    code, _, err = _run([photos, "-w", table, "-o", tmp_path / "out"], capsys)
    assert code == 1
    assert "could not write the image (No space left on device)" in err and "other.png" in err
    assert (tmp_path / "out" / "pic.png").is_file() and not (tmp_path / "out" / "other.png").exists()
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_killed_write_leaves_no_partial_image(tmp_path, photos, table, capsys):
    """Before: an image killed during its write stayed under its final name as a truncated PNG."""
    out = tmp_path / "out"
    script = (f"import os, signal\nfrom hatast.utils.files import atomic_path\n"
              f"with atomic_path({str(out / 'pic.png')!r}, '.png') as tmp:\n"
              f"    tmp.write_bytes(b'\\x89PNG half an image')\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "pic.png").exists()
    leftovers = [p.name for p in out.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".pic.png.")
    code, _, _ = _run([photos, "-w", table, "-o", out], capsys)  # the next run cleans up after the killed one
    assert code == 0 and sorted(p.name for p in out.iterdir()) == ["other.png", "pic.png"]


def test_exif_orientation_is_applied(tmp_path, table, capsys):
    """Before: a phone photo with orientation 6 was upscaled as stored (on its side), not as displayed."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    stored = PILImage.fromarray(sample_image("astronaut")[:10, :16, ::-1].copy())
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    displayed = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "phone.jpg")))
    assert read_image(tmp_path / "phone.jpg").size == (16, 10)
    code, _, _ = _run([tmp_path / "phone.jpg", "-w", table, "-o", tmp_path / "out"], capsys)
    assert code == 0
    result = cv2.imread(str(tmp_path / "out" / "phone.png"))
    assert result.shape == (32, 20, 3)
    stored_bgr = cv2.imdecode(np.fromfile(tmp_path / "phone.jpg", np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(apply_exif_orientation(stored_bgr, 6)[..., ::-1], displayed)
    assert "EXIF orientation" in subprocess.run([sys.executable, "-m", "hatast.cli.main", "upscale", "--help"],
                                                capture_output=True, text=True).stdout


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(orientation):
    from PIL import Image as PILImage
    from PIL import ImageOps

    pixels = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    img = PILImage.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(img))
    assert np.array_equal(apply_exif_orientation(pixels, orientation), expected)


def test_upper_case_table_suffix_is_a_table(tmp_path, photos, table, capsys):
    """Before: `X.NPZ` was read as a torch checkpoint."""
    upper = table.rename(table.with_suffix(".NPZ"))
    code, out, _ = _run([photos / "pic.png", "-w", upper, "-o", tmp_path / "out"], capsys)
    assert code == 0 and "SR-LUT S table x2" in out


def test_python_api_refuses_what_is_not_an_image(table):
    """Before: a list passed to hatast.lut.upscale raised AttributeError from deep inside."""
    with pytest.raises(LUTError, match="expected a numpy uint8 image, got list"):
        lut_upscale(load_table(table), [[1, 2], [3, 4]])
    with pytest.raises(LUTError, match="expected a LUTTable"):
        lut_upscale(str(table), np.zeros((4, 4), np.uint8))


def test_the_table_path_runs_without_torch(tmp_path, photos, table):
    """Bounded memory: a table upscale never imports PyTorch (about 0.5 GiB resident before any image) or BasicSR,
    and gives the same pixels as the table API."""
    code = ("import sys\nfrom hatast.cli.upscale import main\n"
            f"code = main([{str(photos / 'pic.png')!r}, '-w', {str(table)!r}, '-o', {str(tmp_path / 'out')!r}])\n"
            "print(code, *(name in sys.modules for name in ('torch', 'basicsr')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["0", "False", "False"]
    expected = lut_upscale(load_table(table), cv2.imread(str(photos / "pic.png")))
    assert np.array_equal(cv2.imread(str(tmp_path / "out" / "pic.png")), expected)
