"""Command-line arguments and option files for ``hatast-train`` / ``hatast-test``.

Option files are BasicSR YAMLs. hatast reads them with three additions and one rule:

* ``${VAR}`` and ``${VAR:-default}`` in string values expand from the environment; ``--data-root DIR`` sets
  ``HATAST_DATA``, which the shipped options use for their dataset roots.
* ``--force_yml a:b=value`` overrides nested keys; values are parsed as YAML (never ``eval``-ed, unlike BasicSR).
* ``--auto_resume`` looks in this experiment's own ``training_states`` folder (BasicSR looks in ``./experiments``
  whatever the root), and ``torchrun``'s ``--local-rank`` is accepted as well as ``--local_rank``.
* Everything is checked before any work starts: a missing dataset folder or checkpoint, a misspelt network option
  or a scale that differs from the network's upscale stops the run with one line naming the file and the key.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import os
import random
import re
from collections import OrderedDict
from pathlib import Path

import torch
import yaml
from basicsr.utils.options import ordered_yaml
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY

from .utils.checkpoint import check_fit, load_state_dict_preferring

DATA_ENV = "HATAST_DATA"
_ENV_PATTERN = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


class OptionsError(ValueError):
    """An option file that cannot be run, with the file and key in the message."""


def build_parser(is_train: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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


def load_option_file(path: str | os.PathLike) -> OrderedDict:
    """Read a YAML option file; a missing file or a syntax error becomes one :class:`OptionsError` line."""
    path = Path(path)
    if not path.is_file():
        raise OptionsError(f"option file {path} does not exist")
    try:
        with open(path) as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise OptionsError(f"{path}: YAML syntax error{where}: {problem}") from None
    if not isinstance(opt, dict):
        raise OptionsError(f"{path}: expected a mapping of options at the top level")
    return opt


def apply_overrides(opt: dict, entries: list[str]) -> None:
    """Apply ``a:b:c=value`` overrides; the value is parsed as YAML. Creating new leaf keys is allowed."""
    for entry in entries:
        if "=" not in entry:
            raise OptionsError(f"--force_yml {entry!r}: expected KEY:KEY=VALUE")
        keys, value = entry.split("=", 1)
        *parents, leaf = [k.strip() for k in keys.split(":")]
        node = opt
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise OptionsError(f"--force_yml {entry!r}: '{key}' is not a section of the options")
            node = node[key]
        node[leaf] = yaml.safe_load(value)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _registered(registry, name: str, what: str, where: str):
    try:
        return registry.get(name)
    except KeyError:
        raise OptionsError(f"{where}: unknown {what} '{name}'{_suggest(name, registry._obj_map)}") from None


def check_network_options(net_opt: dict, where: str) -> torch.nn.Module:
    """Check a ``network_*`` section against its architecture and build it on the meta device (no memory, no
    weights) so constructor errors surface here. Returns that meta-device network."""
    if not isinstance(net_opt, dict) or "type" not in net_opt:
        raise OptionsError(f"{where}: needs a 'type'")
    arch = _registered(ARCH_REGISTRY, net_opt["type"], "architecture", f"{where}:type")
    kwargs = {k: v for k, v in net_opt.items() if k != "type"}
    params = inspect.signature(arch).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                raise OptionsError(f"{where}: {net_opt['type']} has no option '{key}'{_suggest(key, params)}")
    try:
        with torch.device("meta"):
            return arch(**kwargs)
    except (ValueError, TypeError) as err:
        raise OptionsError(f"{where}: {err}") from None


def _check_path(path, where: str, kind: str = "folder") -> None:
    if path is None:
        return
    p = Path(os.path.expanduser(str(path)))
    ok = p.is_dir() if kind == "folder" else p.is_file()
    if not ok:
        raise OptionsError(f"{where}: {kind} {p} does not exist")


def validate_options(opt: dict, is_train: bool, source: str) -> None:
    """Check an option dict before any work starts; raise :class:`OptionsError` naming ``source`` and the key."""
    for key in ("name", "model_type", "network_g", "datasets", "scale"):
        if key not in opt:
            raise OptionsError(f"{source}: missing top-level option '{key}'")
    _registered(MODEL_REGISTRY, opt["model_type"], "model_type", f"{source}: model_type")
    scale = opt["scale"]
    if not isinstance(scale, int) or scale < 1:
        raise OptionsError(f"{source}: scale must be a positive integer, got {scale!r}")
    net = check_network_options(opt["network_g"], f"{source}: network_g")
    upscale = getattr(net, "upscale", None)
    if upscale is not None and upscale != scale:
        raise OptionsError(f"{source}: scale is {scale} but network_g upscales by {upscale} (network_g:upscale)")

    datasets = opt["datasets"]
    if not isinstance(datasets, dict) or not datasets:
        raise OptionsError(f"{source}: datasets must list at least one dataset")
    if is_train and "train" not in datasets:
        raise OptionsError(f"{source}: datasets needs a 'train' entry for training")
    for phase, dopt in datasets.items():
        where = f"{source}: datasets:{phase}"
        if phase.split("_")[0] not in ("train", "val", "test"):
            raise OptionsError(f"{where}: phase names must start with train, val or test")
        if not isinstance(dopt, dict) or "type" not in dopt:
            raise OptionsError(f"{where}: needs a 'type'")
        _registered(DATASET_REGISTRY, dopt["type"], "dataset type", f"{where}:type")
        for key in ("dataroot_gt", "dataroot_lq"):
            _check_path(dopt.get(key), f"{where}:{key}")
        _check_path(dopt.get("meta_info_file"), f"{where}:meta_info_file", "file")
        if phase == "train":
            for key in ("batch_size_per_gpu", "num_worker_per_gpu"):
                if key not in dopt:
                    raise OptionsError(f"{where}: missing '{key}'")

    path = opt.get("path") or {}
    for key, value in path.items():
        if value is not None and (key.startswith("pretrain_network") or key == "resume_state"):
            _check_path(value, f"{source}: path:{key}", "file")
    if path.get("pretrain_network_g") and not path.get("resume_state"):
        # Read the weights now so a checkpoint that does not fit fails before any work starts.
        state, _ = load_state_dict_preferring(path["pretrain_network_g"], path.get("param_key_g", "params"))
        check_fit(net, state, path.get("strict_load_g", True), source=str(path["pretrain_network_g"]))
    if is_train:
        train = opt.get("train")
        if not isinstance(train, dict) or "total_iter" not in train or "optim_g" not in train:
            raise OptionsError(f"{source}: a 'train' section with total_iter and optim_g is required")
        if opt.get("val") is not None and "val_freq" not in opt["val"]:
            raise OptionsError(f"{source}: val needs a val_freq when training (or remove the val section)")
    tile = opt.get("tile")
    if tile is not None and (not isinstance(tile, dict) or int(tile.get("tile_size", 0)) <= 0):
        raise OptionsError(f"{source}: tile needs a positive tile_size (and optionally tile_pad)")


def read_options(args: argparse.Namespace, is_train: bool) -> OrderedDict:
    """Load, expand, override and validate the option file named by ``args``."""
    if args.data_root:
        os.environ[DATA_ENV] = os.path.abspath(args.data_root)
    opt = load_option_file(args.opt)
    if args.force_yml:
        apply_overrides(opt, args.force_yml)
    opt = expand_env(opt)
    validate_options(opt, is_train, str(args.opt))
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
        dopt["scale"] = opt["scale"]
        for key in ("dataroot_gt", "dataroot_lq"):
            if dopt.get(key) is not None:
                dopt[key] = os.path.expanduser(dopt[key])
    opt.setdefault("path", OrderedDict())
    for key, value in list(opt["path"].items()):
        if value is not None and (key.startswith("pretrain_network") or key == "resume_state"):
            opt["path"][key] = os.path.expanduser(value)
    if not is_train:
        opt.setdefault("val", OrderedDict(save_img=True))
    if "val" in opt:
        opt["val"].setdefault("suffix", None)
        opt["val"].setdefault("save_img", False)
    if is_train:
        exp = os.path.join(root, "experiments", opt["name"])
        opt["path"].update(experiments_root=exp, models=os.path.join(exp, "models"), log=exp,
                           training_states=os.path.join(exp, "training_states"),
                           visualization=os.path.join(exp, "visualization"))
        logger = opt.setdefault("logger", OrderedDict())
        logger.setdefault("print_freq", 100)
        logger.setdefault("save_checkpoint_freq", 5000)
        if "debug" in opt["name"]:
            if "val" in opt:
                opt["val"]["val_freq"] = 8
            logger["print_freq"] = 1
            logger["save_checkpoint_freq"] = 8
    else:
        results = os.path.join(root, "results", opt["name"])
        opt["path"].update(results_root=results, log=results, visualization=os.path.join(results, "visualization"))
    return opt
