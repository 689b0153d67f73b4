"""Build the right network for a bare state dict (spandrel-style): each architecture contributes a function that
recognises its keys and reads its hyper-parameters from the tensor shapes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import Tensor, nn

from .hat_arch import HAT, hat_config_from_state_dict
from .hat_ast_arch import HATAST, hat_ast_config_from_state_dict, is_hat_ast_state_dict
from .srlut_arch import SRLUTNet, is_srlut_state_dict, srlut_config_from_state_dict

# (name, recogniser, config reader, class); the first recogniser that accepts the keys wins.
DETECTORS: list[tuple[str, Callable[[Mapping[str, Tensor]], bool], Callable[[Mapping], dict], type]] = [
    ("HATAST", is_hat_ast_state_dict, hat_ast_config_from_state_dict, HATAST),
    ("HAT", lambda sd: "relative_position_index_OCA" in sd and "conv_first.weight" in sd,
     hat_config_from_state_dict, HAT),
    ("SRLUTNet", is_srlut_state_dict, srlut_config_from_state_dict, SRLUTNet),
]


def network_from_state_dict(state: Mapping[str, Tensor]) -> tuple[nn.Module, dict]:
    """Return an un-loaded network matching ``state`` and the constructor arguments used."""
    for name, recognises, read_config, cls in DETECTORS:
        if recognises(state):
            config = read_config(state)
            return cls(**config), {"type": name, **config}
    known = ", ".join(name for name, *_ in DETECTORS)
    raise ValueError(f"the weights match none of the architectures hatast can detect ({known})")
