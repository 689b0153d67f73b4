"""What the release scripts of the table families share (``release_srlut.py``, ``release_imlut.py``): running a
command into a log, the two CPU-recipe stages (net, then table fine-tuning) with a resume marker per stage, the
other measurements of a released file kept beside the stage results, and the manifest entry of a table file (the
card is rendered from it by :func:`hatast.release.publish`)."""

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


def check_out(args, family: str) -> None:
    """The release files go in ``<weights>/<family>`` and the manifest in ``<weights>``: ``--out`` must name such a
    folder, so that :func:`hatast.release.publish` writes the card next to the files."""
    if args.out.name != family:
        raise SystemExit(f"--out {args.out}: must be a folder named {family!r} (<weights folder>/{family}); the "
                         "manifest goes in its parent")


def stored_measurements(path: Path, release_file: Path, measure: dict[str, Callable[[], object]],
                        remeasure: bool = False) -> dict:
    """What was measured on ``release_file`` besides the stage scores (speed, baselines), kept in ``path`` so that
    ``--cards-only`` renders the card without timing again on a busy machine. Each key of ``measure`` missing from
    the record is measured and stored; everything is measured again with ``remeasure`` or when the record is of
    another file (its SHA-256 differs)."""
    from hatast.utils.files import file_sha256, write_bytes_atomic

    digest = file_sha256(release_file)
    record = json.loads(path.read_text()) if path.exists() else {}
    if remeasure or record.get("sha256") != digest:
        record = {"sha256": digest}
    missing = [key for key in measure if key not in record]
    for key in missing:
        record[key] = measure[key]()
    if missing:
        write_bytes_atomic(path, (json.dumps(record, indent=2) + "\n").encode())
    return record


def table_entry(path: Path, name: str, **fields):
    """The manifest entry of a released table file (:func:`hatast.release.table_release`: what the file says,
    without copying it) with ``fields`` (title, summary, stages, results...)."""
    from dataclasses import replace

    from hatast.release import table_release

    return replace(table_release(path, name), **fields)
