"""Command-line arguments and option files for ``hatast-train`` / ``hatast-test``.

Option files are BasicSR YAMLs. hatast reads them with three additions and one rule:

* ``${VAR}`` and ``${VAR:-default}`` in string values expand from the environment; ``--data-root DIR`` sets
  ``HATAST_DATA``, which the shipped options use for their dataset roots.
* The file and every ``--force_yml a:b=value`` override are read by one plain-data YAML reader
  (:mod:`hatast.utils.yaml_io`): no tag can build an object or run code (BasicSR's loader runs
  ``!!python/object/apply``), aliases are limited, a key given twice is an error, text must be UTF-8.
* ``--auto_resume`` looks in this experiment's own ``training_states`` folder (BasicSR looks in ``./experiments``
  whatever the root), and ``torchrun``'s ``--local-rank`` is accepted as well as ``--local_rank``.
* Everything is checked before any work starts, against the schema of :mod:`hatast.options.schema` (types,
  ranges, enums, unknown keys, for the file and for every ``--force_yml`` override), then against the file system
  and the data (:mod:`hatast.data.checks`): each problem is one line naming the file and the key path.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from ..archs.detect import describe
from ..data.checks import DATASET_CHECKS, batch_problem, smallest_image
from ..utils.arguments import OneLineParser
from ..utils.checkpoint import CheckpointError, check_fit, load_file, read_state_dict
from ..utils.errors import HatastError
from ..utils.paths import OutputFolder
from ..utils.yaml_io import YAMLFileError, load_yaml, read_yaml_file
from .schema import check_schema, did_you_mean

DATA_ENV = "HATAST_DATA"
_ENV_PATTERN = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
_LINE_BREAKS = {ord(c): c.encode("unicode_escape").decode() for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


class OptionsError(HatastError):
    """An option file that cannot be run: one line per problem, each naming the file and the key. A line break
    inside a problem (a key, a value or a file name that holds one, ``\\n`` or any other that ``str.splitlines``
    breaks at) is shown escaped, so a problem stays one line."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(line.translate(_LINE_BREAKS) for line in lines))


def build_parser(is_train: bool) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hatast-train" if is_train else "hatast-test",
        description=("Train" if is_train else "Test") + " a model from a BasicSR option file.")
    parser.add_argument("-opt", "--opt", required=True, help="path to the option YAML file")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm"], default="none",
                        help="distributed launcher ('pytorch' under torchrun)")
    parser.add_argument("--auto_resume", "--auto-resume", action="store_true",
                        help="resume from the newest training state of this experiment, if any")
    parser.add_argument("--debug", action="store_true", help="debug mode (frequent logs/checkpoints)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None,
                        help="ignored: the rank comes from torchrun's LOCAL_RANK variable")
    parser.add_argument("--force_yml", nargs="+", default=None, metavar="KEY:KEY=VALUE",
                        help="override options, e.g. train:total_iter=1000")
    parser.add_argument("--data-root", default=None,
                        help=f"dataset root for options that use ${{{DATA_ENV}}} (default: the {DATA_ENV} variable)")
    parser.add_argument("--check", action="store_true",
                        help="check the option file and its data, print 'options OK' and stop (nothing is written)")
    return parser


