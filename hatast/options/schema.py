"""The option schema: every section that hatast's engine and BasicSR's components read, typed and closed.

A few primitives (:class:`Number`, :class:`Flag`, :class:`Text`, :class:`OneOf`, :class:`ListOf`, :class:`Section`,
:class:`Typed`, ...) check a value, coerce what BasicSR would have meant (``lr: 5e-4``, which YAML 1.1 reads as
the text ``'5e-4'``, becomes the number), and report every problem as a :class:`Problem` with its key path. Unknown
keys are problems too, with the nearest known key; enums are case-sensitive, with a did-you-mean.

Where the fields come from:

* ``network_g``: the registered architecture's constructor signature and type hints (``int``, ``float``,
  ``Literal[...]``, ``Sequence[int]``...); every architecture is read the same way.
* losses, metrics, optimizers and schedulers: the ``type`` is checked against BasicSR's registries (and the optimizer
  and scheduler types its models build), the other keys against that component's signature, with well-known names
  (``lr``, ``betas``, ``milestones``, ``crop_border``...) given ranges in :data:`KNOWN_FIELDS`.
* datasets: :data:`DATASETS` (BasicSR's paired/single datasets and hatast's), one entry per ``type``.
* model-specific sections: :data:`MODEL_SECTIONS` and :data:`MODEL_VAL_FIELDS`, keyed by model class name and
  inherited along the class hierarchy.

A new family (USRNet, IM-LUT) extends this module: its architecture is read from its signature, and it adds its
dataset types, model sections and validation keys to the tables below.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from basicsr.models import lr_scheduler
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from .. import models  # noqa: F401  (registers hatast's architectures, datasets and models, which the schema reads)

Path_ = tuple[str, ...]
MAX_SEED = 2**31 - 1
"""Seeds must fit NumPy's generator with the process rank added (BasicSR seeds with seed + rank)."""
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class Problem:
    """One thing wrong with the options: where (key path) and what."""

    path: Path_
    message: str
    origin: Path_ | None = None  # the key the problem is about, when it is not ``path`` (an unknown key)

    def render(self, source: str) -> str:
        where = ":".join(self.path)
        return f"{source}: {where}: {self.message}" if where else f"{source}: {self.message}"


def did_you_mean(word: object, choices) -> str:
    """`` (did you mean 'x'?)`` for the nearest choice, case-insensitively; empty when none is close."""
    choices = [str(c) for c in choices]
    if not isinstance(word, str) or not choices:
        return ""
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return f" (did you mean '{lowered[word.lower()]}'?)"
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def _show(value: object) -> str:
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "nothing (~)"
    if isinstance(value, Mapping):
        return "a section"
    if isinstance(value, (list, tuple)):
        return f"a list {list(value)!r}" if len(str(value)) < 60 else "a list"
    return repr(value)


class Spec:
    """A checker for one option value. ``check`` returns the (possibly coerced) value and appends problems."""

    nullable: bool = False

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, value, path: Path_, problems: list[Problem]):
        if value is None:
            if not self.nullable:
                problems.append(Problem(path, f"expected {self.describe()}, got nothing (~)"))
            return value
        return self._check(value, path, problems)

    def _check(self, value, path: Path_, problems: list[Problem]):
        raise NotImplementedError


@dataclass
class Anything(Spec):
    nullable: bool = True

    def describe(self) -> str:
        return "any value"

    def _check(self, value, path, problems):
        return value


@dataclass
class Number(Spec):
    """A number (``integer=True``: a whole number) in a range; numeric text such as ``'5e-4'`` is converted."""

    integer: bool = False
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    nullable: bool = False

    def describe(self) -> str:
        text = "a whole number" if self.integer else "a number"
        bounds = [f">= {self.min:g}" if self.min is not None else "", f"> {self.above:g}" if self.above is not None
                  else "", f"<= {self.max:g}" if self.max is not None else "",
                  f"< {self.below:g}" if self.below is not None else ""]
        bounds = [b for b in bounds if b]
        return text + (" " + " and ".join(bounds) if bounds else "")

    def _check(self, value, path, problems):
        original = value
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(Problem(path, f"expected {self.describe()}, got {_show(original)}"))
            return original
        if self.integer:
            if value != int(value):
                problems.append(Problem(path, f"expected {self.describe()}, got {value!r}"))
                return original
            value = int(value)
        if ((self.min is not None and value < self.min) or (self.max is not None and value > self.max)
                or (self.above is not None and value <= self.above)
                or (self.below is not None and value >= self.below)):
            problems.append(Problem(path, f"expected {self.describe()}, got {value!r}"))
        return value


