"""The degradation module, data preparation (benchmark sets, sub-images, LMDB) and the benchmark runner."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch
from conftest import DATA, TINY_HAT, file_hashes, need, sample_image, single_error_line, write_options
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hatast.archs.srlut_arch import SRLUTNet
from hatast.cli.bench import main as bench
from hatast.cli.prepare import main as prepare
from hatast.data.degradations import bicubic_downsample, contributions, imresize, lr_size, mod_crop
from hatast.data.prepare import prepare_training, write_lmdb
from hatast.eval.sets import BenchmarkError, find_pairs, parse_scale, scale_tag
from hatast.inference import geometric_ensemble

BENCHMARK = DATA / "benchmark"


def _need_benchmarks():
    return need(BENCHMARK / "Set14" / "HR", "Set5/Set14 benchmark images")


# --- degradations -------------------------------------------------------------------------------------------------


def test_prepared_set5_and_set14_equal_the_standard_lr_files(tmp_path, capsys):
    """MATLAB's uint8 imresize (rounded and clipped after each pass) reproduces the shipped LR in every value,
    including Set14's grey bridge and odd sizes (comic 361x250, zebra 391x586)."""
    _need_benchmarks()
    compared = 0
    for name in ("Set5", "Set14"):
        before = file_hashes(BENCHMARK / name)
        assert prepare(["benchmark", str(BENCHMARK / name / "HR"), "-o", str(tmp_path / name), "--no-progress"]) == 0
        assert file_hashes(BENCHMARK / name) == before  # inputs untouched
        for scale in (2, 3, 4):
            for pair in find_pairs(BENCHMARK, name, scale):
                made = tmp_path / name / "LR_bicubic" / f"X{scale}" / pair.lr.name
                made = cv2.imread(str(made), cv2.IMREAD_UNCHANGED)
                standard = cv2.imread(str(pair.lr), cv2.IMREAD_UNCHANGED)
                assert made.shape == standard.shape and np.array_equal(made, standard), (name, pair.name, scale)
                compared += 1
    assert compared == 57
    out = capsys.readouterr().out
    assert "20 file(s) written, 0 already there" in out and "56 file(s) written" in out  # HR copies + LR
    assert prepare(["benchmark", str(BENCHMARK / "Set5" / "HR"), "-o", str(tmp_path / "Set5"), "--no-progress"]) == 0
    assert "0 file(s) written, 20 already there" in capsys.readouterr().out  # resumes: nothing recomputed


def test_float_form_matches_basicsr_imresize():
    """Float images: no rounding, the same numbers as BasicSR's imresize (downscaling, upscaling, x2.5)."""
    from basicsr.utils.matlab_functions import imresize as basicsr_imresize


    image = sample_image("astronaut")[:61, :77].astype(np.float32) / 255
    for scale in (1 / 4, 1 / 3, 1 / 2.5, 2, 3, 2.5):
        ours, theirs = imresize(image, scale), basicsr_imresize(image, scale)
        assert ours.dtype == np.float32 and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=2e-6)


def test_uint8_form_rounds_after_each_pass_unlike_basicsr():
    from basicsr.utils.matlab_functions import imresize as basicsr_imresize


    hr = mod_crop(sample_image("coffee"), 4)
    once = (np.clip(basicsr_imresize(hr.astype(np.float64) / 255, 1 / 4), 0, 1) * 255).round().astype(np.uint8)
    exact = bicubic_downsample(hr, 4)
    gap = np.abs(exact.astype(int) - once)
    assert 0.05 < np.mean(gap > 0) < 0.2  # 10.6% of values here
    assert np.mean(gap[gap > 0] == 1) > 0.99  # by one level, bar a few clipped after the first pass


