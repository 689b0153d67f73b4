"""Look-up-table inference: bit-exact parity with the SR-LUT authors, simplex interpolation for every ordering,
the two backends against each other, the table file, and defined behaviour for awkward inputs."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest
import torch
from conftest import FIXTURES, need, sample_image

from hatast.lut import LUTError, LUTTable, cpu_kernel, load_table, receptive_field, upscale
from hatast.lut.lattice import levels
from hatast.lut.simplex import authors_defect_mask, gather_neighbours, simplex_interpolate
from hatast.utils.padding import reflect_indices

SRLUT = FIXTURES / "srlut"
NAMES = ["baby", "bird", "butterfly", "head", "woman"]
BACKENDS = ["torch"] + (["numba"] if cpu_kernel.available() else [])


def random_table(kind: str, scale: int, interval: int, seed: int = 0) -> LUTTable:
    rows = levels(interval) ** receptive_field(kind).size
    rng = np.random.default_rng(seed)
    return LUTTable.srlut(kind, scale, interval, rng.integers(-127, 128, (rows, scale * scale), dtype=np.int8))


@pytest.fixture(scope="module")
def authors_table() -> LUTTable:
    return load_table(need(SRLUT / "Model_S_x4_4bit_int8.npy", "SR-LUT authors' S x4 table"))


def read_rgb(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_authors_output_reproduced_bit_for_bit(authors_table, backend):
    for name in NAMES:
        lr = read_rgb(SRLUT / "LR_x4" / f"{name}.png")
        golden = read_rgb(SRLUT / "golden_S_x4" / f"{name}_GT_LUT_interp_4bit.png")
        out = upscale(authors_table, lr, backend=backend, authors_order=True)
        assert out.shape == golden.shape
        assert np.array_equal(out, golden), f"{name}: {(out != golden).sum()} values differ"


def test_corrected_order_differs_only_where_the_authors_pick_wrong_corners(authors_table):
    """Default (correct) simplex order: the only differences from the authors' PNGs are in HR blocks whose LR pixel
    has, in some rotation, the remainder ordering f_c > f_d > f_a > f_b the authors' code mishandles."""
    differing = 0
    for name in NAMES:
        lr = read_rgb(SRLUT / "LR_x4" / f"{name}.png")
        golden = read_rgb(SRLUT / "golden_S_x4" / f"{name}_GT_LUT_interp_4bit.png")
        out = upscale(authors_table, lr)
        planes = torch.from_numpy(lr.transpose(2, 0, 1).copy())[None].long()
        defect = torch.zeros(planes.shape[1:], dtype=torch.bool)
        for values in gather_neighbours(planes, authors_table.field):
            defect |= authors_defect_mask(values & 15)[0]
        blocks = defect.permute(1, 2, 0).numpy().repeat(4, 0).repeat(4, 1)
        changed = out != golden
        assert not (changed & ~blocks).any(), f"{name}: differences outside the mishandled ordering"
        differing += int(changed.sum())
    assert differing > 0  # the defect is real on these images, and the fix changes something


def test_set5_psnr_of_authors_table(authors_table):
    from basicsr.metrics import calculate_psnr

    psnr = []
    for name in NAMES:
        lr = cv2.imread(str(SRLUT / "LR_x4" / f"{name}.png"))
        hr = cv2.imread(str(SRLUT / "HR" / f"{name}_GT.png"))
        psnr.append(calculate_psnr(upscale(authors_table, lr), hr, 4, test_y_channel=True))
    assert round(float(np.mean(psnr)), 2) == 29.83


@pytest.mark.parametrize("n,interval", [(2, 0), (2, 4), (2, 8), (3, 2), (3, 4), (3, 8), (4, 3), (4, 4), (4, 8)])
def test_simplex_interpolation_is_exact_on_linear_tables_for_every_ordering(n, interval):
    """Simplex interpolation reproduces affine functions exactly, whatever the order of the remainders; with ties
    and zeros included, every one of the n! orderings is exercised."""
    q, count = 1 << interval, levels(interval)
    slope = torch.tensor([3.0, -2.0, 5.0, 1.5][:n], dtype=torch.float64)
    lattice = torch.stack(torch.meshgrid(*[torch.arange(count, dtype=torch.float64)] * n, indexing="ij"), -1)
    table = (lattice.reshape(-1, n) @ slope + 7.0)[:, None]
    base = torch.randint(0, count - 1, (1,)).item() * q
    remainders = list(itertools.product(range(0, q, max(1, q // 4)), repeat=n)) if q > 1 else [(0,) * n]
    values = torch.tensor(remainders) + base
    values = values.clamp(max=255)
    expected = (values.double() / q) @ slope + 7.0
    got = simplex_interpolate(table, values, interval)[:, 0] / q
    assert torch.allclose(got, expected, atol=1e-9)
    if n == 4 and q >= 4:
        orders = {tuple(np.argsort(-np.array(r), kind="stable")) for r in remainders if len(set(r)) == 4}
        assert len(orders) == 24


@pytest.mark.parametrize("kind,interval", [("V", 0), ("V", 4), ("F", 4), ("S", 4), ("S", 3)])
@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (3, 5), (17, 11)])
def test_backends_agree_in_every_pixel(kind, interval, shape):
    if not cpu_kernel.available():
        pytest.skip("numba not installed")
    table = random_table(kind, 3, interval)
    image = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for authors_order in (False, True):
        fused = upscale(table, image, backend="numba", authors_order=authors_order)
        vectorised = upscale(table, image, backend="torch", authors_order=authors_order)
        assert fused.shape == (shape[0] * 3, shape[1] * 3, 3)
        assert np.array_equal(fused, vectorised)


@pytest.mark.parametrize("kind", ["V", "F", "S"])
def test_rotation_ensemble_is_rotation_equivariant(kind):
    table = random_table(kind, 2, 4 if kind != "V" else 0)
    image = sample_image()[100:131, 200:240]
    for k in range(4):
        assert np.array_equal(upscale(table, np.rot90(image, k).copy()), np.rot90(upscale(table, image), k))


@pytest.mark.parametrize("length", [1, 2, 3, 7])
@pytest.mark.parametrize("pad", [0, 1, 2, 5])
def test_reflect_indices_match_numpy_pad(length, pad):
    data = np.arange(length)
    assert np.array_equal(data[reflect_indices(length, pad, pad)], np.pad(data, pad, mode="reflect"))


def test_table_file_round_trip_and_metadata(tmp_path):
    table = random_table("F", 4, 4)
    table.info = {"iterations": 123}
    path = table.save(tmp_path / "f.npz")
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["metadata"]))
    assert meta["format_version"] == 2 and meta["family"] == "srlut" and meta["info"] == {"iterations": 123}
    described = meta["tables"]["sr"]
    assert described["receptive_field"] == {"kind": "F", "offsets": [[0, 0], [0, 1], [0, 2]]}
    assert described["interval"] == 4 and described["levels"] == 17 and described["rotations"] == 4
    assert described["outputs"] == {"layout": "patch", "count": 16, "scale": 4, "names": []}
    assert described["values"]["dtype"] == "int8" and described["values"]["value_scale"] == 127
    loaded = load_table(path)
    assert (loaded.kind, loaded.scale, loaded.interval) == ("F", 4, 4)
    assert np.array_equal(loaded.entries, table.entries) and loaded.info == {"iterations": 123}


