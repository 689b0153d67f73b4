"""End to end through the entry points: train, validate, checkpoint, kill, resume, test, and 2-process gloo."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, write_options

TRAIN = [sys.executable, str(REPO / "hatast" / "train.py")]
TEST = [sys.executable, str(REPO / "hatast" / "test.py")]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)  # the script must find hatast by itself
    return env


def _run(cmd, cwd, timeout=600):
    out = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def _experiment(cwd: Path) -> Path:
    return cwd / "experiments" / "tiny_hat_test"


def test_train_writes_checkpoints_validates_and_tests(tmp_path, image_folders):
    opt = write_options(tmp_path / "train.yml", image_folders, total_iter=6)
    log = _run(TRAIN + ["-opt", str(opt)], cwd=tmp_path)
    exp = _experiment(tmp_path)
    assert sorted(p.name for p in (exp / "models").iterdir()) == [
        "net_g_2.pth", "net_g_4.pth", "net_g_6.pth", "net_g_latest.pth"]
    assert sorted(p.name for p in (exp / "training_states").iterdir()) == ["2.state", "4.state", "6.state"]
    psnr = [float(v) for v in re.findall(r"# psnr: ([\d.]+)", log)]
    assert psnr and all(5 < v < 60 for v in psnr)
    saved = torch.load(exp / "models" / "net_g_latest.pth", weights_only=True)
    assert set(saved) == {"params", "params_ema"}

    # Test the trained weights through the test entry point, tiled, with the weights of the run.
    test_opt = yaml.safe_load(opt.read_text())
    test_opt["name"] = "tiny_hat_test_eval"
    test_opt["datasets"] = {"test_1": test_opt["datasets"]["val"]}
    test_opt["path"] = {"pretrain_network_g": str(exp / "models" / "net_g_latest.pth"), "param_key_g": "params_ema"}
    test_opt["tile"] = {"tile_size": 8, "tile_pad": 4}
    test_opt["val"]["save_img"] = True
    for key in ("train", "logger"):
        test_opt.pop(key)
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test_opt))
    log = _run(TEST + ["-opt", str(tmp_path / "test.yml")], cwd=tmp_path)
    assert re.search(r"# psnr: [\d.]+", log)
    images = list((tmp_path / "results" / "tiny_hat_test_eval" / "visualization" / "tiny_val").glob("*.png"))
    assert len(images) == 2


def test_resume_after_kill(tmp_path, image_folders):
    opt = write_options(tmp_path / "train.yml", image_folders, total_iter=2000)
    states = _experiment(tmp_path) / "training_states"
    proc = subprocess.Popen(TRAIN + ["-opt", str(opt)], cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not (states / "4.state").exists():
            assert proc.poll() is None, "training exited early"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = max(int(p.stem) for p in states.glob("*.state"))
    # Every finished file is complete (writes go through a temporary file and a rename)...
    for path in [*states.glob("*.state"), *states.parent.joinpath("models").glob("*.pth")]:
        torch.load(path, weights_only=True)

    log = _run(TRAIN + ["-opt", str(opt), "--auto_resume", "--force_yml", f"train:total_iter={done + 2}"],
               cwd=tmp_path)
    assert f"Resuming training from epoch 0, iteration {done}" in log
    assert f"iter: {done + 1:7d}" in log and "iter:       1," not in log
    assert (_experiment(tmp_path) / "models" / "net_g_latest.pth").exists()
    # ... and a temporary file the kill interrupted is cleared away by the resumed run.
    assert not [p for p in _experiment(tmp_path).rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not found")
def test_two_process_gloo_training(tmp_path, image_folders):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    opt = write_options(tmp_path / "train.yml", image_folders, total_iter=4)
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", str(REPO / "hatast" / "train.py"), "-opt", str(opt),
           "--launcher", "pytorch"]
    log = _run(cmd, cwd=tmp_path)
    exp = _experiment(tmp_path)
    assert "End of training" in log
    assert (exp / "models" / "net_g_4.pth").exists() and (exp / "training_states" / "4.state").exists()
    assert "x 2 process(es)" in log  # the training statistics count both processes
    assert "rank 0/2: finished at iteration 4" in log and "rank 1/2: finished at iteration 4" in log
