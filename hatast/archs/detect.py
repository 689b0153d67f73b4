"""The architectures hatast recognises, and the two ways to a :class:`ModelDescriptor`: :func:`detect` from a bare
state dict (spandrel-style: required key sets, hyper-parameters read from tensor shapes) and :func:`describe` for a
network already built (option files)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from ..utils.checkpoint import CheckpointError
from .descriptor import Architecture, KeyCondition, ModelDescriptor
from .hat_arch import HAT, hat_config_from_state_dict
from .hat_ast_arch import HATAST, hat_ast_config_from_state_dict
from .imlut_arch import IMLUT, IMNet, imnet_config_from_state_dict
from .lut_arch import LUTNet
from .srlut_arch import SRLUTNet, is_srlut_state_dict, srlut_config_from_state_dict
from .usrnet_arch import USRNet, usrnet_config_from_state_dict

_HAT_KEYS = frozenset({
    "relative_position_index_SA", "relative_position_index_OCA", "conv_first.weight", "patch_embed.norm.weight",
    "layers.0.residual_group.blocks.0.attn.relative_position_bias_table",
    "layers.0.residual_group.overlap_attn.relative_position_bias_table", "norm.weight", "conv_after_body.weight",
    "conv_last.weight"})
_OCAB = "layers.0.residual_group.overlap_attn."
USRNET_SCALES = (1, 2, 3, 4)
"""The scales USRNet is trained for (it takes any integer scale as an input, these are the ones we test)."""

HALF_PRECISION = ("float32", "bfloat16", "float16")
"""Networks tested in half precision too (tests/test_upscale_command.py: within 1e-2 of float32)."""

ARCHITECTURES: list[Architecture] = [  # the most specific first: HATAST's keys include HAT's
    Architecture("HATAST", HATAST,
                 KeyCondition(_HAT_KEYS, any_prefix=((_OCAB + "assa.", _OCAB + "mlp.linear1.",
                                                      _OCAB + "key_position_bias"),)),
                 hat_ast_config_from_state_dict, scale=lambda net: net.upscale,
                 size_multiple=lambda net: net.window_size, dtypes=HALF_PRECISION),
    Architecture("HAT", HAT, KeyCondition(_HAT_KEYS), hat_config_from_state_dict, scale=lambda net: net.upscale,
                 size_multiple=lambda net: net.window_size, dtypes=HALF_PRECISION),
    Architecture("SRLUTNet", SRLUTNet,
                 KeyCondition(frozenset({"net.body.0.weight", "net.body.0.bias"}), check=is_srlut_state_dict),
                 srlut_config_from_state_dict, scale=lambda net: net.upscale),
    Architecture("USRNet", USRNet,  # keys present at every depth nb >= 0 (the residual blocks are not)
                 KeyCondition(frozenset({"p.m_head.weight", "p.m_up3.0.weight", "p.m_up2.0.weight", "p.m_up1.0.weight",
                                         "p.m_tail.weight", "h.mlp.0.weight", "h.mlp.2.weight", "h.mlp.4.weight"}),
                              any_prefix=(("p.m_down1.",), ("p.m_down2.",), ("p.m_down3.",))),
                 usrnet_config_from_state_dict, scale=lambda net: USRNET_SCALES, size_multiple=lambda net: 1,
                 tiling="approximate", extra_inputs=("kernel", "sigma", "scale")),
    Architecture("IMNet", IMNet,
                 KeyCondition(frozenset({"weight_net.body.0.weight", "scale_net.body.0.weight",
                                         "refiner.body.0.weight", "interpolation_ids", "mixer_settings"})),
                 imnet_config_from_state_dict, scale=lambda net: "any", tiling="none", extra_inputs=("scale",)),
    Architecture("LUTNet", LUTNet, None, None, scale=lambda net: net.upscale),
    Architecture("IMLUT", IMLUT, None, None, scale=lambda net: "any", tiling="none", extra_inputs=("scale",)),
]


class UnknownArchitecture(CheckpointError):
    """Weights whose keys match no architecture hatast recognises."""


def detect(state: Mapping[str, Tensor]) -> ModelDescriptor:
    """The descriptor of an un-loaded network matching ``state`` (raise ``ValueError`` when none does).

    Each architecture sees ``state`` in its own key spelling (:meth:`Architecture.canonical`); load
    ``model.architecture.canonical(state)`` into ``model.network``."""
    for arch in ARCHITECTURES:
        if arch.condition is None:
            continue
        canonical = arch.canonical(state)
        if arch.condition.matches(canonical):
            try:
                config = arch.read_config(canonical)
                network = arch.cls(**config)
            except Exception as err:  # noqa: BLE001  (any shape the keys do not describe is a damaged file)
                text = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
                raise CheckpointError(f"the weights have {arch.name}'s keys but their shapes describe no {arch.name} "
                                      f"({text}): a damaged or edited file?") from None
            return ModelDescriptor(arch, network, {"type": arch.name, **config})
    near = _near_miss(state)
    if near is not None:
        raise UnknownArchitecture(near)
    known = ", ".join(a.name for a in ARCHITECTURES if a.condition is not None)
    raise UnknownArchitecture(f"the weights match none of the architectures hatast can detect ({known}): another "
                              "project's model, or a training state rather than a network's weights?")


def _near_miss(state: Mapping[str, Tensor]) -> str | None:
    """For weights that match no architecture: what they lack of the architecture whose recognising keys they
    nearly hold (at least half of its required keys), naming the keys; None when none is near."""
    best = None
    for arch in ARCHITECTURES:
        condition = arch.condition
        if condition is None:
            continue
        canonical = arch.canonical(state)
        missing = sorted(condition.required - canonical.keys())
        if 2 * (len(condition.required) - len(missing)) < len(condition.required):
            continue
        groups = [group for group in condition.any_prefix if not any(k.startswith(group) for k in canonical)]
        if best is None or len(missing) + len(groups) < best[0]:
            best = (len(missing) + len(groups), arch, missing, groups, canonical)
    if best is None:
        return None
    _, arch, missing, groups, canonical = best
    if not missing and not groups:  # the keys are there; the condition's check of their shapes failed
        shapes = ", ".join(f"'{k}' {tuple(canonical[k].shape)}" for k in sorted(arch.condition.required)[:3])
        return (f"the weights match none of the architectures hatast can detect: they have {arch.name}'s keys but "
                f"tensors of shapes no {arch.name} has ({shapes}); a damaged or edited file?")
    lacking = ", ".join(f"'{k}'" for k in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    prefixes = " or ".join(f"'{p}...'" for group in groups for p in group)
    what = " and ".join(part for part in (lacking, f"any key {prefixes}" if prefixes else "") if part)
    return (f"the weights match none of the architectures hatast can detect: they have most of {arch.name}'s keys "
            f"but lack {what}; a damaged or edited file?")


def describe(net: nn.Module, config: dict | None = None) -> ModelDescriptor:
    """The descriptor of a built network (its exact class first, then the nearest base class)."""
    for arch in ARCHITECTURES:
        if type(net) is arch.cls:
            return ModelDescriptor(arch, net, config or {})
    for arch in ARCHITECTURES:
        if isinstance(net, arch.cls):
            return ModelDescriptor(arch, net, config or {})
    raise ValueError(f"{type(net).__name__} is not an architecture hatast describes")