def test_non_integer_and_per_axis_scales():
    """HR crop rule: a multiple of p for s = p/q; LR size: that of the cropped HR divided by s (exact after the crop;
    imresize itself rounds up, as MATLAB does)."""
    hr = sample_image("astronaut")[:101, :77]
    assert mod_crop(hr, 2.5).shape[:2] == (100, 75)  # multiples of 5
    assert mod_crop(hr, 1.5).shape[:2] == (99, 75)  # multiples of 3
    assert mod_crop(hr, (1.5, 2)).shape[:2] == (99, 76)
    assert lr_size((100, 75), 2.5) == (40, 30)
    assert lr_size((101, 77), 4) == (25, 19)  # mod-crop first: floor(HR / s), the benchmark rule
    assert lr_size((101, 77), 2.5) == (40, 30) and lr_size((101, 77), (1.5, 2)) == (66, 38)
    assert imresize(hr, 1 / 4).shape[:2] == (26, 20)  # without the crop, MATLAB's ceil(size / s)
    with pytest.raises(ValueError, match="not a ratio of small integers"):
        lr_size((101, 77), 2.123)
    assert bicubic_downsample(mod_crop(hr, 2.5), 2.5).shape == (40, 30, 3)
    assert bicubic_downsample(mod_crop(hr, (1.5, 2)), (1.5, 2)).shape == (66, 38, 3)
    assert imresize(hr, size=(50, 40)).shape == (50, 40, 3)
    indices, weights = contributions(10, 4, 1 / 2.5)
    np.testing.assert_allclose(weights.sum(1), 1)
    assert indices.min() >= 0 and indices.max() < 10  # borders mirrored into the image
    with pytest.raises(ValueError, match="unknown resize kernel"):
        imresize(hr, 0.5, kernel="cubic")


def test_scale_tags_round_trip():
    for text, scale in (("4", 4.0), ("2.5", 2.5), ("1.5_2", (1.5, 2.0))):
        assert parse_scale(text) == scale and scale_tag(scale) == text
    with pytest.raises(ValueError, match="above 1"):
        parse_scale("0.5")


# --- data preparation ---------------------------------------------------------------------------------------------


def test_prepare_refuses_to_write_onto_its_inputs(tmp_path, capsys):
    hr = tmp_path / "set" / "HR"
    hr.mkdir(parents=True)
    cv2.imwrite(str(hr / "a.png"), sample_image()[:40, :40])
    (tmp_path / "set" / "LR_bicubic" / "X2").mkdir(parents=True)
    victim = tmp_path / "set" / "LR_bicubic" / "X2" / "ax2.png"
    victim.hardlink_to(hr / "a.png")  # the LR name is the input under another name
    before = file_hashes(tmp_path)
    assert prepare(["benchmark", str(hr), "-o", str(tmp_path / "set"), "--scales", "2", "--no-progress"]) == 2
    single_error_line(capsys.readouterr().err, "would overwrite the input")
    assert file_hashes(tmp_path) == before


