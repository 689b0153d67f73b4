"""The one place hatast reads and writes weights.

* Reading never executes code from the file: ``torch.load(weights_only=True)`` (or safetensors), and a pickle that
  holds anything but tensors and plain containers is refused with a message that says so.
* Checkpoints in any of the usual wrappings load: BasicSR's ``{'params_ema': ..., 'params': ...}``, either key
  alone, ``{'state_dict': ...}``, or a bare state dict; a ``module.`` prefix (DataParallel) is stripped.
* One rule picks the entry of a wrapped file (:func:`select_entry`), for every command and option file.
* Writing is atomic (:func:`hatast.utils.files.atomic_write`): a killed process leaves either the old file or the
  new one, never half of one.
"""

from __future__ import annotations

import collections
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import HatastError
from .files import atomic_write, damage_report

WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")


class CheckpointError(HatastError):
    """A checkpoint file that cannot be used, with the reason in words."""


# BasicSR's training states hold the LR scheduler's milestones as a Counter: plain data, safe to allow.
torch.serialization.add_safe_globals([collections.Counter, collections.OrderedDict])


def load_file(path: str | os.PathLike) -> object:
    """Read a ``.pth``/``.pt`` (weights only) or ``.safetensors`` file onto the CPU.

    Every failure is a :class:`CheckpointError` that says which of these it is: no such file, an empty or truncated
    file (an interrupted download), a file of another kind, or a pickle holding Python objects (refused because
    unpickling them could run code from the file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    damage = damage_report(path)
    if damage:
        raise CheckpointError(f"checkpoint {path} {damage}")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file as load_safetensors
        except ImportError as err:
            raise CheckpointError(f"{path}: reading .safetensors needs the 'safetensors' package") from err
        try:
            return load_safetensors(str(path), device="cpu")
        except Exception as err:  # noqa: BLE001  (safetensors raises its own error types)
            raise CheckpointError(f"checkpoint {path} is not a readable safetensors file ({_first_line(err)})") \
                from None
    with open(path, "rb") as stream:
        head = stream.read(2)
    is_pickle = len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5  # PROTO opcode: a (legacy) pickle
    if not is_pickle and head != b"PK":
        raise CheckpointError(f"checkpoint {path} is not a PyTorch checkpoint (neither PyTorch's zip format nor a "
                              "pickle: damaged, or another kind of file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        code = _pickled_code(err) or (_legacy_pickle_call(path) if is_pickle else None)
        if code is not None:
            raise CheckpointError(
                f"{path} holds code, not only weights: unpickling it would call {code}; hatast did not run it "
                "(weights are read with weights_only=True). Use files from sources you trust, or ask for "
                ".safetensors") from None
        if is_pickle:
            raise CheckpointError(f"{path} holds Python objects other than tensors and plain containers; hatast "
                                  "does not unpickle them (weights_only=True)") from None
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch checkpoint (damaged: "
                              f"{_unsupported(err)})") from None
    except Exception as err:  # noqa: BLE001  (torch reports damaged files with many exception types)
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch checkpoint ({type(err).__name__}: "
                              f"{_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else "no detail"


_GLOBAL = re.compile(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", re.IGNORECASE)


def _pickled_code(err: BaseException) -> str | None:
    """The callable a weights-only refusal names (``posix.system``), or None when the refusal is not about one."""
    match = _GLOBAL.search(str(err))
    if match:
        return match.group(1)
    return "a Python callable" if "Weights only load failed" in str(err) and "GLOBAL" in str(err) else None


_SAFE_MODULES = ("torch", "collections", "numpy", "_codecs")


def _legacy_pickle_call(path: Path) -> str | None:
    """The first callable outside the modules weights need (torch, collections, numpy) that a legacy pickle names,
    read from its opcodes without running anything (``pickletools.genops`` only decodes); None if there is none."""
    import pickletools

    strings: list[str] = []
    try:
        with open(path, "rb") as stream:
            for opcode, arg, _ in pickletools.genops(stream):
                if opcode.name == "GLOBAL":
                    name = str(arg).replace(" ", ".")
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    name = f"{strings[-2]}.{strings[-1]}"
                else:
                    if isinstance(arg, str):
                        strings.append(arg)
                    continue
                if not name.startswith(_SAFE_MODULES):
                    return name
    except Exception:  # noqa: BLE001  (a damaged pickle: nothing more to say than the loader's refusal)
        return None
    return None


def _unsupported(err: BaseException) -> str:
    """The 'Unsupported ...' line of torch's weights-only refusal."""
    for line in str(err).splitlines():
        if "Unsupported" in line:
            return line.strip().removeprefix("WeightsUnpickler error: ")
    return _first_line(err)


