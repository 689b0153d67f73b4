"""Releases: `hatast release` files (EMA weights only, safetensors with the config, weights_only .pth, SHA-256),
the manifest and the cards and README table generated from it (checked current), other loaders (spandrel) reading
the HAT family's files, and the commands built on them (`hatast models`, `hatast quickstart`)."""

from __future__ import annotations

import json
import re

import cv2
import pytest
import torch
import yaml
from conftest import REPO, TINY_HAT, sample_image, single_error_line
from safetensors import safe_open

from hatast.archs.hat_arch import HAT
from hatast.cli.main import main as hatast_main
from hatast.cli.release import main as release_command
from hatast.cli.upscale import main as upscale_command
from hatast.release import (
    MANIFEST_NAME,
    PACKAGE_WEIGHTS,
    README_END,
    README_START,
    ReleaseError,
    card,
    read_manifest,
    readme_with_table,
    resolve,
)
from hatast.utils.files import file_sha256

PACKAGE_ENTRIES = read_manifest(PACKAGE_WEIGHTS / MANIFEST_NAME)


@pytest.fixture
def checkpoint(tmp_path):
    """A training checkpoint as BasicSR saves it, plus the optimizer state a training state would add."""
    torch.manual_seed(0)
    ema, live = HAT(**TINY_HAT).eval(), HAT(**TINY_HAT).eval()
    path = tmp_path / "net_g_latest.pth"
    torch.save({"params": live.state_dict(), "params_ema": ema.state_dict(), "optimizers": [{"lr": 1e-3}],
                "iter": 1000}, path)
    return path, ema