def test_version_1_table_files_still_load(tmp_path):
    """The released SR-LUT tables of the first format: entries + metadata with kind, scale, interval, offsets."""
    table = random_table("S", 2, 4)
    meta = {"format": "hatast-lut", "format_version": 1, "kind": "S", "scale": 2, "interval": 4, "levels": 17,
            "offsets": [[0, 0], [0, 1], [1, 0], [1, 1]], "value_scale": 127, "info": {"iteration": 7}}
    np.savez(tmp_path / "v1.npz", entries=table.entries, metadata=np.array(json.dumps(meta)))
    loaded = load_table(tmp_path / "v1.npz")
    assert (loaded.kind, loaded.scale, loaded.interval, loaded.info) == ("S", 2, 4, {"iteration": 7})
    assert np.array_equal(loaded.entries, table.entries)


def test_authors_npy_layout_loads(tmp_path):
    table = random_table("S", 2, 5)
    path = tmp_path / "Model_S_x2_5bit_int8.npy"
    np.save(path, table.entries.reshape(-1, 1, 2, 2))
    loaded = load_table(path)
    assert (loaded.kind, loaded.scale, loaded.interval) == ("S", 2, 5)
    assert np.array_equal(loaded.entries, table.entries)


def test_table_shape_must_match_metadata(tmp_path):
    with pytest.raises(LUTError, match=r"does not match its metadata: receptive field S"):
        LUTTable.srlut("S", 4, 4, np.zeros((17**3, 16), np.int8))
    path = random_table("F", 4, 4).save(tmp_path / "f.npz")
    with np.load(path) as archive:
        meta = json.loads(str(archive["metadata"]))
    meta["tables"]["sr"]["receptive_field"] = {"kind": "S", "offsets": [[0, 0], [0, 1], [1, 0], [1, 1]]}
    np.savez(tmp_path / "bad.npz", **{"table.sr": np.zeros((17**3, 16), np.int8)},
             metadata=np.array(json.dumps(meta)))
    with pytest.raises(LUTError, match=r"bad\.npz: table 'sr': table shape \(4913, 16\) does not match"):
        load_table(tmp_path / "bad.npz")
    np.save(tmp_path / "odd.npy", np.zeros((1000, 1, 4, 4), np.int8))
    with pytest.raises(LUTError, match="odd.npy: 1000 rows fit no"):
        load_table(tmp_path / "odd.npy")
    with pytest.raises(LUTError, match="no such LUT file"):
        load_table(tmp_path / "missing.npz")


def test_non_uint8_images_are_refused_with_a_conversion_hint():
    table = random_table("S", 2, 4)
    with pytest.raises(LUTError, match=r"8-bit images; got uint16.*257"):
        upscale(table, np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(LUTError, match="got float32"):
        upscale(table, np.zeros((4, 4, 3), np.float32))


def test_one_pixel_image_is_upscaled_by_edge_repetition():
    table = random_table("S", 4, 4)
    for value in (0, 37, 255):
        out = upscale(table, np.full((1, 1, 3), value, np.uint8))
        flat = upscale(table, np.full((3, 3, 3), value, np.uint8))
        assert out.shape == (4, 4, 3)
        assert np.array_equal(out, flat[4:8, 4:8])  # same as the centre of a flat image of that value


def test_alpha_and_grey_are_processed_as_independent_channels():
    table = random_table("S", 2, 4)
    rgba = np.random.default_rng(2).integers(0, 256, (9, 7, 4), dtype=np.uint8)
    out = upscale(table, rgba)
    assert out.shape == (18, 14, 4)
    for c in range(4):
        grey = upscale(table, np.ascontiguousarray(rgba[..., c]))
        assert grey.shape == (18, 14) and np.array_equal(out[..., c], grey)
