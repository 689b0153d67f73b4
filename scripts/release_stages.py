"""What the release scripts of the table families share (``release_srlut.py``, ``release_imlut.py``): running a
command into a log, and the two CPU-recipe stages (net, then table fine-tuning) with a resume marker per stage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], log: Path, cwd: Path = REPO) -> None:
    """Run ``cmd`` with its output appended to ``log``; stop the script with one line if it fails."""
    with open(log, "a") as f:
        code = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {code}; see {log}")


def train_stages(stem: str, args, score: Callable[[Path], dict], recipe: Callable[[Path], dict]) -> dict:
    """Train ``options/train/<stem>_CPU_{net,table}.yml`` (resumable), score each stage's tables and record
    ``{"metrics", "minutes", **recipe}`` per stage in ``<out>/logs/<stem>_<stage>.json`` (a finished stage is read
    back, not retrained; ``--cards-only`` trains nothing)."""
    from hatast.utils.files import write_bytes_atomic

    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = {}
    for stage in ("net", "table"):
        option_file = REPO / "options" / "train" / f"{stem}_CPU_{stage}.yml"
        tables = REPO / "experiments" / f"{stem}_CPU_{stage}" / "models" / "net_g_latest.npz"
        done = logs / f"{stem}_{stage}.json"
        if done.exists():
            results[stage] = json.loads(done.read_text())
            continue
        if args.cards_only:
            raise SystemExit(f"--cards-only: {stem} has no finished {stage} stage ({done} is missing)")
        start = time.time()
        run([sys.executable, "-m", "hatast.cli.main", "train", "-opt", str(option_file), "--auto_resume",
             "--data-root", str(args.data)], logs / f"{stem}.log")
        minutes = (time.time() - start) / 60
        results[stage] = {"metrics": score(tables), "minutes": minutes, **recipe(option_file)}
        write_bytes_atomic(done, json.dumps(results[stage], indent=2).encode())  # the resume marker: never half
    if not args.cards_only:
        final = REPO / "experiments" / f"{stem}_CPU_table" / "models" / "net_g_latest.npz"
        write_bytes_atomic(args.out / f"{stem}.npz", final.read_bytes())
    return results
