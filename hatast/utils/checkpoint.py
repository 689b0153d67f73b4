"""The one place hatast reads and writes weights.

* Reading never executes code from the file: ``torch.load(weights_only=True)`` (or safetensors), and a pickle that
  holds anything but tensors and plain containers is refused with a message that says so.
* Checkpoints in any of the usual wrappings load: BasicSR's ``{'params_ema': ..., 'params': ...}``, either key
  alone, ``{'state_dict': ...}``, or a bare state dict; a ``module.`` prefix (DataParallel) is stripped.
* Writing is atomic: a temporary file in the same folder, flushed to disk, then renamed over the target, so a
  killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import collections
import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with the reason in words."""


# BasicSR's training states hold the LR scheduler's milestones as a Counter: plain data, safe to allow.
torch.serialization.add_safe_globals([collections.Counter, collections.OrderedDict])


def load_file(path: str | os.PathLike) -> object:
    """Read a ``.pth``/``.pt`` (weights only) or ``.safetensors`` file onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file as load_safetensors
        except ImportError as err:
            raise CheckpointError(f"{path}: reading .safetensors needs the 'safetensors' package") from err
        return load_safetensors(str(path), device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects other than tensors and plain containers; hatast refuses to unpickle it "
            f"because that could run code from the file (weights_only=True). Detail: {str(err).splitlines()[0]}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({err.__class__.__name__}: {err})") \
            from err


def unwrap_state_dict(obj: object, param_key: str | None = None, source: str = "checkpoint") -> dict[str, Tensor]:
    """Pick the state dict out of a loaded checkpoint.

    Args:
        obj: what :func:`load_file` returned.
        param_key: the wrapper key to use (e.g. ``'params_ema'``); None takes ``params_ema``, then ``params``,
            ``state_dict``, ``model``, then the object itself.
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source} holds a {type(obj).__name__}, not a state dict")
    if param_key is not None:
        if param_key not in obj:
            found = ", ".join(k for k in obj if isinstance(obj.get(k), Mapping)) or "none"
            raise CheckpointError(f"{source} has no '{param_key}' entry (wrapper entries found: {found})")
        obj = obj[param_key]
    else:
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    state = {}
    for key, value in obj.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{source}: entry '{key}' is a {type(value).__name__}, not a tensor")
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state


def load_state_dict(path: str | os.PathLike, param_key: str | None = None) -> dict[str, Tensor]:
    """Read ``path`` and return its state dict (see :func:`unwrap_state_dict`)."""
    return unwrap_state_dict(load_file(path), param_key, source=str(path))


def load_state_dict_preferring(path: str | os.PathLike, param_key: str | None) -> tuple[dict[str, Tensor], str]:
    """BasicSR's rule: use ``param_key`` if the file has it, else whichever wrapper it has, else the bare dict.

    Returns the state dict and the entry used (``'<bare>'`` for an unwrapped file).
    """
    obj = load_file(path)
    if isinstance(obj, Mapping) and param_key in obj:
        return unwrap_state_dict(obj, param_key, str(path)), param_key
    used = next((k for k in WRAPPER_KEYS if isinstance(obj, Mapping) and isinstance(obj.get(k), Mapping)), "<bare>")
    return unwrap_state_dict(obj, None, str(path)), used


def load_weights(net: nn.Module, path: str | os.PathLike, param_key: str | None = None, strict: bool = True) -> str:
    """Load ``path`` into ``net`` (see :func:`load_into`). Returns a one-line summary for the log."""
    state = load_state_dict(path, param_key)
    return load_into(net, state, strict, source=str(path))


def load_into(net: nn.Module, state: Mapping[str, Tensor], strict: bool = True, source: str = "state dict") -> str:
    """Load a state dict into ``net``.

    ``strict=True``: any missing, unexpected or differently shaped key raises one :class:`CheckpointError` that
    counts and names them. ``strict=False`` (fine-tuning across scales, as BasicSR's ``strict_load_g: false``):
    those keys are skipped and named in the returned summary, which callers log.
    """
    own = net.state_dict()
    problems = check_fit(net, state, strict, source)
    usable = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    net.load_state_dict(usable, strict=False)
    summary = f"loaded {source} into {type(net).__name__}"
    if problems:
        summary += " (non-strict; skipped keys: " + "; ".join(problems) + ")"
    return summary


def check_fit(net: nn.Module, state: Mapping[str, Tensor], strict: bool = True, source: str = "state dict") -> list:
    """Compare ``state`` with ``net``'s own keys and shapes (works on meta-device networks).

    Raises :class:`CheckpointError` when ``strict`` and anything differs; returns the differences otherwise.
    """
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = [k for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if wrong_shape:
        shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong_shape]
        problems.append(f"{len(wrong_shape)} with another shape ({_first(shapes)})")
    if missing:
        problems.append(f"{len(missing)} missing ({_first(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_first(unexpected)})")
    if strict and problems:
        raise CheckpointError(f"{source} does not fit {type(net).__name__}: keys " + "; ".join(problems))
    return problems


def _first(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f", ... {len(items) - n} more" if len(items) > n else "")


def save_atomic(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` so that readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
