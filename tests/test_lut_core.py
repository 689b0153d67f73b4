"""The general LUT core: any receptive field, any number of outputs in a patch or channel layout, with or without
the rotation ensemble, through both backends; the torch-first entry point; the net-to-table transfer; and the
version 2 table file with several tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hatast.archs.lut_arch import LUTLayer
from hatast.lut import cpu_kernel
from hatast.lut.fields import OutputLayout, ReceptiveField, field_from_offsets, receptive_field
from hatast.lut.inference import apply_table, upscale, upscale_batch
from hatast.lut.lattice import levels
from hatast.lut.simplex import ensemble_sum, place
from hatast.lut.table import LUTError, LUTFile, LUTTable, load_file, load_table
from hatast.lut.transfer import field_patches, lattice_values, transfer

needs_numba = pytest.mark.skipif(not cpu_kernel.available(), reason="numba not installed")
DIAGONAL = ReceptiveField("diagonal", ((0, 0), (1, 1), (0, 2)))


def random_table(field: ReceptiveField, layout: OutputLayout, interval: int = 4, rotations: int = 4,
                 seed: int = 0) -> LUTTable:
    rng = np.random.default_rng(seed)
    entries = rng.integers(-127, 128, (levels(interval) ** field.size, layout.count), dtype=np.int8)
    return LUTTable(field, interval, entries, layout, rotations)


def torch_path(table: LUTTable, batch: torch.Tensor, entries: torch.Tensor | None = None) -> torch.Tensor:
    entries = torch.from_numpy(table.entries) if entries is None else entries
    return place(ensemble_sum(entries, batch.long(), table.field, table.layout, table.interval, table.rotations),
                 table.layout)


@needs_numba
@pytest.mark.parametrize("field", [receptive_field("S"), receptive_field("F"), DIAGONAL], ids=lambda f: f.kind)
@pytest.mark.parametrize("layout", [OutputLayout.channels(3, ("N", "L", "C")), OutputLayout.channels(1),
                                    OutputLayout.patch(2)], ids=lambda lay: f"{lay.kind}{lay.count}")
@pytest.mark.parametrize("rotations", [1, 4])
@pytest.mark.parametrize("shape", [(1, 1), (2, 5), (9, 7)])
def test_backends_agree_for_any_field_layout_and_rotations(field, layout, rotations, shape):
    table = random_table(field, layout, rotations=rotations)
    batch = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 3, *shape), dtype=np.uint8))
    fused = apply_table(table, batch, backend="numba")
    vectorised = apply_table(table, batch, backend="torch")
    assert fused.shape == vectorised.shape == (2, 3, *layout.output_shape(1, *shape)[1:])
    assert fused.dtype == torch.int32 and torch.equal(fused, vectorised.to(torch.int32))
    floats = torch.from_numpy(table.entries.astype(np.float32) * 0.37)
    planes = batch.reshape(6, *shape).numpy()
    fused_float = cpu_kernel.ensemble(planes, floats.numpy(), field, layout, table.interval, rotations)
    assert np.allclose(fused_float.reshape(fused.shape), torch_path(table, batch, floats).numpy(), atol=1e-3)


@needs_numba
@pytest.mark.parametrize("field,rotations,authors_order", [
    (field, rotations, authors) for field in (receptive_field("S"), receptive_field("V"), DIAGONAL)
    for rotations, authors in ((1, False), (4, False), (4, True)) if field.kind == "S" or not authors],
    ids=lambda v: v.kind if isinstance(v, ReceptiveField) else str(v))
@pytest.mark.parametrize("layout,channels_last,to_pixels", [
    (OutputLayout.channels(1), False, False), (OutputLayout.channels(3), False, False),
    (OutputLayout.patch(4), True, True), (OutputLayout.patch(2), False, False)], ids=["ch1", "ch3", "px4hwc", "p2"])
@pytest.mark.parametrize("interval", [4, 3])
def test_specialised_kernels_equal_the_general_kernel_in_every_value(field, layout, channels_last, to_pixels,
                                                                     rotations, authors_order, interval):
    """The block walk (S, four rotations) and the unrotated rows (4-pixel field, no ensemble) against the general
    kernel, bit for bit: int8 and float tables, patch and channel layouts, rounding to pixels, sums put onto a float
    image, ties (a plane of multiples of the sampling interval, where remainders are equal), images down to 1x1."""
    rng = np.random.default_rng(interval * 10 + rotations)
    tables = [random_table(field, layout, interval, rotations).entries]
    if not to_pixels:
        tables.append(rng.standard_normal(tables[0].shape).astype(np.float32))
    for height, width in ((1, 1), (2, 5), (23, 31)):
        planes = rng.integers(0, 256, (3, height, width), dtype=np.uint8)
        planes[1] &= np.uint8(256 - (1 << interval))
        for entries in tables:
            args = (planes, entries, field, layout, interval, rotations, authors_order, to_pixels, channels_last)
            fast, general = cpu_kernel.ensemble(*args), cpu_kernel.ensemble(*args, specialised=False)
            assert fast.dtype == general.dtype and np.array_equal(fast, general)
        if layout.count == 1:  # IM-LUT's refiner: the sums onto a float image, rounded half up, in the same pass
            base = rng.random(planes.shape, dtype=np.float32) * np.float32(1.2) - np.float32(0.1)
            step = np.float32(0.125 / (16 * 127))
            sums = cpu_kernel.ensemble(planes, tables[0], field, layout, interval, rotations, authors_order)[:, 0]
            level = np.clip((base + sums.astype(np.float32) * step) * np.float32(255), 0, 255)
            expected = np.floor(level + np.float32(0.5)).astype(np.uint8).transpose(1, 2, 0)
            for specialised in (True, False):
                onto = cpu_kernel.ensemble(planes, tables[0], field, layout, interval, rotations, authors_order,
                                           specialised=specialised, onto=(base, step))
                assert np.array_equal(onto, expected)


@pytest.mark.parametrize("rotations,equivariant", [(4, True), (1, False)])
def test_channel_maps_turn_with_the_image_under_the_rotation_ensemble(rotations, equivariant):
    """Channels are not permuted by a rotation (they are weights, not patch positions): with the ensemble the maps of
    a rotated image are the rotated maps; without it they are not."""
    table = random_table(receptive_field("S"), OutputLayout.channels(3), rotations=rotations)
    image = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (1, 1, 8, 11), dtype=np.uint8))
    maps = apply_table(table, image)
    for k in (1, 2, 3):
        turned = apply_table(table, torch.rot90(image, k, (2, 3)).contiguous())
        assert torch.equal(turned, torch.rot90(maps, k, (3, 4))) == equivariant


def test_torch_first_entry_point_gives_the_numpy_adapters_pixels():
    table = LUTTable.srlut("S", 3, 4, random_table(receptive_field("S"), OutputLayout.patch(3)).entries)
    images = np.random.default_rng(4).integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    for backend in ("torch",) + (("numba",) if cpu_kernel.available() else ()):
        pixels = apply_table(table, batch, to_pixels=True, backend=backend)
        expected = np.stack([upscale(table, image, backend=backend) for image in images])
        assert pixels.dtype == torch.uint8 and np.array_equal(pixels.permute(0, 2, 3, 1).numpy(), expected)
    floats = upscale_batch(table, batch.float() / 255)
    assert torch.equal((floats * 255).round().to(torch.uint8), apply_table(table, batch, to_pixels=True))


def test_entry_point_refuses_what_it_cannot_run():
    table = random_table(receptive_field("S"), OutputLayout.channels(2))
    with pytest.raises(LUTError, match="integer pixels"):
        apply_table(table, torch.zeros(1, 1, 4, 4))
    with pytest.raises(LUTError, match="to_pixels rounds SR patches"):
        apply_table(table, torch.zeros(1, 1, 4, 4, dtype=torch.uint8), to_pixels=True)
    with pytest.raises(LUTError, match=r"\[B, C, H, W\]"):
        apply_table(table, torch.zeros(4, 4, dtype=torch.uint8))
    with pytest.raises(LUTError, match="patch outputs"):
        upscale(table, np.zeros((4, 4, 3), np.uint8))


@needs_numba
@pytest.mark.parametrize("layout", [OutputLayout.channels(3), OutputLayout.patch(2)], ids=["channels", "patch"])
@pytest.mark.parametrize("rotations", [1, 4])
def test_fused_table_gradient_equals_autograd(layout, rotations):
    table = random_table(DIAGONAL, layout, interval=5, rotations=rotations)
    values = torch.from_numpy(np.random.default_rng(5).integers(0, 256, (2, 2, 6, 7), dtype=np.uint8))
    weights = torch.randn(2, 2, *layout.output_shape(1, 6, 7)[1:], generator=torch.Generator().manual_seed(0))
    grads, outs = [], []
    for fused in (True, False):
        layer = LUTLayer(table, fused=fused)
        out = layer(values)
        (out * weights).sum().backward()
        grads.append(layer.entries.grad)
        outs.append(out.detach())
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    assert torch.allclose(grads[0], grads[1], atol=1e-4)
    assert LUTLayer(table).table().entries.tobytes() == table.entries.tobytes()


@pytest.mark.parametrize("interval", [3, 4])
def test_transfer_samples_the_lattice_and_interpolates_affine_functions_exactly(interval):
    """An affine function of the field's pixels, transferred with rotations 1, is reproduced at every pixel
    value by the table (simplex interpolation is exact on affine functions), up to the int8 rounding of entries."""
    field = DIAGONAL
    slope = torch.tensor([0.3, -0.2, 0.25])
    table = transfer(lambda v: torch.stack([v @ slope - 0.1, 0.5 - v @ slope], -1), field,
                     OutputLayout.channels(2), interval, rotations=1)
    lattice = lattice_values(field, interval)
    assert lattice.shape == (levels(interval) ** 3, 3) and lattice.max() == 255 and lattice[1, 2] == 1 << interval
    expected_rows = torch.round(((lattice.float() / 255) @ slope - 0.1).clamp(-1, 1) * 127)
    assert torch.equal(torch.from_numpy(table.entries[:, 0]).float(), expected_rows)
    image = torch.from_numpy(np.random.default_rng(6).integers(0, 256, (1, 1, 9, 9), dtype=np.uint8))
    maps = apply_table(table, image).float() / ((1 << interval) * 127)
    padded = torch.nn.functional.pad(image.float(), (0, 2, 0, 1), mode="reflect") / 255
    exact = sum(w * padded[..., dy:dy + 9, dx:dx + 9] for w, (dy, dx) in zip(slope.tolist(), field.offsets)) - 0.1
    # the lattice's top level stands for 255 not 256, so cells below it are stretched: allow that and the rounding
    assert (maps[:, :, 0] - exact).abs().max() < 0.01


def test_field_patches_place_values_at_the_offsets():
    patches = field_patches(torch.tensor([[1.0, 2.0, 3.0]]), DIAGONAL)
    assert patches.shape == (1, 1, 2, 3) and patches[0, 0].tolist() == [[1, 0, 3], [0, 2, 0]]
    assert field_from_offsets([[0, 0], [0, 1], [1, 0], [1, 1]]).kind == "S"
    assert field_from_offsets(DIAGONAL.offsets, "diagonal") == DIAGONAL
    with pytest.raises(ValueError, match="include \\(0, 0\\)"):
        ReceptiveField("bad", ((0, 1), (1, 1)))


def test_version_2_file_holds_several_tables_and_arrays(tmp_path):
    weight = random_table(receptive_field("S"), OutputLayout.channels(2, ("nearest", "bilinear")))
    refiner = random_table(DIAGONAL, OutputLayout.channels(1), rotations=1, seed=1)
    grid = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 2, 2)
    model = LUTFile("imlut", {"weight": weight, "refiner": refiner}, {"scale": grid}, {"normalise": "softmax"},
                    {"iterations": 5}, {"scale": "weights per quantised scale"})
    path = model.save(tmp_path / "m.npz")
    loaded = load_file(path)
    assert loaded.family == "imlut" and loaded.config == {"normalise": "softmax"} and loaded.info == {"iterations": 5}
    assert set(loaded.tables) == {"weight", "refiner"} and np.array_equal(loaded.arrays["scale"], grid)
    assert loaded.tables["weight"].layout.names == ("nearest", "bilinear")
    assert loaded.tables["refiner"].field == DIAGONAL and loaded.tables["refiner"].rotations == 1
    assert loaded.nbytes == weight.nbytes + refiner.nbytes + grid.nbytes
    with pytest.raises(LUTError, match="holds a imlut model"):
        load_table(path)
    with np.load(path) as archive:
        meta = json.loads(str(archive["metadata"]))
        arrays = {k: archive[k] for k in archive.files if k != "metadata"}
    assert meta["arrays"]["scale"] == {"dtype": "float32", "shape": [3, 2, 2], "meaning": "weights per quantised scale"}
    del arrays["table.refiner"]
    np.savez(tmp_path / "bad.npz", metadata=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(LUTError, match=r"bad\.npz: metadata describes table 'refiner' but the file has no"):
        load_file(tmp_path / "bad.npz")
    meta["format_version"] = 3
    np.savez(tmp_path / "new.npz", metadata=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(LUTError, match="format version 3 is newer"):
        load_file(tmp_path / "new.npz")