@dataclass
class Flag(Spec):
    nullable: bool = False

    def describe(self) -> str:
        return "true or false"

    def _check(self, value, path, problems):
        if not isinstance(value, bool):
            problems.append(Problem(path, f"expected true or false, got {_show(value)}"))
        return value


@dataclass
class Text(Spec):
    """Text; ``pattern``: a regular expression it must match, described by ``shape``."""

    pattern: str | None = None
    shape: str = ""
    nullable: bool = False

    def describe(self) -> str:
        return "text" + (f" {self.shape}" if self.shape else "")

    def _check(self, value, path, problems):
        if not isinstance(value, str) or (self.pattern and not re.fullmatch(self.pattern, value)):
            problems.append(Problem(path, f"expected {self.describe()}, got {_show(value)}"))
        return value


FOLDER_NAME = Text(pattern=r"[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,199}",
                   shape="that names one folder or file (no '/' or '\\', not starting with '.')")
"""Names that become one path component (the experiment's ``name``: ``experiments/<name>``; a dataset's ``name``
and ``val:suffix``: result image paths): never a path that leaves the folder they are put in."""


@dataclass
class OneOf(Spec):
    """One of fixed values (case-sensitive). ``choices`` may be a callable, read when checking (registries)."""

    choices: Sequence | Callable[[], Sequence] = ()
    what: str = "value"
    nullable: bool = False

    def options(self) -> list:
        return list(self.choices() if callable(self.choices) else self.choices)

    def describe(self) -> str:
        options = self.options()
        shown = ", ".join(map(str, options[:10])) + (", ..." if len(options) > 10 else "")
        return f"one of: {shown}"

    def _check(self, value, path, problems):
        options = self.options()
        if not isinstance(value, str) and all(isinstance(o, str) for o in options):
            problems.append(Problem(path, f"expected the name of the {self.what}, got {_show(value)}"))
            return value
        if value not in options:
            hint = did_you_mean(value, options)
            listed = f" ({self.describe()})" if not hint and len(options) <= 10 else ""
            problems.append(Problem(path, f"unknown {self.what} {value!r}{hint}{listed}"))
        return value


@dataclass
class AnyOf(Spec):
    """The first of several specs that accepts the value."""

    specs: tuple = ()
    nullable: bool = False

    def describe(self) -> str:
        return " or ".join(s.describe() for s in self.specs)

    def _check(self, value, path, problems):
        for spec in self.specs:
            trial: list[Problem] = []
            result = spec.check(value, path, trial)
            if not trial:
                return result
        problems.append(Problem(path, f"expected {self.describe()}, got {_show(value)}"))
        return value


@dataclass
class Interval(Spec):
    """Two numbers ``[low, high]`` with ``low <= high`` (a range a value is drawn from, uniformly)."""

    item: Spec = field(default_factory=lambda: Number())
    nullable: bool = False

    def describe(self) -> str:
        return f"[low, high] with low <= high ({self.item.describe()})"

    def _check(self, value, path, problems):
        trial: list[Problem] = []
        checked = ListOf(self.item, length=2).check(value, path, trial)
        problems += trial
        if not trial and checked[0] > checked[1]:
            problems.append(Problem(path, f"expected {self.describe()}, got {list(checked)!r} (an empty range)"))
        return checked


@dataclass
class ListOf(Spec):
    item: Spec = field(default_factory=Anything)
    length: int | None = None
    min_length: int = 0
    nullable: bool = False

    def describe(self) -> str:
        size = f"{self.length} " if self.length is not None else ""
        return f"a list of {size}values ({self.item.describe()})"

    def _check(self, value, path, problems):
        if not isinstance(value, (list, tuple)):
            problems.append(Problem(path, f"expected {self.describe()}, got {_show(value)}"))
            return value
        if (self.length is not None and len(value) != self.length) or len(value) < self.min_length:
            problems.append(Problem(path, f"expected {self.describe()}, got {len(value)} value(s)"))
            return value
        return type(value)(self.item.check(v, path + (str(i),), problems) for i, v in enumerate(value))