def expand_env(value, where: tuple[str, ...] = ()):
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a nested option structure (``where``: the key
    path of ``value``, named by the error for an unset variable)."""
    if isinstance(value, str):
        def substitute(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise OptionsError(f"{':'.join(where) + ': ' if where else ''}environment variable {name} is not set "
                               f"(used as ${{{name}}})")
        return _ENV_PATTERN.sub(substitute, value)
    if isinstance(value, dict):
        return type(value)((k, expand_env(v, (*where, str(k)))) for k, v in value.items())
    if isinstance(value, list):
        return [expand_env(v, (*where, str(i))) for i, v in enumerate(value)]
    return value


def load_option_file(path: str | os.PathLike) -> dict:
    """Read a YAML option file as plain data (:func:`hatast.utils.yaml_io.read_yaml_file`: no tags that build
    objects or run code, limited aliases, no duplicate keys, UTF-8); every problem is one :class:`OptionsError`
    line."""
    path = Path(path)
    try:
        opt = read_yaml_file(path, what="option file")
    except YAMLFileError as err:
        raise OptionsError(str(err)) from None
    if not isinstance(opt, dict):
        raise OptionsError(f"{path}: expected a mapping of options at the top level")
    return opt


def apply_overrides(opt: dict, entries: list[str]) -> dict[tuple[str, ...], str]:
    """Apply ``a:b:c=value`` overrides; the value is parsed as YAML.

    A new key may be created (it is then checked like any other, so a misspelt ``train:total_itr`` is refused).
    Returns ``{key path: entry}`` so that problems can name the override that caused them.
    """
    applied = {}
    for entry in entries:
        if "=" not in entry:
            raise OptionsError(f"--force_yml {entry!r}: expected KEY:KEY=VALUE")
        keys, value = entry.split("=", 1)
        *parents, leaf = [k.strip() for k in keys.split(":")]
        node = opt
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise OptionsError(f"--force_yml {entry!r}: '{key}' is not a section of the options"
                                   f"{did_you_mean(key, node) if isinstance(node, dict) else ''}")
            node = node[key]
        try:
            node[leaf] = load_yaml(value, f"--force_yml {entry}")
        except YAMLFileError as err:
            raise OptionsError(str(err)) from None
        applied[tuple([*parents, leaf])] = entry
    return applied


def check_network_options(net_opt: dict, where: str) -> torch.nn.Module:
    """Build a (schema-checked) ``network_*`` section on the meta device (no memory, no weights), so constructor
    errors surface before any work starts. Returns that meta-device network."""
    arch = ARCH_REGISTRY.get(net_opt["type"])
    kwargs = {k: v for k, v in net_opt.items() if k != "type"}
    try:
        # the meta device's own notes ("initializing zero-element tensors is a no-op") are not the user's business
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return arch(**kwargs)
    except Exception as err:  # noqa: BLE001  (any constructor failure is an option problem)
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise OptionsError(f"{where}: {net_opt['type']} cannot be built with these options ({text})") from None


def network_input_problem(net: torch.nn.Module, model, opt: dict, source: str) -> str | None:
    """Run the (meta-device) ``network_g`` on the input each dataset gives it: 3 channels, or 1 with ``color: y``;
    a training crop of ``gt_size / scale``, else 16 x 16. On the meta device only shapes are computed (no memory,
    no arithmetic), so a network that cannot take its data (``in_chans: 1`` for colour images, a layer left with no
    channels) fails here with the error the first iteration would give. Networks that need more than the image
    and the scale (USRNet's kernel), and code that cannot run on the meta device (tables loaded on the CPU), are
    left to the run. Returns the problem, or None."""
    if model is None or "kernel" in model.extra_inputs:
        return None
    scale = opt["scale"]
    tried = set()
    for phase, dopt in opt["datasets"].items():
        channels = 1 if dopt.get("color") == "y" else 3
        train = phase.split("_")[0] == "train" and dopt.get("gt_size")
        size = max(int(dopt["gt_size"]) // math.ceil(scale), 1) if train else 16
        if (channels, size) in tried:
            continue
        tried.add((channels, size))
        image = torch.zeros(1, channels, size, size, device="meta")
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                output = net(image, scale) if "scale" in model.extra_inputs else net(image)
        except Exception as err:  # noqa: BLE001  (whatever the forward raises is the run's first error)
            if isinstance(err, NotImplementedError) or "meta" in str(err).lower():
                return None  # the network does not run on the meta device: the run will tell
            return (f"{source}: network_g: {type(net).__name__} cannot run on the {channels}-channel {size}x{size} "
                    f"{'training crop' if train else 'image'} datasets:{phase} gives it ({_first_line(err)})")
        output = output[0] if isinstance(output, (tuple, list)) else output
        if isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[1] != channels:
            return (f"{source}: network_g: {type(net).__name__} makes {output.shape[1]}-channel images, but the "
                    f"ground truth of datasets:{phase} has {channels} channel(s)")
    return None


#: The smallest side (after ``crop_border``) each metric gives a number for: SSIM's 11 x 11 Gaussian window leaves
#: nothing of a smaller image (NaN), NIQE works on 96 x 96 blocks (and fails without one).
METRIC_MIN_SIZE = {"calculate_psnr": 1, "calculate_ssim": 11, "calculate_niqe": 96}


def metric_size_problems(opt: dict, source: str) -> list[str]:
    """Validation metrics against the smallest ground-truth image of each validation/test set (as compared: cropped
    to a multiple of the scale), by :data:`METRIC_MIN_SIZE`: a ``crop_border`` that leaves too little gives NaN or
    fails at the first validation."""
    metrics = (opt.get("val") or {}).get("metrics") or {}
    if not metrics:
        return []
    lines = []
    for phase, dopt in opt["datasets"].items():
        if phase.split("_")[0] == "train":
            continue
        smallest = smallest_image(dopt)
        if smallest is None:
            continue
        name, (height, width) = smallest
        step = math.ceil(opt["scale"]) if opt["scale"] == int(opt["scale"]) else 1
        side = min(height - height % step, width - width % step)
        for key, metric in metrics.items():
            border = int(metric.get("crop_border", 0) or 0)
            need = METRIC_MIN_SIZE.get(metric["type"], 1)
            if side - 2 * border < need:
                left = max(side - 2 * border, 0)
                lines.append(f"{source}: val:metrics:{key}:crop_border: {border} leaves {left}x{left} pixels of "
                             f"datasets:{phase}'s smallest image {name} ({width}x{height}), and {metric['type']} "
                             f"needs at least {need}x{need}: lower crop_border or use larger images")
        if lines:
            break
    return lines


def table_size_problem(net: torch.nn.Module, opt: dict, source: str) -> str | None:
    """The lookup table a trained SR-LUT or IM-Net is turned into at every checkpoint (``lut:interval`` /
    ``imlut:interval``, default 4): its lattice has ``levels(interval) ** n`` rows (``n`` pixels in the receptive
    field), and the transfer holds every row's inputs as int64 and as float (12 bytes a pixel); a table that cannot
    fit in this machine's memory would fail at the first checkpoint, after the training it was meant to keep."""
    from ..lut.fields import ReceptiveField
    from ..lut.lattice import levels

    key = {"SRLUTNet": "lut", "IMNet": "imlut"}.get(type(net).__name__)
    if key is None:
        return None
    interval = int((opt.get(key) or {}).get("interval", 4))
    pixels = max((m.field.size for m in net.modules() if isinstance(getattr(m, "field", None), ReceptiveField)),
                 default=0)
    rows = levels(interval) ** pixels
    need = rows * pixels * 12
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: nothing to compare with
        return None
    if need <= memory:
        return None
    return (f"{source}: {key}:interval: {interval} makes a table of {levels(interval)}^{pixels} = {rows:.3g} rows; "
            f"building it needs about {need / 1e9:.0f} GB of memory and this machine has {memory / 1e9:.0f} GB "
            "(the run would fail at its first checkpoint): use a larger interval (4 is the papers')")


def imlut_crop_problem(opt: dict, source: str) -> str | None:
    """IM-LUT training (``imlut: scales``): at each iteration the model crops the HR batch to a multiple of the
    scale's numerator (:func:`~hatast.data.degradations.mod_crop`, 37 pixels at x3.7); every scale of the grid must
    leave something of a ``gt_size`` crop, and be a ratio of small integers."""
    if opt["model_type"] != "IMLUTModel":
        return None
    import numpy as np

    from ..data.degradations import mod_crop
    from ..models.imlut_model import DEFAULT_SCALES

    scales = {**DEFAULT_SCALES, **((opt.get("imlut") or {}).get("scales") or {})}
    low, high, step = float(scales["range"][0]), float(scales["range"][1]), float(scales["step"])
    count = int(round((high - low) / step)) + 1
    for phase, dopt in opt["datasets"].items():
        if phase.split("_")[0] != "train" or not dopt.get("gt_size"):
            continue
        crop = np.zeros((int(dopt["gt_size"]), 1), np.uint8)
        for index in range(min(count, 100_000)):
            scale = round(low + index * step, 6)  # the grid of IMLUTModel's draw_scale
            try:
                kept = mod_crop(crop, scale).shape[0]
            except HatastError as err:
                return f"{source}: imlut:scales: the scale {scale:g} of the grid cannot be trained ({err})"
            if kept == 0:
                return (f"{source}: datasets:{phase}:gt_size: {dopt['gt_size']} is too small for the scale {scale:g} "
                        "of imlut:scales (the model crops the HR to a multiple of the scale's numerator p, for "
                        "scale = p / q: nothing is left)")
    return None


def loader_problem(dopt: dict, kind: str, where: str) -> str | None:
    """What PyTorch's ``DataLoader`` (as BasicSR's ``build_dataloader`` and hatast's engine set it up for the phase
    ``kind``) would refuse: persistent workers without workers (validation and test loaders have none), a CUDA
    prefetcher without a GPU."""
    if dopt.get("persistent_workers"):
        if kind != "train":
            return (f"{where}:persistent_workers: BasicSR loads {kind} data without worker processes, and PyTorch "
                    "keeps workers alive only if there are some; remove it")
        if not dopt.get("num_worker_per_gpu"):
            return (f"{where}:persistent_workers: needs num_worker_per_gpu > 0 (PyTorch keeps workers alive only if "
                    "there are some)")
    if kind == "train" and dopt.get("prefetch_mode") == "cuda" and not torch.cuda.is_available():
        return f"{where}:prefetch_mode: 'cuda' needs a CUDA GPU, and torch sees none here; use cpu or ~"
    return None


def optimizer_problem(train: dict, device: str, source: str) -> str | None:
    """Build the optimizer and the scheduler of a (schema-checked) ``train`` section as BasicSR's model does (the same
    classes, :data:`~hatast.options.schema.OPTIMIZERS` and :data:`~hatast.options.schema.SCHEDULERS`), on one
    parameter on ``device``, and take one optimizer step: options the classes refuse (``capturable`` on a CPU,
    restarts without as many weights) fail here, not at the first iteration."""
    from .schema import OPTIMIZERS, SCHEDULERS

    settings = dict(train["optim_g"])
    kind = settings.pop("type")
    param = torch.nn.Parameter(torch.zeros(1, device=device))
    try:
        optimizer = OPTIMIZERS[kind]([param], **settings)
        param.grad = torch.zeros_like(param)
        optimizer.step()
    except Exception as err:  # noqa: BLE001  (whatever the optimizer refuses is an option problem)
        return f"{source}: train:optim_g: {kind} cannot run with these options on {device} ({_first_line(err)})"
    settings = dict(train["scheduler"])
    kind = settings.pop("type")
    try:
        SCHEDULERS[kind](optimizer, **settings)
    except Exception as err:  # noqa: BLE001
        return f"{source}: train:scheduler: {kind} cannot be built with these options ({_first_line(err)})"
    return None


def read_training_state(path: str | os.PathLike) -> dict:
    """A training state (``<iter>.state``) read on the CPU, or :class:`CheckpointError`: the one reader of
    ``path:resume_state`` for ``--check`` and the run."""
    state = load_file(path)
    if not isinstance(state, dict) or "iter" not in state:
        raise CheckpointError(f"{path} is not a training state (no 'iter')")
    return state


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _missing(path, where: str, kind: str = "folder") -> str | None:
    """The problem with a path option that names no existing ``kind``, or None."""
    if path is None:
        return None
    p = Path(os.path.expanduser(str(path)))
    return None if (p.is_dir() if kind == "folder" else p.is_file()) else f"{where}: {kind} {p} does not exist"


def _render(problems, source: str, overrides: dict[tuple[str, ...], str]) -> list[str]:
    lines = []
    for problem in problems:
        line = problem.render(source)
        about = problem.origin or problem.path
        for keys, entry in overrides.items():
            if about[:len(keys)] == keys:
                line += f" (set by --force_yml {entry})"
                break
        lines.append(line)
    return lines


def validate_options(opt: dict, is_train: bool, source: str, overrides: dict | None = None) -> None:
    """Check an option dict before any work starts; raise :class:`OptionsError` with one line per problem, each
    naming ``source`` and the key path. Values BasicSR would have meant (numbers written as ``5e-4``) are
    converted in place."""
    problems = check_schema(opt, is_train)
    if problems:
        raise OptionsError(*_render(problems, source, overrides or {}))
    scale = opt["scale"]
    net = check_network_options(opt["network_g"], f"{source}: network_g")
    try:
        model = describe(net)
    except ValueError:  # an architecture from BasicSR itself: no descriptor, no scale to compare
        model = None
    upscale = None if model is None else model.scale
    if model is not None and opt.get("tile") and model.tiling == "none":
        raise OptionsError(f"{source}: tile: {model.name} cannot be tiled (each output pixel depends on the whole "
                           "image); remove the tile section")
    if scale != int(scale) and upscale != "any":
        raise OptionsError(f"{source}: scale is {scale}; only arbitrary-scale models (IM-LUT) take a non-integer "
                           "scale (scale)")
    if isinstance(upscale, tuple):  # the network takes the scale as an input (USRNet)
        if scale not in upscale:
            raise OptionsError(f"{source}: scale is {scale}; {type(net).__name__} is tested at scales "
                               f"{', '.join(map(str, upscale))} (scale)")
    elif upscale not in (None, "any") and upscale != scale:
        raise OptionsError(f"{source}: scale is {scale} but network_g upscales by {upscale} (network_g:upscale)")

    lines = []
    gpus = opt.get("num_gpu", "auto")
    if gpus not in ("auto", 0) and not torch.cuda.is_available():
        lines.append(f"{source}: num_gpu: {gpus}, but torch sees no CUDA GPU here (BasicSR would put the model on "
                     "'cuda'); use num_gpu: auto or 0")
    for phase, dopt in opt["datasets"].items():
        where = f"{source}: datasets:{phase}"
        kind = phase.split("_")[0]
        if kind == "train" and dopt.get("gt_size") and dopt["gt_size"] % scale:
            lines.append(f"{where}:gt_size: {dopt['gt_size']} is not a multiple of the scale {scale}")
        lines += [_missing(dopt.get(key), f"{where}:{key}") for key in ("dataroot_gt", "dataroot_lq")]
        lines.append(_missing(dopt.get("meta_info_file"), f"{where}:meta_info_file", "file"))
        lines.append(loader_problem(dopt, kind, where))
    path = opt.get("path") or {}
    lines += [_missing(value, f"{source}: path:{key}", "file") for key, value in path.items()
              if key.startswith("pretrain_network") or key == "resume_state"]
    train = opt.get("train") or {}
    if is_train:
        if not train.get("pixel_opt") and not train.get("perceptual_opt"):
            lines.append(f"{source}: train: needs a loss (pixel_opt or perceptual_opt)")
        if opt.get("val") is not None and "val_freq" not in opt["val"]:
            lines.append(f"{source}: val: needs a val_freq when training (or remove the val section)")
        device = "cuda" if gpus != 0 and torch.cuda.is_available() else "cpu"
        lines.append(optimizer_problem(train, device, source))
    lines = [line for line in lines if line]
    if lines:
        raise OptionsError(*lines)
    key = "resume_state"
    try:
        if path.get("resume_state"):
            read_training_state(path["resume_state"])  # a state the run can resume from, read as the run reads it
        elif path.get("pretrain_network_g"):
            # Read the weights now so a checkpoint that does not fit fails before any work starts.
            key = "pretrain_network_g"
            state, _ = read_state_dict(path["pretrain_network_g"], path.get("param_key_g"))
            check_fit(net, state, path.get("strict_load_g", True), source=str(path["pretrain_network_g"]))
    except CheckpointError as err:
        raise OptionsError(*(f"{source}: path:{key}: {line}" for line in err.lines)) from None
    for phase, dopt in opt["datasets"].items():
        if is_train and phase.split("_")[0] == "train" and dopt.get("batch_size_per_gpu"):
            problem = batch_problem(dopt, int(os.environ.get("WORLD_SIZE") or 1))
            if problem:
                lines.append(f"{source}: datasets:{phase}: {problem}")
        checker = DATASET_CHECKS.get(dopt["type"])
        try:
            problem = checker(dopt, scale, phase.split("_")[0]) if checker else None
        except (OSError, ValueError) as err:  # an unreadable meta_info file, a folder that vanished
            problem = f"the data could not be checked ({type(err).__name__}: {err})"
        if problem:
            lines.append(f"{source}: datasets:{phase}: {problem}")
    if not lines:
        lines.append(network_input_problem(net, model, opt, source))
        lines += metric_size_problems(opt, source)
        if is_train:
            lines += [table_size_problem(net, opt, source), imlut_crop_problem(opt, source)]
    lines = [line for line in lines if line]
    if lines:
        raise OptionsError(*lines)


def read_options(args: argparse.Namespace, is_train: bool) -> OrderedDict:
    """Load, expand, override and validate the option file named by ``args``."""
    if args.data_root:
        os.environ[DATA_ENV] = os.path.abspath(args.data_root)
    opt = load_option_file(args.opt)
    overrides = apply_overrides(opt, args.force_yml) if args.force_yml else {}
    try:
        opt = expand_env(opt)
    except OptionsError as err:
        raise OptionsError(f"{args.opt}: {err}") from None
    validate_options(opt, is_train, str(args.opt), overrides)
    return opt


def finalize_options(opt: dict, args: argparse.Namespace, is_train: bool, root: str, rank: int,
                     world_size: int) -> dict:
    """Fill what BasicSR's components read: run flags, seeds, per-dataset phase/scale, output folders."""
    opt["dist"] = args.launcher != "none"
    opt["rank"], opt["world_size"] = rank, world_size
    opt["is_train"] = is_train
    opt["auto_resume"] = args.auto_resume
    opt["root_path"] = root
    if args.debug and not opt["name"].startswith("debug"):
        opt["name"] = "debug_" + opt["name"]
    if opt.get("num_gpu", "auto") == "auto":
        opt["num_gpu"] = torch.cuda.device_count()
    if opt.get("manual_seed") is None:
        opt["manual_seed"] = random.randint(1, 10000)
    for phase, dopt in opt["datasets"].items():
        dopt["phase"] = phase.split("_")[0]
        # BasicSR's datasets index with it (a test pair's HR is cropped to LR x scale): a non-integer scale (IM-LUT)
        # goes up to the next integer, which leaves an exact pair (HR = LR x scale) whole
        dopt["scale"] = math.ceil(opt["scale"])
        for key in ("dataroot_gt", "dataroot_lq"):
            if dopt.get(key) is not None:
                dopt[key] = os.path.expanduser(dopt[key])
    if opt.get("path") is None:
        opt["path"] = OrderedDict()
    # One rule for the checkpoint entry (utils.checkpoint.select_entry): None unless the options name one
    # (BasicSR would otherwise ask for 'params' while `hatast upscale` reads 'params_ema').
    opt["path"].setdefault("param_key_g", None)
    for key, value in list(opt["path"].items()):
        if value is not None and (key.startswith("pretrain_network") or key == "resume_state"):
            opt["path"][key] = os.path.expanduser(value)
    if not is_train and opt.get("val") is None:
        opt["val"] = OrderedDict(save_img=True)
    if opt.get("val") is None:
        opt.pop("val", None)
    if "val" in opt:
        opt["val"].setdefault("suffix", None)
        opt["val"].setdefault("save_img", False)
    # the run's folders: inside <root>/experiments or <root>/results whatever the name says (the path policy)
    base = os.path.join(root, "experiments" if is_train else "results")
    if os.path.lexists(base) and not os.path.isdir(base):
        raise OptionsError(f"{base} is a file, not a folder, and the run writes into {base}{os.sep}{opt['name']}: "
                           "move the file or run from another folder")
    if is_train:
        exp = str(OutputFolder(os.path.join(root, "experiments"), "name").folder(opt["name"], what="name"))
        opt["path"].update(experiments_root=exp, models=os.path.join(exp, "models"), log=exp,
                           training_states=os.path.join(exp, "training_states"),
                           visualization=os.path.join(exp, "visualization"))
        if opt.get("logger") is None:
            opt["logger"] = OrderedDict()
        logger = opt["logger"]
        logger.setdefault("print_freq", 100)
        logger.setdefault("save_checkpoint_freq", 5000)
        if "debug" in opt["name"]:
            if "val" in opt:
                opt["val"]["val_freq"] = 8
            logger["print_freq"] = 1
            logger["save_checkpoint_freq"] = 8
    else:
        results = str(OutputFolder(os.path.join(root, "results"), "name").folder(opt["name"], what="name"))
        opt["path"].update(results_root=results, log=results, visualization=os.path.join(results, "visualization"))
    return opt