def run(command, argv, capsys):
    code = command([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_release_keeps_the_ema_weights_only_and_records_checksums(tmp_path, checkpoint, capsys):
    path, ema = checkpoint
    card_yml = tmp_path / "card.yml"
    card_yml.write_text(yaml.safe_dump({"title": "tiny HAT for a test", "data": "none", "licence": "CC0",
                                        "stages": [{"name": "net", "iterations": 1000, "minutes": 7}]}))
    code, out, _ = run(release_command, [path, "--name", "Tiny_SRx2", "-o", tmp_path / "rel", "--card", card_yml],
                       capsys)
    assert code == 0 and "Tiny_SRx2" in out
    folder = tmp_path / "rel" / "hat"
    pth = torch.load(folder / "Tiny_SRx2.pth", weights_only=True)
    assert list(pth) == ["params_ema"]
    assert all(torch.equal(pth["params_ema"][k], v) for k, v in ema.state_dict().items())
    with safe_open(str(folder / "Tiny_SRx2.safetensors"), "pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == set(ema.state_dict())  # the authors' key names, buffers included
    meta = json.loads(meta["hatast"])
    assert meta["architecture"] == "HAT" and meta["config"]["window_size"] == TINY_HAT["window_size"]
    entry = read_manifest(tmp_path / "rel" / MANIFEST_NAME)["Tiny_SRx2"]
    assert entry.family == "hat" and entry.scale == 2 and entry.licence == "CC0"
    assert entry.parameters == sum(p.numel() for p in ema.parameters())
    assert {f.name: f.sha256 for f in entry.files} == {p.name: file_sha256(p) for p in folder.glob("Tiny_SRx2.*")
                                                      if p.suffix != ".md"}
    assert (folder / "Tiny_SRx2.md").read_text() == card(entry)
    assert not any(p.name.startswith(".staging") for p in (tmp_path / "rel").iterdir())
    # a second release under the same name is refused without --overwrite, and leaves the first as it was
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    code, _, err = run(release_command, [path, "--name", "Tiny_SRx2", "-o", tmp_path / "rel", "--card", card_yml],
                       capsys)
    assert code == 2
    single_error_line(err, "Tiny_SRx2 is already released in", "add --overwrite")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first
    # with --overwrite, the release of the same checkpoint is byte-identical
    code, out, _ = run(release_command, [path, "--name", "Tiny_SRx2", "-o", tmp_path / "rel", "--card", card_yml,
                                         "--overwrite"], capsys)
    assert code == 0 and "replaced the earlier release Tiny_SRx2" in out
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first
    # the release is found by name, and runs
    cv2.imwrite(str(tmp_path / "in.png"), sample_image("coffee")[:16, :16])
    code, out, _ = run(upscale_command, [tmp_path / "in.png", "--model", "Tiny_SRx2", "--weights-dir",
                                         tmp_path / "rel", "-o", tmp_path / "out", "--no-progress"], capsys)
    assert code == 0 and "Tiny_SRx2.safetensors" in out and (tmp_path / "out" / "in.png").is_file()


def test_release_refuses_bad_card_fields_and_names(tmp_path, checkpoint, capsys):
    path, _ = checkpoint
    (tmp_path / "card.yml").write_text("titel: typo\n")
    code, _, err = run(release_command, [path, "--name", "T", "-o", tmp_path / "rel", "--card",
                                         tmp_path / "card.yml"], capsys)
    assert code == 2
    single_error_line(err, "unknown field(s) titel")
    code, _, err = run(release_command, [path, "--name", "../evil", "-o", tmp_path / "rel"], capsys)
    assert code == 2
    single_error_line(err, "--name '../evil': use letters, digits")
    assert not (tmp_path / "rel").exists()


def test_a_table_release(tmp_path, capsys):
    from hatast.archs.srlut_arch import SRLUTNet

    torch.manual_seed(0)
    table = SRLUTNet("S", 2).to_table(4).save(tmp_path / "t.npz")
    code, _, _ = run(release_command, [table, "--name", "T_SRx2", "-o", tmp_path / "rel"], capsys)
    entry = read_manifest(tmp_path / "rel" / MANIFEST_NAME)["T_SRx2"]
    assert code == 0 and entry.family == "srlut" and entry.scale == 2
    assert (tmp_path / "rel" / "srlut" / "T_SRx2.npz").read_bytes() == table.read_bytes()


# ---- the package's releases ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PACKAGE_ENTRIES))
def test_released_files_match_the_manifest_and_cards_are_current(name, monkeypatch):
    entry = PACKAGE_ENTRIES[name]
    folder = PACKAGE_WEIGHTS / entry.folder
    assert (folder / f"{name}.md").read_text() == card(entry), "run: python -m hatast.release --readme README.md"
    if entry.source == "authors":  # not redistributed: named, with where to get it
        monkeypatch.delenv("HATAST_WEIGHTS", raising=False)
        with pytest.raises(ReleaseError, match=f"--model {name}: .* not found in .*download it from the authors"):
            resolve(name)
        assert all(f.sha256 is None for f in entry.files) and "get it from" in entry.summary
        return
    for file in entry.files:
        assert file_sha256(folder / file.name) == file.sha256 and (folder / file.name).stat().st_size == file.bytes
    path, found = resolve(name)
    assert found.name == name and path.parent == folder


def test_the_readme_release_table_is_current():
    readme = (REPO / "README.md").read_text()
    assert README_START in readme and README_END in readme
    assert readme_with_table(readme, PACKAGE_ENTRIES.values()) == readme, \
        "run: python -m hatast.release --readme README.md"


def test_every_released_file_is_shipped_or_documented():
    """Small releases ship in the wheel (setup.py's package_data); the larger .pth copies stay in the repository."""
    setup = (REPO / "setup.py").read_text()
    assert '"weights/manifest.json"' in setup and '"weights/*/*.npz"' in setup and '"weights/*/*.safetensors"' in setup
    for entry in PACKAGE_ENTRIES.values():
        if entry.source == "hatast":
            assert any(f.name.endswith((".npz", ".safetensors")) for f in entry.files), entry.name


HAT_FAMILY = [n for n, e in PACKAGE_ENTRIES.items() if e.family == "hat" and e.source == "hatast"]


@pytest.mark.parametrize("name", HAT_FAMILY)
def test_released_hat_files_load_in_spandrel(name):
    spandrel = pytest.importorskip("spandrel")  # a test dependency (setup.py's test extra)
    from hatast.inference import load_network

    entry = PACKAGE_ENTRIES[name]
    x = torch.rand(1, 3, 21, 27)
    for file in entry.files:
        path = PACKAGE_WEIGHTS / entry.folder / file.name
        theirs = spandrel.ModelLoader().load_from_file(str(path))
        ours, _ = load_network(str(path), None, "cpu")
        with torch.no_grad():
            assert (theirs(x) - ours.network(x).clamp(0, 1)).abs().max() < 1e-5


def test_hat_state_dicts_load_in_spandrel(tmp_path, capsys):
    """Any HAT release hatast writes is recognised by spandrel (hence chaiNNer, ComfyUI) with hatast's output."""
    spandrel = pytest.importorskip("spandrel")
    torch.manual_seed(0)
    net = HAT(**{**TINY_HAT, "window_size": 8, "embed_dim": 24}).eval()
    torch.save({"params_ema": net.state_dict()}, tmp_path / "ck.pth")
    assert run(release_command, [tmp_path / "ck.pth", "--name", "H", "-o", tmp_path / "rel"], capsys)[0] == 0
    x = torch.rand(1, 3, 19, 23)
    for suffix in (".safetensors", ".pth"):
        theirs = spandrel.ModelLoader().load_from_file(str(tmp_path / "rel" / "hat" / f"H{suffix}"))
        assert type(theirs.model).__name__ == "HAT" and theirs.scale == 2
        with torch.no_grad():
            assert (theirs(x) - net(x).clamp(0, 1)).abs().max() < 1e-5


def test_models_lists_the_releases(capsys):
    with pytest.raises(SystemExit) as done:
        hatast_main(["models"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    for name, entry in PACKAGE_ENTRIES.items():
        state = "ready: " if entry.source == "hatast" else "not here"
        assert re.search(rf"^  {re.escape(name)} .*; {state}", out, re.M), out


def test_quickstart_beats_bicubic_with_the_default_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        hatast_main(["quickstart", "-o", str(tmp_path / "qs")])
    out = capsys.readouterr().out
    assert done.value.code == 0, out
    mean = re.search(r"mean\s+([\d.]+) / ([\d.]+)\s+([\d.]+) / ([\d.]+)", out)
    assert mean and float(mean.group(3)) > float(mean.group(1)) + 0.5  # PSNR: SR-LUT S x4 over bicubic
    assert sorted(p.name for p in (tmp_path / "qs" / "SR").iterdir()) == ["astronaut.png", "chelsea.png",
                                                                          "coffee.png"]