@dataclass
class Section(Spec):
    """A mapping with known keys. Unknown keys are problems (with the nearest known key) unless ``open``.

    ``owner`` names the section in messages about unknown keys ("HAT has no option 'windw_size'").
    """

    fields: dict[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    open: bool = False
    owner: str | None = None
    nullable: bool = False

    def describe(self) -> str:
        return "a section of options"

    def _check(self, value, path, problems):
        if not isinstance(value, Mapping):
            problems.append(Problem(path, f"expected a section of options, got {_show(value)}"))
            return value
        misspelt = set()
        for key in list(value):
            if key not in self.fields and not self.open:
                hint = did_you_mean(key, self.fields)
                misspelt.add(hint.removeprefix(" (did you mean '").removesuffix("'?)"))
                who = f"{self.owner} has no option" if self.owner else "unknown option"
                problems.append(Problem(path, f"{who} '{key}'{hint}", path + (str(key),)))
        for key in self.required:
            if key not in value and key not in misspelt:  # a misspelt key is reported once, as unknown
                problems.append(Problem(path, f"missing '{key}'"))
        for key in list(value):
            spec = self.fields.get(key)
            if spec is None:
                continue
            checked = spec.check(value[key], path + (str(key),), problems)
            if checked is not value[key]:
                value[key] = checked
        return value

    def extended(self, fields: Mapping[str, Spec], required: Sequence[str] = ()) -> Section:
        return dataclasses.replace(self, fields={**self.fields, **fields},
                                   required=tuple(dict.fromkeys((*self.required, *required))))


@dataclass
class Typed(Spec):
    """A section chosen by its ``type``: ``kinds()`` maps each type to its :class:`Section`."""

    kinds: Callable[[], Mapping[str, Callable[[], Section]]] = dict
    what: str = "type"
    nullable: bool = False
    refused: Mapping[str, str] = field(default_factory=dict)
    """Types that exist but cannot be used here, with the reason (a GAN loss as ``pixel_opt``)."""

    def describe(self) -> str:
        return f"a section with a {self.what}"

    def _check(self, value, path, problems):
        if not isinstance(value, Mapping):
            problems.append(Problem(path, f"expected a section with a 'type', got {_show(value)}"))
            return value
        if "type" not in value:
            problems.append(Problem(path, "needs a 'type'"))
            return value
        kinds = self.kinds()
        kind = value["type"]
        if not isinstance(kind, str):
            problems.append(Problem(path + ("type",), f"expected the name of the {self.what}, got {_show(kind)}"))
            return value
        if kind in self.refused:
            problems.append(Problem(path + ("type",), f"{kind} {self.refused[kind]}"))
            return value
        if kind not in kinds:
            hint = did_you_mean(kind, kinds)
            listed = f" (one of: {', '.join(kinds)})" if not hint and len(kinds) <= 10 else ""
            problems.append(Problem(path + ("type",), f"unknown {self.what} {kind!r}{hint}{listed}"))
            return value
        return kinds[kind]().check(value, path, problems)


@dataclass
class MapOf(Spec):
    """A mapping of free names (datasets, metrics) to values of one spec."""

    value: Spec = field(default_factory=Anything)
    nullable: bool = False

    def describe(self) -> str:
        return "a section of named entries"

    def _check(self, value, path, problems):
        if not isinstance(value, Mapping):
            problems.append(Problem(path, f"expected a section of named entries, got {_show(value)}"))
            return value
        for key in list(value):
            checked = self.value.check(value[key], path + (str(key),), problems)
            if checked is not value[key]:
                value[key] = checked
        return value


def nullable(spec: Spec) -> Spec:
    return dataclasses.replace(spec, nullable=True)


# --------------------------------------------------------------------------------------------------------------------
# Fields read from signatures

KNOWN_FIELDS: dict[str, Spec] = {
    # optimizers and schedulers
    "lr": Number(above=0),
    "betas": ListOf(Number(min=0, below=1), length=2),
    "eps": Number(above=0),
    "weight_decay": Number(min=0),
    "momentum": Number(min=0),
    "milestones": ListOf(Number(integer=True, min=0)),
    "gamma": Number(above=0),
    "restarts": ListOf(Number(integer=True, min=0)),
    "restart_weights": ListOf(Number(min=0)),
    "periods": ListOf(Number(integer=True, min=1), min_length=1),
    "eta_min": Number(min=0),
    # losses
    "loss_weight": Number(min=0),
    "reduction": OneOf(("none", "mean", "sum"), "reduction"),
    # metrics
    "crop_border": Number(integer=True, min=0),
    "input_order": OneOf(("HWC", "CHW"), "input_order"),
    "test_y_channel": Flag(),
}


def _type_hints(target) -> dict[str, object]:
    """Type hints of a function, or of a class's ``__init__`` along its hierarchy (a subclass's hint wins)."""
    hints: dict[str, object] = {}
    owners = [c.__init__ for c in reversed(target.__mro__) if "__init__" in vars(c)] if inspect.isclass(target) \
        else [target]
    for owner in owners:
        try:
            hints.update(typing.get_type_hints(owner))
        except Exception:  # noqa: BLE001  (unresolvable hints: fall back to defaults)
            continue
    return hints


def spec_from_hint(hint) -> Spec | None:
    """A spec for a type hint, or None when the hint says nothing checkable."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return OneOf(args, "value")
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        specs = [s for s in map(spec_from_hint, options) if s is not None]
        if len(specs) != len(options):
            return Anything() if type(None) in args else None
        if any(isinstance(s, Number) for s in specs):  # float | Tensor (torch's lr) and friends: the number
            spec = next(s for s in specs if isinstance(s, Number))
        elif len(specs) == 1:
            spec = specs[0]
        else:
            spec = AnyOf(tuple(specs))
        return nullable(spec) if type(None) in args else spec
    if hint is bool:
        return Flag()
    if hint is int:
        return Number(integer=True)
    if hint is float:
        return Number()
    if hint is str:
        return Text()
    if origin in (list, tuple, Sequence, typing.Sequence) or (inspect.isclass(origin) and origin is not None
                                                              and issubclass(origin, Sequence)):
        item = spec_from_hint(args[0]) if args and args[0] is not Ellipsis else None
        length = len(args) if origin is tuple and args and Ellipsis not in args else None
        return ListOf(item or Anything(), length=length)
    return None


def spec_from_default(default) -> Spec:
    if isinstance(default, bool):
        return Flag()
    if isinstance(default, (int, float)):
        return Number()
    if isinstance(default, str):
        return Text()
    if isinstance(default, (list, tuple)) and all(isinstance(v, (int, float)) for v in default):
        return ListOf(Number())
    return Anything()


def section_from_signature(target, owner: str, skip: Sequence[str] = (), extra: Mapping[str, Spec] | None = None,
                           closed: bool = False, required: Sequence[str] = (),
                           known: Mapping[str, Spec] = KNOWN_FIELDS) -> Section:
    """The section of a component configured by keyword arguments (``type`` plus its constructor's parameters).

    Args:
        skip: parameters the caller fills itself (``params`` of an optimizer, ``img`` of a metric).
        extra: keys read by BasicSR besides the parameters (``better`` of a metric).
        closed: reject unknown keys even when the target takes ``**kwargs`` (metric functions swallow them).
        known: specs by parameter name that override hints and defaults (ranges of ``lr``, ``betas``...).
    """
    hints = _type_hints(target)
    fields: dict[str, Spec] = {"type": Text()}
    needed = list(required)
    is_open = False
    for name, param in inspect.signature(target).parameters.items():
        if name in skip or name == "self" or param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            is_open = not closed
            continue
        spec = known.get(name) or spec_from_hint(hints.get(name)) or spec_from_default(param.default)
        if param.default is param.empty:
            needed.append(name)
        elif param.default is None:
            spec = nullable(spec)
        fields[name] = spec
    fields.update(extra or {})
    return Section(fields, tuple(dict.fromkeys(needed)), open=is_open, owner=owner)


def _registry_names(registry) -> list[str]:
    return sorted(registry._obj_map)


def _registry_kinds(registry, **kwargs) -> Callable[[], dict[str, Callable[[], Section]]]:
    def kinds():
        return {name: (lambda n=name: section_from_signature(registry.get(n), n, **kwargs))
                for name in _registry_names(registry)}
    return kinds


# What BasicSR 1.4.2's models build (BaseModel.get_optimizer / setup_schedulers): ``lr`` is positional there.
OPTIMIZERS: dict[str, Callable] = {"Adam": torch.optim.Adam}
SCHEDULERS: dict[str, Callable] = {"MultiStepLR": lr_scheduler.MultiStepRestartLR,
                                   "MultiStepRestartLR": lr_scheduler.MultiStepRestartLR,
                                   "CosineAnnealingRestartLR": lr_scheduler.CosineAnnealingRestartLR}


def _fixed_kinds(table: Mapping[str, Callable], **kwargs) -> Callable[[], dict[str, Callable[[], Section]]]:
    return lambda: {name: (lambda n=name: section_from_signature(table[n], n, **kwargs)) for name in table}


LOSS = Typed(_registry_kinds(LOSS_REGISTRY), "loss type")
# SRModel calls ``cri_pix(output, gt)`` (one tensor back) and ``l_percep, l_style = cri_perceptual(output, gt)``
# and trains no discriminator: the losses each can take.
_GAN_LOSS = "needs a discriminator, which the SR models hatast runs do not train"
PIXEL_LOSS = dataclasses.replace(LOSS, refused={
    "GANLoss": _GAN_LOSS, "MultiScaleGANLoss": _GAN_LOSS,
    "PerceptualLoss": "returns two losses (perceptual, style): give it as perceptual_opt"})
PERCEPTUAL_LOSS = dataclasses.replace(LOSS, refused={
    name: "returns one loss, and perceptual_opt must return two (perceptual, style): give it as pixel_opt"
    for name in ("CharbonnierLoss", "L1Loss", "MSELoss", "WeightedTVLoss")} | {
    "GANLoss": _GAN_LOSS, "MultiScaleGANLoss": _GAN_LOSS})
# SRModel's validation hands metrics two 8-bit HWC images (``img``, ``img2``); the ``_pt`` variants take tensors.
METRIC = Typed(_registry_kinds(METRIC_REGISTRY, skip=("img", "img2"), closed=True,
                               extra={"better": OneOf(("higher", "lower"), "value")}), "metric type",
               refused={f"calculate_{name}_pt": f"takes tensors, and validation gives metrics 8-bit images: use "
                        f"calculate_{name}" for name in ("psnr", "ssim")})
OPTIMIZER = Typed(_fixed_kinds(OPTIMIZERS, skip=("params",), required=("lr",)), "optimizer type")
SCHEDULER = Typed(_fixed_kinds(SCHEDULERS, skip=("optimizer",)), "scheduler type")
NETWORK = Typed(_registry_kinds(ARCH_REGISTRY, known={}), "architecture")  # typed by each architecture's hints


# --------------------------------------------------------------------------------------------------------------------
# Datasets

_LOADER = {
    "name": FOLDER_NAME, "type": Text(),
    "io_backend": Section({"type": OneOf(("disk", "lmdb"), "io_backend type")}, ("type",)),
    "use_shuffle": Flag(), "num_worker_per_gpu": Number(integer=True, min=0),
    "batch_size_per_gpu": Number(integer=True, min=1), "dataset_enlarge_ratio": Number(integer=True, min=1),
    "prefetch_mode": OneOf(("cpu", "cuda"), "prefetch_mode", nullable=True), "pin_memory": Flag(),
    "persistent_workers": Flag(), "num_prefetch_queue": Number(integer=True, min=1),
}
_AUGMENT = {"gt_size": Number(integer=True, min=1), "use_hflip": Flag(), "use_rot": Flag()}
_COLOR = {"color": OneOf(("y",), "color", nullable=True)}
_NORMALISE = {"mean": ListOf(Number(), length=3, nullable=True), "std": ListOf(Number(above=0), length=3,
                                                                              nullable=True)}
_TRAIN_LOADER = ("batch_size_per_gpu", "num_worker_per_gpu")


@dataclass
class DatasetOptions:
    """The options of one dataset type: its fields, the keys it needs in any phase and in training, and whether
    it gives ground truth (a training set must)."""

    fields: dict[str, Spec]
    required: tuple[str, ...]
    train_required: tuple[str, ...]
    has_gt: bool = True


DATASETS: dict[str, DatasetOptions] = {
    "PairedImageDataset": DatasetOptions(
        {**_LOADER, **_AUGMENT, **_COLOR, **_NORMALISE, "dataroot_gt": Text(), "dataroot_lq": Text(),
         "meta_info_file": Text(nullable=True),
         "filename_tmpl": Text(r"[^{}]*\{\}[^{}]*", "with one '{}' for the name")},
        ("name", "type", "dataroot_gt", "dataroot_lq", "io_backend"),
        ("gt_size", "use_hflip", "use_rot", *_TRAIN_LOADER)),
    "SingleImageDataset": DatasetOptions(
        {**_LOADER, **_COLOR, **_NORMALISE, "dataroot_lq": Text(), "meta_info_file": Text(nullable=True)},
        ("name", "type", "dataroot_lq", "io_backend"), _TRAIN_LOADER, has_gt=False),
    "BicubicDownsampleDataset": DatasetOptions(
        {**_LOADER, **_AUGMENT, **_COLOR, "dataroot_gt": Text(), "cache": Flag()},
        ("name", "type", "dataroot_gt"), ("gt_size", *_TRAIN_LOADER)),
    "HRCropDataset": DatasetOptions(
        {**_LOADER, **_AUGMENT, **_COLOR, "dataroot_gt": Text(), "cache": Flag()},
        ("name", "type", "dataroot_gt"), ("gt_size", *_TRAIN_LOADER)),
    # kernel_size from 5: the training pool's motion kernels are 6 to 1.2 x kernel_size pixels long
    "BlurDownsampleNoiseDataset": DatasetOptions(
        {**_LOADER, **_AUGMENT, "dataroot_gt": Text(),
         "scales": ListOf(Number(integer=True, min=1, max=8)), "kernel_size": Number(integer=True, min=5, max=101),
         "noise_range": Interval(Number(min=0, max=255)), "variance_range": Interval(Number(above=0)),
         "kernel": Text(), "noise": Number(min=0, max=255), "seed": Number(integer=True, min=0),
         "dataroot_lq": Text(), "filename_tmpl": Text(r"[^{}]*\{\}[^{}]*", "with one '{}' for the name")},
        ("name", "type", "dataroot_gt"), ("gt_size", "scales", *_TRAIN_LOADER)),
}


def _dataset_spec(phase: str) -> Typed:
    def kinds():
        def section(name: str) -> Section:
            entry = DATASETS[name]
            needed = entry.required + (entry.train_required if phase == "train" else ())
            return Section(dict(entry.fields), needed, owner=name)
        return {name: (lambda n=name: section(n)) for name in DATASETS}
    return Typed(kinds, "dataset type")


# --------------------------------------------------------------------------------------------------------------------
# The whole file

_TILE = Section({"tile_size": Number(integer=True, min=1), "tile_pad": Number(integer=True, min=0)}, ("tile_size",),
                nullable=True)

#: Top-level sections a model class reads besides SRModel's, inherited by subclasses (keyed by class name).
MODEL_SECTIONS: dict[str, dict[str, Spec]] = {
    "HatastSRModel": {"tile": _TILE},
    "SRLUTModel": {"lut": Section({"interval": Number(integer=True, min=0, max=8)})},
    "IMLUTModel": {"imlut": Section({
        "interval": Number(integer=True, min=0, max=8),
        "scales": Section({"range": Interval(Number(min=1)), "step": Number(above=0),
                           "per_axis": Number(min=0, max=1)}),
        "guide": Section({"lambda": Number(min=0), "beta": Number(above=0)}),
    })},
}
#: Keys of ``val`` a model class reads besides SRModel's.
MODEL_VAL_FIELDS: dict[str, dict[str, Spec]] = {
    "SRLUTModel": {"on_table": Flag()},
}
#: The BasicSR model classes whose options this schema knows (hatast's models derive from SRModel).
SUPPORTED_BASE_MODELS = ("SRModel",)


def _model_class(name: str):
    return MODEL_REGISTRY.get(name) if name in MODEL_REGISTRY._obj_map else None


def _inherited(table: Mapping[str, dict[str, Spec]], model) -> dict[str, Spec]:
    """The fields ``model``'s classes add; without a valid model, every model's keys pass (their model_type is
    already reported, and a second line about ``lut`` or ``tile`` would only mislead)."""
    if model is None:
        return {key: Anything() for fields in table.values() for key in fields}
    merged: dict[str, Spec] = {}
    for klass in reversed(model.__mro__):
        merged.update(table.get(klass.__name__, {}))
    return merged


def model_is_supported(model) -> bool:
    """SRModel and hatast's models (whose options this schema knows); not BasicSR's GAN or video models."""
    names = [c.__name__ for c in model.__mro__]
    return names[0] in SUPPORTED_BASE_MODELS or "HatastSRModel" in names


def file_schema(opt: Mapping, is_train: bool) -> Section:
    """The schema of a whole option file for its ``model_type``."""
    model = _model_class(opt.get("model_type")) if isinstance(opt.get("model_type"), str) else None
    val_fields = {"val_freq": Number(integer=True, min=1), "save_img": Flag(),
                  "suffix": Text(pattern=FOLDER_NAME.pattern, shape=FOLDER_NAME.shape, nullable=True),
                  "pbar": Flag(), "metrics": MapOf(METRIC, nullable=True), **_inherited(MODEL_VAL_FIELDS, model)}
    train_fields = {"ema_decay": Number(min=0, below=1), "optim_g": OPTIMIZER, "scheduler": SCHEDULER,
                    "total_iter": Number(integer=True, min=1), "warmup_iter": Number(integer=True, min=-1),
                    "pixel_opt": nullable(PIXEL_LOSS), "perceptual_opt": nullable(PERCEPTUAL_LOSS)}
    fields = {
        "name": FOLDER_NAME,
        "model_type": OneOf(lambda: _registry_names(MODEL_REGISTRY), "model_type"),
        "scale": Number(min=1),  # integers, except for arbitrary-scale models (checked against the network)
        "num_gpu": AnyOf((OneOf(("auto",)), Number(integer=True, min=0))),
        "manual_seed": Number(integer=True, min=0, max=MAX_SEED, nullable=True),
        "datasets": MapOf(Anything()),  # phases are checked by check_schema (their spec depends on the phase)
        "network_g": NETWORK,
        "path": Section({"pretrain_network_g": Text(nullable=True), "strict_load_g": Flag(),
                         "param_key_g": Text(nullable=True), "resume_state": Text(nullable=True)}, nullable=True),
        "train": Section(train_fields, ("total_iter", "optim_g", "scheduler") if is_train else (),
                         nullable=not is_train),
        "val": Section(val_fields, nullable=True),
        "logger": Section({"print_freq": Number(integer=True, min=1),
                           "save_checkpoint_freq": Number(integer=True, min=1), "use_tb_logger": Flag(),
                           "wandb": Section({"project": Text(nullable=True), "resume_id": Text(nullable=True)},
                                            nullable=True)}, nullable=True),
        "dist_params": Section({"backend": Text(), "port": Number(integer=True, min=1, max=65535)}, nullable=True),
        "find_unused_parameters": Flag(),
        **_inherited(MODEL_SECTIONS, model),
    }
    return Section(fields, ("name", "model_type", "scale", "network_g", "datasets"))


def check_schema(opt: dict, is_train: bool) -> list[Problem]:
    """Check (and coerce in place) a whole option dict; returns every problem found."""
    problems: list[Problem] = []
    file_schema(opt, is_train).check(opt, (), problems)
    model = _model_class(opt.get("model_type")) if isinstance(opt.get("model_type"), str) else None
    if model is not None and not model_is_supported(model):
        problems.append(Problem(("model_type",), f"{opt['model_type']} is a BasicSR model whose options hatast does "
                                "not check; hatast's engine runs SRModel and hatast's models (HATModel, "
                                "SRLUTModel); use BasicSR's own basicsr/train.py for it"))
    datasets = opt.get("datasets")
    if isinstance(datasets, Mapping):
        if not datasets:
            problems.append(Problem(("datasets",), "must list at least one dataset"))
        for phase, dopt in datasets.items():
            kind = str(phase).split("_")[0]
            if kind not in ("train", "val", "test"):
                problems.append(Problem(("datasets", str(phase)), "phase names must start with train, val or test"))
                continue
            kind_name = dopt.get("type") if isinstance(dopt, Mapping) else None
            entry = DATASETS.get(kind_name) if isinstance(kind_name, str) else None
            if kind == "train" and entry is not None and not entry.has_gt:
                problems.append(Problem(("datasets", str(phase), "type"),
                                        f"{dopt['type']} gives no ground truth, so it cannot train a model"))
                continue
            _dataset_spec(kind).check(dopt, ("datasets", str(phase)), problems)
        if is_train and "train" not in datasets:
            problems.append(Problem(("datasets",), "needs a 'train' entry for training"))
    return problems