def select_entry(obj: object, param_key: str | None = None,
                 source: str = "checkpoint") -> tuple[dict[str, Tensor], str]:
    """Pick the state dict out of a loaded checkpoint: **the one rule of which entry is used**.

    * ``param_key`` given (``path:param_key_g`` in options, ``--param-key`` on the command line): that entry, and an
      error naming the entries the file has when it lacks it;
    * otherwise ``params_ema``, then ``params``, ``state_dict``, ``model``, then the file itself as a bare state dict.

    Returns the state dict (a ``module.`` prefix stripped) and the entry used (``'<bare>'`` for a bare dict).
    """
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source} holds a {type(obj).__name__}, not a state dict")
    entry = "<bare>"
    if param_key is not None:
        if not isinstance(obj.get(param_key), Mapping):
            found = ", ".join(k for k in obj if isinstance(obj.get(k), Mapping)) or "none: it is a bare state dict"
            raise CheckpointError(f"{source} has no '{param_key}' entry (entries found: {found})")
        obj, entry = obj[param_key], param_key
    else:
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj, entry = obj[key], key
                break
    state = {}
    for key, value in obj.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{source}: entry '{key}' is a {type(value).__name__}, not a tensor")
        state[key[len("module."):] if key.startswith("module.") else key] = value
    return state, entry


def read_state_dict(path: str | os.PathLike, param_key: str | None = None) -> tuple[dict[str, Tensor], str]:
    """Read ``path`` and return its state dict and the entry used (see :func:`select_entry`)."""
    return select_entry(load_file(path), param_key, source=str(path))


def load_state_dict(path: str | os.PathLike, param_key: str | None = None) -> dict[str, Tensor]:
    """Read ``path`` and return its state dict (see :func:`select_entry`)."""
    return read_state_dict(path, param_key)[0]


def load_weights(net: nn.Module, path: str | os.PathLike, param_key: str | None = None, strict: bool = True) -> str:
    """Load ``path`` into ``net`` (see :func:`load_into`). Returns a one-line summary for the log."""
    state = load_state_dict(path, param_key)
    return load_into(net, state, strict, source=str(path))


