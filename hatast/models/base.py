"""The BasicSR model base every hatast model derives from.

It changes how BasicSR's ``SRModel`` loads, saves and places networks, and nothing about what a training step
does:

* weights are read through :mod:`hatast.utils.checkpoint` (``weights_only``, any wrapping, clear key errors);
* networks, training states and validation images are written atomically, so a run killed mid-save resumes from
  the last good state and leaves no truncated file under a final name;
* ``DistributedDataParallel`` works on CPU (gloo), where BasicSR passes a CUDA device id;
* ``test`` optionally runs tiled (``tile: {tile_size, tile_pad}`` in the options).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping

import basicsr.models.sr_model
import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from torch import Tensor, nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from ..archs.descriptor import ModelDescriptor
from ..archs.detect import describe
from ..utils.checkpoint import load_file, load_into, read_state_dict, save_atomic, select_entry
from ..utils.errors import UsageError
from ..utils.image import imwrite_atomic
from ..utils.tiling import tiled_forward

# BasicSR's validation loop saves result images with basicsr.utils.imwrite (a plain cv2.imwrite); route it through
# hatast's atomic writer so a killed test never leaves a truncated PNG under its final name.
basicsr.models.sr_model.imwrite = imwrite_atomic


class HatastSRModel(SRModel):
    """``SRModel`` with safe checkpoint I/O, CPU-capable DDP and tiled testing. Not registered: subclass it."""

    def describe(self, net: nn.Module) -> ModelDescriptor:
        """What running ``net`` takes (scale, size multiple, tiling), from the architecture's descriptor."""
        return describe(self.get_bare_model(net))

    def model_to_device(self, net: nn.Module) -> nn.Module:
        net = net.to(self.device)
        if self.opt["dist"]:
            device_ids = [torch.cuda.current_device()] if self.device.type == "cuda" else None
            return DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get("find_unused_parameters", False))
        if self.opt["num_gpu"] > 1:
            return DataParallel(net)
        return net

    def load_network(self, net: nn.Module, load_path: str, strict: bool = True, param_key: str | None = None):
        """Load ``load_path`` into ``net`` by the one entry rule of :func:`~hatast.utils.checkpoint.select_entry`.

        ``param_key`` is ``path:param_key_g`` (None when the options do not name one). BasicSR asks for
        ``'params_ema'`` when it fills the EMA copy during training: that copy reads ``params_ema`` when the file has
        it (a resumed run continues both), and otherwise the entry the network itself read. The log line names the
        entry loaded.
        """
        if net is getattr(self, "net_g_ema", None):
            obj = load_file(load_path)
            has_ema = isinstance(obj, Mapping) and isinstance(obj.get("params_ema"), Mapping)
            state, used = select_entry(obj, "params_ema" if has_ema else self.opt["path"].get("param_key_g"),
                                       str(load_path))
        else:
            state, used = read_state_dict(load_path, param_key)
        get_root_logger().info(load_into(self.get_bare_model(net), state, strict, source=f"{load_path} [{used}]"))

    @master_only
    def save_network(self, net, net_label: str, current_iter: int, param_key="params") -> None:
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError("save_network: one param_key per network")
        payload = {
            key: {k.removeprefix("module."): v.detach().cpu() for k, v in self.get_bare_model(n).state_dict().items()}
            for n, key in zip(nets, keys)
        }
        name = "latest" if current_iter == -1 else current_iter
        save_atomic(payload, os.path.join(self.opt["path"]["models"], f"{net_label}_{name}.pth"))

    @master_only
    def save_training_state(self, epoch: int, current_iter: int) -> None:
        if current_iter == -1:
            return
        state = {
            "epoch": epoch,
            "iter": current_iter,
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
        }
        save_atomic(state, os.path.join(self.opt["path"]["training_states"], f"{current_iter}.state"))

    def resume_training(self, resume_state: dict) -> None:
        for kind, ours in (("optimizers", self.optimizers), ("schedulers", self.schedulers)):
            if len(resume_state[kind]) != len(ours):
                raise ValueError(f"the resume state has {len(resume_state[kind])} {kind}, this model {len(ours)}")
        super().resume_training(resume_state)

    def inference(self, net: nn.Module, lq: Tensor, extra: dict | None = None, scale: int | None = None) -> Tensor:
        """``lq`` (plus the network's ``extra`` inputs, by name) -> SR output at ``scale`` (default: the options'),
        tiled when the options ask for it (tiles on the descriptor's size multiple; a network whose descriptor says
        ``tiling: none`` is refused)."""
        forward = functools.partial(net, **extra) if extra else net
        tile = self.opt.get("tile")
        if not tile:
            return forward(lq)
        model = self.describe(net)
        if model.tiling == "none":
            raise UsageError(f"tile: {model.name} cannot be tiled (each output pixel depends on the whole image)")
        return tiled_forward(forward, lq, scale or self.opt["scale"], int(tile["tile_size"]),
                             int(tile.get("tile_pad", 32)), model.size_multiple)

    def test(self) -> None:
        self.output = self.evaluate_with(lambda net: self.inference(net, self.lq))

    def evaluate_with(self, forward: Callable[[nn.Module], Tensor]) -> Tensor:
        """``forward(net)`` on the EMA network when there is one, in eval mode without gradients, leaving the
        network's mode as it was."""
        net = self.net_g_ema if hasattr(self, "net_g_ema") else self.net_g
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                return forward(net)
        finally:
            net.train(was_training)

    def finish_step(self, total: Tensor, losses: dict) -> None:
        """The end of a training step: backward, optimizer step, the logged losses, the EMA update."""
        total.backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(losses)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)


class TableCheckpoints:
    """For models whose weights become look-up tables (SR-LUT, IM-LUT), put before :class:`HatastSRModel` in the
    bases: every checkpoint save also writes the tables of the current weights, ``models/net_g_<iter>.npz`` (and
    ``net_g_latest.npz`` for BasicSR's final save, with the last trained iteration recorded)."""

    _trained_iter: int = 0
    """The last optimised iteration (the subclass's training step sets it): BasicSR saves the final checkpoint as
    iteration -1."""

    def tables(self):
        """The tables of the current weights: a ``LUTTable`` or ``LUTFile`` with ``info`` to record."""
        raise NotImplementedError

    def save(self, epoch: int, current_iter: int) -> None:
        super().save(epoch, current_iter)
        if self.opt["rank"] == 0:
            tables = self.tables()
            tables.info["iteration"] = self._trained_iter if current_iter == -1 else current_iter
            name = "latest" if current_iter == -1 else current_iter
            tables.save(os.path.join(self.opt["path"]["models"], f"net_g_{name}.npz"))
