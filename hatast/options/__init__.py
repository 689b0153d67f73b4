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
from collections import OrderedDict
from pathlib import Path

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from ..archs.detect import describe
from ..data.checks import DATASET_CHECKS, batch_problem
from ..utils.arguments import OneLineParser
from ..utils.checkpoint import check_fit, read_state_dict
from ..utils.errors import HatastError
from ..utils.paths import OutputFolder
from ..utils.yaml_io import YAMLFileError, load_yaml, read_yaml_file
from .schema import check_schema, did_you_mean

DATA_ENV = "HATAST_DATA"
_ENV_PATTERN = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


class OptionsError(HatastError):
    """An option file that cannot be run: one line per problem, each naming the file and the key."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))


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


def expand_env(value):
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string of a nested option structure."""
    if isinstance(value, str):
        def substitute(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise OptionsError(f"environment variable {name} is not set (used as ${{{name}}})")
        return _ENV_PATTERN.sub(substitute, value)
    if isinstance(value, dict):
        return type(value)((k, expand_env(v)) for k, v in value.items())
    if isinstance(value, list):
        return [expand_env(v) for v in value]
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
        with torch.device("meta"):
            return arch(**kwargs)
    except Exception as err:  # noqa: BLE001  (any constructor failure is an option problem)
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise OptionsError(f"{where}: {net_opt['type']} cannot be built with these options ({text})") from None


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
    for phase, dopt in opt["datasets"].items():
        where = f"{source}: datasets:{phase}"
        if phase.split("_")[0] == "train" and dopt.get("gt_size") and dopt["gt_size"] % scale:
            lines.append(f"{where}:gt_size: {dopt['gt_size']} is not a multiple of the scale {scale}")
        lines += [_missing(dopt.get(key), f"{where}:{key}") for key in ("dataroot_gt", "dataroot_lq")]
        lines.append(_missing(dopt.get("meta_info_file"), f"{where}:meta_info_file", "file"))
    path = opt.get("path") or {}
    lines += [_missing(value, f"{source}: path:{key}", "file") for key, value in path.items()
              if key.startswith("pretrain_network") or key == "resume_state"]
    train = opt.get("train") or {}
    if is_train:
        if not train.get("pixel_opt") and not train.get("perceptual_opt"):
            lines.append(f"{source}: train: needs a loss (pixel_opt or perceptual_opt)")
        if opt.get("val") is not None and "val_freq" not in opt["val"]:
            lines.append(f"{source}: val: needs a val_freq when training (or remove the val section)")
    lines = [line for line in lines if line]
    if lines:
        raise OptionsError(*lines)
    if path.get("pretrain_network_g") and not path.get("resume_state"):
        # Read the weights now so a checkpoint that does not fit fails before any work starts.
        state, _ = read_state_dict(path["pretrain_network_g"], path.get("param_key_g"))
        check_fit(net, state, path.get("strict_load_g", True), source=str(path["pretrain_network_g"]))
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
    if lines:
        raise OptionsError(*lines)


def read_options(args: argparse.Namespace, is_train: bool) -> OrderedDict:
    """Load, expand, override and validate the option file named by ``args``."""
    if args.data_root:
        os.environ[DATA_ENV] = os.path.abspath(args.data_root)
    opt = load_option_file(args.opt)
    overrides = apply_overrides(opt, args.force_yml) if args.force_yml else {}
    opt = expand_env(opt)
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
