"""The one way commands end (hatast/utils/errors.py): user errors as one line and exit 2, Ctrl-C as one line and
130 with no partial file, a bug as its traceback, a report line and 70 (never disguised as a user error)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
from conftest import REPO, sample_image

from hatast.utils.errors import EXIT_BUG, EXIT_INTERRUPTED, HatastError, UsageError, command


def test_a_user_error_is_one_line_and_exit_2(capsys):
    @command
    def main(argv):
        raise UsageError("--scale 3: this model upscales by 4 only")

    assert main([]) == 2
    assert capsys.readouterr().err == "error: --scale 3: this model upscales by 4 only\n"


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(capsys):
    @command
    def main(argv):
        raise ValueError("an internal inconsistency")  # not a HatastError: a bug, not the user's input

    assert main([]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: an internal inconsistency" in err
    assert err.strip().splitlines()[-1].startswith("hatast: this is a bug in hatast, not a problem with your input")


def test_parser_exits_become_the_return_value(capsys):
    @command
    def main(argv):
        raise SystemExit(2)

    assert main([]) == 2
    assert isinstance(HatastError("x"), ValueError)  # code that caught ValueError still catches user errors


def test_ctrl_c_prints_one_line_and_leaves_no_partial_file(tmp_path):
    """A large upscale interrupted in the middle: exit 130, one line, no temporary and no result left behind."""
    photo = cv2.resize(sample_image("astronaut"), (1800, 1800), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "hatast.cli.main", "upscale", "photo.png", "-o", "out",
                                "--model", str(REPO / "hatast/weights/srlut/SRLUT-S_SRx4.npz"), "--no-progress"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()  # "<model>; 1 image(s) -> out": the image is being read and computed
    assert b"1 image(s)" in first, first
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED, (process.returncode, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), lines
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no partial image, no temporary file
    assert np.array_equal(cv2.imread(str(tmp_path / "photo.png")), photo)