def test_prepare_benchmark_names_two_inputs_with_one_stem(tmp_path, capsys):
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "a.png"), sample_image()[:40, :40])
    cv2.imwrite(str(hr / "a.jpg"), sample_image()[:40, :40])
    assert prepare(["benchmark", str(hr), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    single_error_line(capsys.readouterr().err, "would both be written as a.png")


def test_sub_images_pair_by_name_and_resume(tmp_path):
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    # 720 x 980: crops start at rows 0, 240 and columns 0, 240, 480 (the last 20 columns are too few for another)
    cv2.imwrite(str(hr_dir / "0001.png"), np.tile(sample_image("astronaut"), (2, 2, 1))[:720, :980])
    report = prepare_training([hr_dir], tmp_path / "DF2K", "DF2K", [2, 4], progress=False)
    assert report.written == 6
    hr = sorted((tmp_path / "DF2K" / "DF2K_HR_sub").glob("*.png"))
    assert [p.name for p in hr] == [f"0001_s00{i}.png" for i in range(1, 7)]
    whole = bicubic_downsample(cv2.imread(str(hr_dir / "0001.png"))[:720, :980], 4)
    for scale in (2, 4):
        for path in hr:
            lr = cv2.imread(str(tmp_path / "DF2K" / f"DF2K_bicx{scale}_sub" / path.name))
            assert lr.shape == (480 // scale, 480 // scale, 3)
    second = cv2.imread(str(tmp_path / "DF2K" / "DF2K_bicx4_sub" / "0001_s002.png"))
    assert np.array_equal(second, whole[:120, 60:180])  # cut from the whole-image LR, not resized per crop
    assert {p.suffix for p in (tmp_path / "DF2K" / "DF2K_HR_sub").iterdir()} == {".png"}  # nothing else to pair
    assert prepare_training([hr_dir], tmp_path / "DF2K", "DF2K", [2, 4], progress=False).skipped == 1  # resumes


def test_lmdb_grows_its_map_and_trains_through_basicsr(tmp_path, monkeypatch):
    """A map far too small is grown, not an MDB_MAP_FULL crash; BasicSR's paired LMDB pipeline trains from it."""
    import lmdb

    photos = sorted(need(DATA / "train" / "BSDS400", "BSDS400").glob("*.jpg"))[:3]
    src = tmp_path / "src"
    src.mkdir()
    for photo in photos:
        (src / photo.name).symlink_to(photo)
    prepare_training([src], tmp_path / "data", "T", [2], crop=96, step=96, progress=False)
    paths = [write_lmdb(tmp_path / "data" / folder, map_size=1 << 15, progress=False)
             for folder in ("T_HR_sub", "T_bicx2_sub")]
    with lmdb.open(str(paths[0]), readonly=True, lock=False) as env:
        assert env.info()["map_size"] > 1 << 15
        count = env.stat()["entries"]
    meta = (paths[0] / "meta_info.txt").read_text().splitlines()
    assert len(meta) == count > 3 and meta[0] == f"{photos[0].stem}_s001.png (96,96,3) 1"
    assert not list(tmp_path.glob("data/*.tmp"))

    folders = {"train": tmp_path, "val_hr": tmp_path / "data" / "T_HR_sub", "val_lr": tmp_path / "data" / "T_bicx2_sub"}
    train = {"name": "lmdb_train", "type": "PairedImageDataset", "dataroot_gt": str(paths[0]),
             "dataroot_lq": str(paths[1]), "io_backend": {"type": "lmdb"}, "gt_size": 32, "use_hflip": True,
             "use_rot": True, "use_shuffle": True, "num_worker_per_gpu": 0, "batch_size_per_gpu": 2,
             "dataset_enlarge_ratio": 1, "prefetch_mode": None}
    opt = write_options(tmp_path / "o.yml", folders, total_iter=2, datasets={"train": train},
                        logger={"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False})
    monkeypatch.chdir(tmp_path)
    from hatast import engine

    assert engine.run_cli(engine.train, ["-opt", str(opt)]) == 0
    assert (tmp_path / "experiments" / "tiny_hat_test" / "models" / "net_g_2.pth").exists()


# --- benchmark runner ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_table(tmp_path):
    torch.manual_seed(0)
    return SRLUTNet("S", 4).to_table(4).save(tmp_path / "S_x4.npz")


def test_bench_writes_per_image_csv_summary_and_published_row(tmp_path, small_table, capsys):
    _need_benchmarks()
    out = tmp_path / "bench"
    code = bench(["-w", str(small_table), "--data", str(BENCHMARK), "--sets", "Set5", "--scale", "4", "-o", str(out),
                  "--threads", "1", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "SR-LUT-S" / "Set5_x4.csv")))
    assert [r["image"] for r in rows] == ["baby", "bird", "butterfly", "head", "woman"]
    bicubic = list(csv.DictReader(open(out / "bicubic" / "Set5_x4.csv")))
    assert abs(np.mean([float(r["psnr"]) for r in bicubic]) - 28.43) < 0.01
    summary = (out / "summary.md").read_text()
    assert summary in printed
    assert "| SR-LUT-S (published) | 29.82 |" in summary and "| bicubic | 28.43 / 0.81" in summary
    assert "SR-LUT, CVPR 2021" in summary

    # a rerun reads the CSV files instead of recomputing: a value planted there survives
    text = (out / "SR-LUT-S" / "Set5_x4.csv").read_text().replace(rows[0]["psnr"], "99.0000", 1)
    (out / "SR-LUT-S" / "Set5_x4.csv").write_text(text)
    assert bench(["-w", str(small_table), "--data", str(BENCHMARK), "--sets", "Set5", "--scale", "4", "-o",
                  str(out), "--threads", "1", "--no-progress"]) == 0
    assert "99.0000" in (out / "SR-LUT-S" / "Set5_x4.csv").read_text()


def test_bench_says_where_a_missing_set_was_looked_for(tmp_path, small_table, capsys):
    _need_benchmarks()
    code = bench(["-w", str(small_table), "--data", str(BENCHMARK), "--sets", "Set5", "Urban100", "--scale", "4",
                  "-o", str(tmp_path / "b"), "--threads", "1", "--no-progress"])
    assert code == 1  # Set5 evaluated, Urban100 reported
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "Urban100" in line)
    assert str(BENCHMARK / "Urban100" / "HR") in line and "hatast prepare benchmark" in line
    assert (tmp_path / "b" / "SR-LUT-S" / "Set5_x4.csv").exists()


def test_bench_of_a_network_counts_parameters_and_macs(tmp_path, capsys):
    from hatast.archs.hat_arch import HAT

    folder = tmp_path / "data" / "Tiny"
    (folder / "HR").mkdir(parents=True)
    hr = mod_crop(sample_image("coffee")[:48, :64], 2)
    cv2.imwrite(str(folder / "HR" / "cup.png"), hr)
    assert prepare(["benchmark", str(folder / "HR"), "-o", str(folder), "--scales", "2", "--no-progress"]) == 0
    net = HAT(**TINY_HAT)
    torch.save({"params_ema": net.state_dict()}, tmp_path / "tiny.pth")
    code = bench(["-w", str(tmp_path / "tiny.pth"), "--data", str(tmp_path / "data"), "--sets", "Tiny", "--scale", "2",
                  "-o", str(tmp_path / "b"), "--threads", "1", "--no-progress", "--self-ensemble"])
    assert code == 0
    summary = (tmp_path / "b" / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith("| HAT (custom size)+"))
    params = sum(p.numel() for p in net.parameters())
    assert f"{params / 1e3:.2f}K" in row and "x8 self-ensemble" in row
    assert "(published)" not in summary  # a custom HAT is not the paper's HAT; "Tiny" has no published bicubic


def test_geometric_ensemble_of_an_equivariant_map_is_the_map():
    x = torch.rand(1, 3, 5, 7)

    def upsample(t):
        return torch.nn.functional.interpolate(t, scale_factor=2, mode="nearest")

    torch.testing.assert_close(geometric_ensemble(upsample, x), upsample(x))


def test_figure_writes_labelled_crops_and_never_onto_an_input(tmp_path, small_table, capsys):
    from hatast.cli.figure import main as figure

    folder = tmp_path / "data" / "Tiny"
    (folder / "HR").mkdir(parents=True)
    cv2.imwrite(str(folder / "HR" / "cup.png"), mod_crop(sample_image("coffee")[:96, :128], 4))
    assert prepare(["benchmark", str(folder / "HR"), "-o", str(folder), "--scales", "4", "--no-progress"]) == 0
    common = ["--data", str(tmp_path / "data"), "--set", "Tiny", "--image", "cup", "--scale", "4",
              "--box", "8", "16", "32", "48", "-w", str(small_table), "--label", "random S"]
    assert figure([*common, "-o", str(tmp_path / "fig.png")]) == 0
    image = cv2.imread(str(tmp_path / "fig.png"))
    assert image.shape == (32 * 2 + 34, 3 * (48 * 2 + 4), 3)  # HR | bicubic | table, zoom 2, label strip
    before = file_hashes(folder)
    assert figure([*common, "-o", str(folder / "HR" / "cup.png")]) == 2
    single_error_line(capsys.readouterr().err, "would overwrite the input")
    assert file_hashes(folder) == before


def _sized_set(root, name: str, hr_size: tuple[int, int], lr_sizes: dict[str, tuple[int, int]], scale: int = 4):
    """A set of blank images: ``<root>/<name>/HR/<stem>.png`` of ``hr_size`` and its x``scale`` LR of the size given
    per stem (height, width)."""
    hr_dir, lr_dir = root / name / "HR", root / name / "LR_bicubic" / f"X{scale}"
    hr_dir.mkdir(parents=True, exist_ok=True)
    lr_dir.mkdir(parents=True, exist_ok=True)
    for stem, size in lr_sizes.items():
        cv2.imwrite(str(hr_dir / f"{stem}.png"), np.zeros((*hr_size, 3), np.uint8))
        cv2.imwrite(str(lr_dir / f"{stem}x{scale}.png"), np.zeros((*size, 3), np.uint8))
    return lr_dir


@pytest.mark.parametrize("lr_size_, words", [
    ((8, 6), "is 6x8 but HR a.png is 48x64: at scale 4 the LR must be 12x16 (these look like x8 data);"),
    ((32, 24), "is 24x32 but HR a.png is 48x64: at scale 4 the LR must be 12x16 (these look like x2 data);"),
    ((64, 48), "is 48x64 but HR a.png is 48x64: at scale 4 the LR must be 12x16 (the LR is too large for this "
               "scale);"),
    ((17, 12), "is 12x17 but HR a.png is 48x64: at scale 4 the LR must be 12x16 (the LR is too large for this "
               "scale);"),
    ((15, 12), "is 12x15 but HR a.png is 48x64: at scale 4 the LR must be 12x16;"),
])
def test_lr_of_the_wrong_size_is_refused_by_the_pairing(tmp_path, lr_size_, words):
    """HR/8 images in the X4 folder once gave exit 0 and a confident wrong PSNR (SR-LUT S on Set5: 10.6 dB); LR too
    small, too large or off by one pixel are all refused, on one line naming the LR file and the sizes."""
    lr_dir = _sized_set(tmp_path, "Tiny", (64, 48), {"a": lr_size_, "b": (16, 12)})
    with pytest.raises(BenchmarkError) as caught:
        find_pairs(tmp_path, "Tiny", 4)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"Tiny: LR {lr_dir / 'ax4.png'} ") and words in message, message
    assert "1 of 2 pairs are wrong" in message and "--scales 4 --overwrite" in message


def test_bench_refuses_a_set_whose_lr_is_another_scales(tmp_path, small_table, capsys):
    lr_dir = _sized_set(tmp_path / "data", "Tiny", (64, 48), {"a": (8, 6)})
    _sized_set(tmp_path / "data", "Good", (64, 48), {"a": (16, 12)})
    common = ["-w", str(small_table), "--data", str(tmp_path / "data"), "--scale", "4", "--threads", "1",
              "--no-progress"]
    assert bench([*common, "--sets", "Tiny", "-o", str(tmp_path / "b")]) == 2
    single_error_line(capsys.readouterr().err, f"error: Tiny: LR {lr_dir / 'ax4.png'} is 6x8 but HR a.png is 48x64",
                      "(these look like x8 data)")
    assert not (tmp_path / "b").exists()  # nothing scored, no summary
    assert bench([*common, "--sets", "Tiny", "Good", "-o", str(tmp_path / "c")]) == 1  # the usable set runs
    captured = capsys.readouterr()
    single_error_line(captured.err, f"Tiny: LR {lr_dir / 'ax4.png'}", prefix="skipped: ")
    assert "| bicubic | " in (tmp_path / "c" / "summary.md").read_text() and "Tiny" not in captured.out.split("\n")[0]


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.integers(8, 64), width=st.integers(8, 64), scale=st.integers(2, 4),
       dh=st.one_of(st.just(0), st.integers(-3, 3)), dw=st.one_of(st.just(0), st.integers(-3, 3)))
def test_pairing_accepts_exactly_the_rules_lr_size(tmp_path, height, width, scale, dh, dw):
    """One rule for the benchmark pairing and the option-file data checks: LR = floor(HR / s) per axis."""
    from hatast.data.checks import check_paired

    expected = lr_size((height, width), scale)
    assert expected == (height // scale, width // scale)  # integer scales: the benchmark convention
    lr = (expected[0] + dh, expected[1] + dw)
    assume(min(lr) >= 1)
    root = tmp_path / f"{height}_{width}_{scale}_{dh}_{dw}"
    lr_dir = _sized_set(root, "Tiny", (height, width), {"a": lr}, scale)
    try:
        find_pairs(root, "Tiny", scale)
        accepted = True
    except BenchmarkError as err:
        accepted = False
        assert str(err).startswith(f"Tiny: LR {lr_dir / f'ax{scale}.png'} is {lr[1]}x{lr[0]} but HR a.png is "
                                   f"{width}x{height}: at scale {scale} the LR must be {expected[1]}x{expected[0]}")
    assert accepted == (lr == expected)
    dopt = {"dataroot_gt": str(root / "Tiny" / "HR"), "dataroot_lq": str(lr_dir), "filename_tmpl": f"{{}}x{scale}",
            "io_backend": {"type": "disk"}}
    assert (check_paired(dopt, scale, "test") is None) == accepted


def test_the_standard_lr_files_satisfy_the_rule():
    """Every shipped MATLAB-bicubic LR file of Set5 and Set14 at x2, x3 and x4 is the rule's size."""
    from hatast.data.checks import image_size

    _need_benchmarks()
    checked = 0
    for name in ("Set5", "Set14"):
        for scale in (2, 3, 4):
            for pair in find_pairs(BENCHMARK, name, scale):
                assert image_size(pair.lr) == lr_size(image_size(pair.hr), scale), (name, scale, pair.name)
                checked += 1
    assert checked == 57


@pytest.mark.parametrize("name", ["BSD100", "Urban100", "Manga109"])
def test_user_supplied_sets_pair_on_the_standard_layout(tmp_path, name):
    """Sets that are not in ../shared are tested on their layout: prepared from HR, paired, and an incomplete
    LR folder named with its count and first missing file."""
    hr = tmp_path / "in"
    hr.mkdir()
    for i, stem in enumerate(("img_001", "img_002")):
        cv2.imwrite(str(hr / f"{stem}.png"), sample_image("coffee")[i * 10:i * 10 + 61, :83])
    assert prepare(["benchmark", str(hr), "-o", str(tmp_path / name), "--scales", "3", "--no-progress"]) == 0
    pairs = find_pairs(tmp_path, name, 3)
    assert [(p.name, p.lr.name) for p in pairs] == [("img_001", "img_001x3.png"), ("img_002", "img_002x3.png")]
    assert cv2.imread(str(pairs[0].lr)).shape == (20, 27, 3)  # mod-crop 60x81, then / 3
    pairs[1].lr.unlink()
    with pytest.raises(ValueError, match=r"1 of 2 LR images missing at x3, first .*img_002x3.png"):
        find_pairs(tmp_path, name, 3)


def test_an_image_that_does_not_fit_is_retried_in_tiles():
    from hatast.eval.runner import AUTO_TILES, upscale_fitting
    from hatast.inference import UpscaleError

    calls = []

    def upscaler(lr, tile, tile_pad, device, self_ensemble=False):
        calls.append(tile)
        if tile == 0 or tile > 128:
            raise UpscaleError("out of memory")
        return f"done in tiles of {tile}"

    assert upscale_fitting(upscaler, None, AUTO_TILES, 32, "cpu") == "done in tiles of 128"
    assert calls == [0, 256, 128]
    with pytest.raises(UpscaleError):
        upscale_fitting(upscaler, None, (0, 256), 32, "cpu")


def test_two_files_of_one_kind_get_their_own_rows(tmp_path, small_table, capsys):
    _need_benchmarks()
    other = tmp_path / "S_x4_other.npz"
    other.write_bytes(small_table.read_bytes())
    assert bench(["-w", str(small_table), "-w", str(other), "--data", str(BENCHMARK), "--sets", "Set5", "--scale", "4",
                  "-o", str(tmp_path / "b"), "--threads", "1", "--no-progress"]) == 0
    summary = (tmp_path / "b" / "summary.md").read_text()
    assert "| SR-LUT-S (S_x4) |" in summary and "| SR-LUT-S (S_x4_other) |" in summary
    assert summary.count("| SR-LUT-S (published) |") == 2
    assert (tmp_path / "b" / "SR-LUT-S_S_x4_other" / "Set5_x4.csv").exists()


def test_two_checkpoints_with_one_file_name_are_told_apart_and_never_mixed(tmp_path, capsys):
    """Two runs' ``net_g_latest.pth`` get rows named by their folders; a results folder made from another file is
    refused, not resumed (its numbers would be the other file's)."""
    from hatast.archs.hat_arch import HAT
    from hatast.eval.runner import distinct_labels

    folder = tmp_path / "data" / "Tiny"
    (folder / "HR").mkdir(parents=True)
    cv2.imwrite(str(folder / "HR" / "cup.png"), mod_crop(sample_image("coffee")[:32, :48], 2))
    assert prepare(["benchmark", str(folder / "HR"), "-o", str(folder), "--scales", "2", "--no-progress"]) == 0
    files = []
    for run in ("run_a", "run_b"):
        (tmp_path / run / "models").mkdir(parents=True)
        torch.manual_seed(len(files))
        files.append(tmp_path / run / "models" / "net_g_latest.pth")
        torch.save({"params_ema": HAT(**TINY_HAT).state_dict()}, files[-1])
    assert distinct_labels(files) == ["run_a/models/net_g_latest", "run_b/models/net_g_latest"]
    common = ["--data", str(tmp_path / "data"), "--sets", "Tiny", "--scale", "2", "--threads", "1", "--no-progress"]
    assert bench([*common, "-w", str(files[0]), "-w", str(files[1]), "-o", str(tmp_path / "b")]) == 0
    summary = (tmp_path / "b" / "summary.md").read_text()
    rows = [line for line in summary.splitlines() if line.startswith("| HAT (custom size) (run_")]
    assert len(rows) == 2 and rows[0].split("|")[2] != rows[1].split("|")[2]  # different weights, different scores
    capsys.readouterr()
    torch.save({"params_ema": HAT(**TINY_HAT).state_dict()}, files[0])  # the file changes under the same name
    assert bench([*common, "-w", str(files[0]), "-w", str(files[1]), "-o", str(tmp_path / "b")]) == 2
    single_error_line(capsys.readouterr().err, "holds results of")


def test_published_rows_come_with_their_source():
    from hatast.eval.published import published

    row = published("SR-LUT-S", 4)
    assert row.psnr == {"Set5": 29.82, "Set14": 27.01} and "CVPR 2021" in row.paper and row.source
    assert published("HAT", 4).ssim["Urban100"] == 0.8368
    assert published("HAT", 3) is None and published("no such model", 4) is None
    usrnet = published("USRNet", 4, protocol="usrnet_table1")
    assert len(usrnet.psnr["BSD68"]) == 12 and abs(sum(usrnet.psnr["BSD68"]) / 12 - 25.96) < 0.005  # paper: 25.96
    assert published("USRNet", 4) is None  # not a bicubic-protocol row
