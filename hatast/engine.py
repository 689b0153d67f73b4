"""Training and testing pipelines: BasicSR's components, driven by hatast's own loop.

The loop follows BasicSR's ``train_pipeline`` step for step (same datasets, samplers, models, logger, validation
hooks), with the defects users hit fixed here instead of in site-packages:

* resume states are loaded on the CPU with ``weights_only`` (BasicSR maps them to CUDA and fails without a GPU);
* ``--auto_resume`` searches this experiment's ``training_states`` folder under the chosen root and picks the newest
  state whose network file exists (BasicSR searches ``./experiments``);
* distributed runs initialise NCCL on GPUs and gloo on CPUs (BasicSR divides by the GPU count and crashes);
* outputs go to ``experiments/`` and ``results/`` under the working directory, wherever hatast is installed.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.utils import (
    AvgTimer,
    MessageLogger,
    get_env_info,
    get_root_logger,
    get_time_str,
    init_tb_logger,
    make_exp_dirs,
    set_random_seed,
)
from basicsr.utils.dist_util import get_dist_info
from basicsr.utils.options import dict2str

from . import models  # noqa: F401  (registers hatast's architectures, datasets and models with BasicSR)
from .options import OptionsError, build_parser, finalize_options, read_options, read_training_state
from .utils.checkpoint import CheckpointError
from .utils.errors import HatastError, command
from .utils.files import remove_stale_temporaries, write_bytes_atomic


def init_distributed(launcher: str, opt: dict) -> tuple[int, int]:
    """Join the process group started by ``torchrun`` (``--launcher pytorch``) or slurm; returns (rank, world)."""
    if launcher == "none":
        return 0, 1
    check_launcher_environment(launcher)
    if launcher == "slurm":
        _slurm_environment(opt.get("dist_params", {}).get("port"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return get_dist_info()


def check_launcher_environment(launcher: str) -> None:
    """The variables a process group is started from (torchrun sets them; slurm's are translated first)."""
    if launcher == "slurm":
        missing = [var for var in ("SLURM_NODELIST", "SLURM_NTASKS", "SLURM_PROCID") if var not in os.environ]
        if missing:
            raise OptionsError(f"--launcher slurm: environment variable {missing[0]} is not set; start with srun")
        return
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise OptionsError(f"--launcher {launcher}: environment variable {var} is not set; start with torchrun")


def _slurm_environment(port) -> None:
    import subprocess

    nodes = subprocess.getoutput(f"scontrol show hostname {os.environ['SLURM_NODELIST']} | head -n1")
    gpus = max(torch.cuda.device_count(), 1)
    os.environ.setdefault("MASTER_PORT", str(port or 29500))
    os.environ["MASTER_ADDR"] = nodes
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["LOCAL_RANK"] = str(int(os.environ["SLURM_PROCID"]) % gpus)


def find_resume_state(opt: dict) -> str | None:
    """The state to resume from: ``path:resume_state`` if set, else (with ``--auto_resume``) the newest
    ``<iter>.state`` in this experiment's folder whose ``net_g_<iter>.pth`` exists too."""
    if opt["path"].get("resume_state"):
        return opt["path"]["resume_state"]
    if not opt["auto_resume"]:
        return None
    states_dir = Path(opt["path"]["training_states"])
    if not states_dir.is_dir():
        return None
    iters = sorted((int(p.stem) for p in states_dir.glob("*.state") if p.stem.isdigit()), reverse=True)
    for it in iters:
        if (Path(opt["path"]["models"]) / f"net_g_{it}.pth").is_file():
            return str(states_dir / f"{it}.state")
    return None


def load_resume_state(opt: dict, path: str) -> dict:
    """Read a training state on the CPU and point the networks at the matching weights files (this experiment's
    ``net_<label>_<iter>.pth``, which must exist: a state of another experiment is refused here, not after the
    folders and logs are made)."""
    state = read_training_state(path)
    opt["path"]["resume_state"] = path
    for key in [k for k in opt if k.startswith("network_")]:
        label = key.removeprefix("network_")
        weights = os.path.join(opt["path"]["models"], f"net_{label}_{state['iter']}.pth")
        if not os.path.isfile(weights):
            raise CheckpointError(f"path:resume_state: {path} is the state of iteration {state['iter']}, and this "
                                  f"experiment ({opt['name']}) has no {weights} to resume with (a state resumes the "
                                  "experiment that saved it)")
        opt["path"][f"pretrain_{key}"] = weights
        opt["path"][f"param_key_{label}"] = "params"
        opt["path"].setdefault(f"strict_load_{label}", True)
    return state


def remove_interrupted_writes(opt: dict) -> None:
    """Delete temporary files that a killed run left mid-write (see :func:`~hatast.utils.files.atomic_write`)."""
    for folder in (opt["path"]["models"], opt["path"]["training_states"]):
        remove_stale_temporaries(folder)


def copy_option_file(src: str, experiments_root: str) -> None:
    """Keep the option file with the run, headed by the command that started it."""
    dst = Path(experiments_root) / Path(src).name
    header = f"# GENERATE TIME: {time.asctime()}\n# CMD:\n# {' '.join(sys.argv)}\n\n"
    write_bytes_atomic(dst, (header + Path(src).read_text()).encode())


def _build_dataset(dopt: dict, phase: str):
    try:
        return build_dataset(dopt)
    except (OSError, ValueError, KeyError) as err:
        raise OptionsError(f"datasets:{phase} ({dopt.get('name')}): {err}") from None


def _loaders(opt: dict, logger: logging.Logger):
    train_loader = sampler = None
    val_loaders = []
    total_iters = int(opt["train"]["total_iter"])
    total_epochs = 0
    for phase, dopt in opt["datasets"].items():
        dataset = _build_dataset(dopt, phase)
        if phase == "train":
            ratio = dopt.get("dataset_enlarge_ratio", 1)
            sampler = EnlargedSampler(dataset, opt["world_size"], opt["rank"], ratio)
            train_loader = build_dataloader(dataset, dopt, num_gpu=opt["num_gpu"], dist=opt["dist"],
                                            sampler=sampler, seed=opt["manual_seed"])
            samples = math.ceil(len(dataset) * ratio / opt["world_size"])
            if samples < dopt["batch_size_per_gpu"]:  # --check says so too (data.checks.batch_problem)
                raise OptionsError(f"datasets:{phase}: {len(dataset)} image(s) x dataset_enlarge_ratio {ratio} make "
                                   f"{samples} sample(s) per process, fewer than one batch (batch_size_per_gpu "
                                   f"{dopt['batch_size_per_gpu']}): training would never start")
            per_epoch = math.ceil(len(dataset) * ratio / (dopt["batch_size_per_gpu"] * opt["world_size"]))
            total_epochs = math.ceil(total_iters / per_epoch)
            logger.info(f"Training set {dopt['name']}: {len(dataset)} images, enlarge ratio {ratio}, "
                        f"batch {dopt['batch_size_per_gpu']} x {opt['world_size']} process(es), "
                        f"{per_epoch} iterations per epoch, {total_epochs} epochs for {total_iters} iterations.")
        else:
            val_loaders.append(build_dataloader(dataset, dopt, num_gpu=opt["num_gpu"], dist=opt["dist"],
                                                sampler=None, seed=opt["manual_seed"]))
            logger.info(f"Validation set {dopt['name']}: {len(dataset)} images.")
    return train_loader, sampler, val_loaders, total_epochs, total_iters


class CheckOnly(Exception):
    """``--check``: the options and data are fine; stop before any work."""


def _prepare(argv: list[str] | None, is_train: bool):
    args = build_parser(is_train).parse_args(argv)
    opt = read_options(args, is_train)
    if args.check:  # what the run checks next too: its output folders (not made), the state it would resume
        try:
            if args.launcher != "none":
                check_launcher_environment(args.launcher)
            checked = finalize_options(copy.deepcopy(opt), args, is_train, os.getcwd(), 0, 1)
            resume = find_resume_state(checked) if is_train else None
            if resume:
                load_resume_state(checked, resume)
        except HatastError as err:
            raise OptionsError(*(f"{args.opt}: {line}" for line in err.lines)) from None
        raise CheckOnly(f"options OK: {args.opt}")
    rank, world = init_distributed(args.launcher, opt)
    opt = finalize_options(opt, args, is_train, os.getcwd(), rank, world)
    set_random_seed(opt["manual_seed"] + rank)
    return args, opt


def train(argv: list[str] | None = None) -> dict:
    """Run a training job. Returns the option dict it ran with."""
    args, opt = _prepare(argv, is_train=True)
    resume_path = find_resume_state(opt)
    resume_state = load_resume_state(opt, resume_path) if resume_path else None
    if resume_state is None:
        make_exp_dirs(opt)
    elif opt["rank"] == 0:
        remove_interrupted_writes(opt)
    if opt["rank"] == 0:
        os.makedirs(opt["path"]["experiments_root"], exist_ok=True)
        copy_option_file(args.opt, opt["path"]["experiments_root"])
    if opt["dist"]:
        dist.barrier()  # folders exist before any rank writes logs

    log_file = os.path.join(opt["path"]["log"], f"train_{opt['name']}_{get_time_str()}.log")
    logger = get_root_logger(logger_name="basicsr", log_level=logging.INFO, log_file=log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    tb_logger = None
    if opt["logger"].get("use_tb_logger") and "debug" not in opt["name"] and opt["rank"] == 0:
        tb_logger = init_tb_logger(log_dir=os.path.join(opt["root_path"], "tb_logger", opt["name"]))

    train_loader, sampler, val_loaders, total_epochs, total_iters = _loaders(opt, logger)
    model = build_model(opt)
    start_epoch = current_iter = 0
    if resume_state is not None:
        model.resume_training(resume_state)
        start_epoch, current_iter = resume_state["epoch"], resume_state["iter"]
        logger.info(f"Resuming training from epoch {start_epoch}, iteration {current_iter} ({resume_path}).")

    msg_logger = MessageLogger(opt, current_iter, tb_logger)
    if opt["datasets"]["train"].get("prefetch_mode") == "cuda":
        prefetcher = CUDAPrefetcher(train_loader, opt)
    else:
        prefetcher = CPUPrefetcher(train_loader)

    save_freq = int(opt["logger"]["save_checkpoint_freq"])
    print_freq = int(opt["logger"]["print_freq"])
    val_freq = int(opt["val"]["val_freq"]) if opt.get("val") else 0
    data_timer, iter_timer = AvgTimer(), AvgTimer()
    start_time = time.time()
    logger.info(f"Start training from epoch {start_epoch}, iteration {current_iter}.")
    epoch = start_epoch
    while current_iter < total_iters:
        sampler.set_epoch(epoch)
        prefetcher.reset()
        batch = prefetcher.next()
        if batch is None:  # an epoch without a batch would repeat forever
            raise OptionsError(f"datasets:train: epoch {epoch} gave no batch (too few samples for "
                               f"batch_size_per_gpu {opt['datasets']['train']['batch_size_per_gpu']})")
        while batch is not None and current_iter < total_iters:
            data_timer.record()
            current_iter += 1
            model.update_learning_rate(current_iter, warmup_iter=opt["train"].get("warmup_iter", -1))
            model.feed_data(batch)
            model.optimize_parameters(current_iter)
            iter_timer.record()
            if current_iter == 1:
                msg_logger.reset_start_time()
            if current_iter % print_freq == 0:
                log_vars = {"epoch": epoch, "iter": current_iter, "lrs": model.get_current_learning_rate(),
                            "time": iter_timer.get_avg_time(), "data_time": data_timer.get_avg_time()}
                log_vars.update(model.get_current_log())
                msg_logger(log_vars)
            if current_iter % save_freq == 0:
                logger.info("Saving models and training states.")
                model.save(epoch, current_iter)
            if val_freq and current_iter % val_freq == 0:
                for loader in val_loaders:
                    model.validation(loader, current_iter, tb_logger, opt["val"]["save_img"])
            data_timer.start()
            iter_timer.start()
            batch = prefetcher.next()
        epoch += 1

    logger.info(f"End of training. Time consumed: {datetime.timedelta(seconds=int(time.time() - start_time))}")
    logger.info("Saving the latest model.")
    model.save(epoch=-1, current_iter=-1)
    if opt.get("val"):
        for loader in val_loaders:
            model.validation(loader, current_iter, tb_logger, opt["val"]["save_img"])
    if tb_logger:
        tb_logger.close()
    if opt["dist"]:
        dist.barrier()
        print(f"rank {opt['rank']}/{opt['world_size']}: finished at iteration {current_iter}", flush=True)
    return opt


def test(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run a test job. Returns ``{dataset: {metric: value}}``, logs it and writes it to ``metrics.json`` in the
    results folder."""
    args, opt = _prepare(argv, is_train=False)
    make_exp_dirs(opt)
    log_file = os.path.join(opt["path"]["log"], f"test_{opt['name']}_{get_time_str()}.log")
    logger = get_root_logger(logger_name="basicsr", log_level=logging.INFO, log_file=log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    loaders = []
    for phase, dopt in sorted(opt["datasets"].items()):
        dataset = _build_dataset(dopt, phase)
        loaders.append(build_dataloader(dataset, dopt, num_gpu=opt["num_gpu"], dist=opt["dist"], sampler=None,
                                        seed=opt["manual_seed"]))
        logger.info(f"Test set {dopt['name']}: {len(dataset)} images.")
    model = build_model(opt)
    results = {}
    for loader in loaders:
        name = loader.dataset.opt["name"]
        logger.info(f"Testing {name}...")
        model.validation(loader, current_iter=opt["name"], tb_logger=None, save_img=opt["val"]["save_img"])
        results[name] = {k: float(v) for k, v in getattr(model, "metric_results", {}).items()}
    if opt["rank"] == 0:
        metrics_file = Path(opt["path"]["results_root"]) / "metrics.json"
        write_bytes_atomic(metrics_file, (json.dumps(results, indent=2) + "\n").encode())
        logger.info(f"Metrics written to {metrics_file}")
    return results


def run_cli(func, argv: list[str] | None = None) -> int:
    """Run ``train``/``test`` as a command (:func:`hatast.utils.errors.command`): option, data and checkpoint
    errors print one line each and exit with 2, Ctrl-C one line (130), anything else its traceback (70)."""

    @command
    def run(argv: list[str] | None) -> int:
        try:
            func(argv)
        except CheckOnly as done:
            print(done)
        finally:
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
        return 0

    return run(argv)


def main_train() -> None:
    sys.exit(run_cli(train))


def main_test() -> None:
    sys.exit(run_cli(test))