def canonical_state(cls: type, state: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    """``state`` in network class ``cls``'s own key spelling: ``cls.canonical_keys(state)`` when the class declares
    other spellings it accepts (USRNet: its authors' code collapses one-block stages), else ``state``."""
    rename = getattr(cls, "canonical_keys", None)
    return state if rename is None else rename(state)


def load_into(net: nn.Module, state: Mapping[str, Tensor], strict: bool = True, source: str = "state dict") -> str:
    """Load a state dict into ``net``.

    ``strict=True``: any missing, unexpected or differently shaped key raises one :class:`CheckpointError` that
    counts and names them. ``strict=False`` (fine-tuning across scales, as BasicSR's ``strict_load_g: false``):
    those keys are skipped and named in the returned summary, which callers log.
    """
    own = net.state_dict()
    state = canonical_state(type(net), state)
    problems = check_fit(net, state, strict, source)
    usable = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    net.load_state_dict(usable, strict=False)
    summary = f"loaded {source} into {type(net).__name__}"
    if problems:
        summary += " (non-strict; skipped keys: " + "; ".join(problems) + ")"
    return summary


def check_fit(net: nn.Module, state: Mapping[str, Tensor], strict: bool = True, source: str = "state dict") -> list:
    """**The one validation of loaded weights**, for every family and command (upscale, bench, release, export,
    convert-ast, test, training from pretrained weights): ``state`` against ``net``'s own keys, shapes and kinds of
    values (works on meta-device networks).

    Always refused (:class:`CheckpointError`), ``strict`` or not, for the keys that would be loaded: a tensor of
    another kind than the network's (integers where it has floats, or the reverse: an index buffer filled with
    floats), and floating-point values that are not finite (NaN or inf: a diverged run or a damaged file would give
    black or meaningless images). With ``strict``, also any missing, unexpected or differently shaped key;
    otherwise those are returned for the caller to log.
    """
    own = net.state_dict()
    state = canonical_state(type(net), state)
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
    check_values(state, own, source)
    return problems


def _kind(dtype: torch.dtype) -> str:
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float"
    return "bool" if dtype == torch.bool else "integer"


def check_values(state: Mapping[str, Tensor], own: Mapping[str, Tensor] | None = None,
                 source: str = "state dict") -> None:
    """Refuse (:class:`CheckpointError`) tensors whose kind differs from the network's (``own``; without it,
    parameters must be floats), integer buffers whose values differ from the network's own (relative-position
    indices follow from the settings: other values would index out of range at run time) and floating-point values
    that are not finite."""
    for key, value in state.items():
        if own is not None and key in own:
            want, got = _kind(own[key].dtype), _kind(value.dtype)
            if want != got:
                raise CheckpointError(f"{source}: '{key}' holds {value.dtype} values where the network expects "
                                      f"{want} ({own[key].dtype}); the file is damaged or not this model's")
            mine = own[key]
            if want != "float" and mine.device.type != "meta" and value.shape == mine.shape and not torch.equal(
                    value.to(mine.dtype), mine):  # integer buffers (indices, ids) follow from the settings
                raise CheckpointError(f"{source}: '{key}' holds other values than the network computes from its "
                                      "settings (an index or id table): the file is damaged or edited")
        elif own is None and not value.is_floating_point() and value.dtype != torch.int64:
            raise CheckpointError(f"{source}: '{key}' holds {value.dtype} values; weights are floating point")
    check_finite(state, source)


def check_finite(state: Mapping[str, Tensor], source: str = "state dict") -> None:
    """Refuse (:class:`CheckpointError`, naming the key) floating-point values that are not finite. Run before an
    architecture's settings are read from a state dict too (:func:`hatast.inference.load_network`), since some are
    stored as values (IM-Net's mixer settings)."""
    for key, value in state.items():
        if value.is_floating_point() and value.device.type != "meta" and value.numel():
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                bad = int((~finite).sum())
                kind = "NaN" if bool(torch.isnan(value).any()) else "infinite"
                raise CheckpointError(f"{source}: '{key}' holds {bad} {kind} value(s) of {value.numel()}; the weights "
                                      "are damaged (or come from a run that diverged) and would give meaningless "
                                      "images")


def tensor_shape(state: Mapping[str, Tensor], key: str, ndim: int) -> torch.Size:
    """``state[key]``'s shape, for the readers that take an architecture's settings from tensor shapes
    (``*_config_from_state_dict``): a missing key, or a tensor with another number of dimensions, is a ``ValueError``
    naming the key (a damaged or edited file), never an ``IndexError`` deep in the reader."""
    if key not in state:
        raise ValueError(f"no '{key}'")
    shape = state[key].shape
    if len(shape) != ndim:
        raise ValueError(f"'{key}' has shape {tuple(shape)}, where {ndim} dimensions are expected")
    return shape


def _first(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f", ... {len(items) - n} more" if len(items) > n else "")


def save_atomic(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` so that readers never see a partial file (see :func:`atomic_write`)."""
    with atomic_write(path) as stream:
        torch.save(obj, stream)
