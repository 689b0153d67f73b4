"""USRNet (Zhang, Van Gool, Timofte, CVPR 2020): a deep unfolding network for any blur kernel, integer scale and
noise level.

For ``K`` iterations it alternates a data step, the exact solution of

    z_k = argmin_z ||(z (x) k) downarrow_s - y||^2 + alpha_k ||z - x_{k-1}||^2

(circular convolution ``(x)`` with the kernel ``k``, ``downarrow_s`` keeps the upper-left pixel of every ``s x s``
block), computed in the Fourier domain without parameters, with a prior step ``x_k = ResUNet([z_k, beta_k])`` that
denoises ``z_k`` knowing the noise level ``beta_k`` (a constant fourth channel). A hyper-parameter net maps
``(sigma, s)`` to every ``alpha_k`` and ``beta_k``.

State-dict keys are the authors' (``p.*`` prior, ``h.mlp.*`` hyper-parameters; the data step has none), so their
released ``usrnet.pth`` / ``usrnet_tiny.pth`` load with ``strict=True``. The authors' ``sequential`` helper returns a
lone module unwrapped, so their code spells a few keys without the ``.0`` at depths ``nb <= 1``:
:func:`usrnet_canonical_keys` maps those spellings to ours (``detect`` and ``USRNet.load_state_dict`` apply it).

Data step, what it computes once per forward and not per iteration: the kernel's transfer function ``FB``,
``|FB|^2`` and its block mean ``invW``, and ``conj(FB) F(S^T y)``. The ``s x s`` block structure is a view
(``[.., s, h, s, w]``), never a stacked copy.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

from ..utils.checkpoint import tensor_shape

Init = Literal["default", "identity"]

# --------------------------------------------------------------------------------------------------------------
# Data step: Fourier-domain pieces
# --------------------------------------------------------------------------------------------------------------


def kernel_to_otf(kernel: Tensor, shape: tuple[int, int]) -> Tensor:
    """The optical transfer function of ``kernel`` ``[B, 1, kh, kw]`` for images of ``shape`` (complex
    ``[B, 1, H, W]``): the kernel placed with its centre ``(kh // 2, kw // 2)`` at index ``(0, 0)``, wrapped
    circularly, then ``fft2``.

    Wrapping sums the entries that fall on one position, so an image smaller than the kernel (where the authors'
    ``p2o`` fails) gets the exact circular convolution too. While exporting, the size is symbolic: the wrapping
    path (exact for every size) is the one exported.
    """
    height, width = shape
    kh, kw = kernel.shape[-2:]
    if not torch.compiler.is_exporting() and kh <= height and kw <= width:  # the common case: one placement, two rolls
        psf = kernel.new_zeros(kernel.shape[:-2] + (height, width))
        psf[..., :kh, :kw] = kernel
        psf = torch.roll(psf, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    else:
        # the size as a tensor: ONNX converters take the integer arguments of remainder as constants
        size = torch.tensor([height, width], device=kernel.device)
        rows = (torch.arange(kh, device=kernel.device) - kh // 2) % size[0]
        cols = (torch.arange(kw, device=kernel.device) - kw // 2) % size[1]
        flat = (rows[:, None] * width + cols[None, :]).reshape(-1)
        psf = kernel.new_zeros(kernel.shape[:-2] + (height * width,))
        psf.index_add_(-1, flat, kernel.reshape(kernel.shape[:-2] + (-1,)))
        psf = psf.reshape(kernel.shape[:-2] + (height, width))
    return torch.fft.fft2(psf)


def zero_fill_upsample(x: Tensor, scale: int) -> Tensor:
    """``S^T``: ``[..., h, w]`` -> ``[..., h*s, w*s]`` with ``x`` at the upper-left pixel of each block, zeros
    elsewhere (the adjoint of upper-left decimation)."""
    if scale == 1:
        return x
    out = x.new_zeros(x.shape[:-2] + (x.shape[-2] * scale, x.shape[-1] * scale))
    out[..., ::scale, ::scale] = x
    return out


def block_mean(x: Tensor, scale: int) -> Tensor:
    """Mean of the ``s x s`` distinct blocks of ``x`` ``[..., s*h, s*w]`` -> ``[..., h, w]`` (block ``(i, j)`` is
    rows ``i*h:(i+1)*h``, columns ``j*w:(j+1)*w``)."""
    if scale == 1:
        return x
    *lead, height, width = x.shape
    return x.reshape(*lead, scale, height // scale, scale, width // scale).mean(dim=(-4, -2))


class DataStep(nn.Module):
    """The closed-form data step. ``prepare`` computes the per-forward Fourier terms; ``forward`` solves for one
    ``alpha``. Parameter-free."""

    @staticmethod
    def prepare(lq: Tensor, kernel: Tensor, scale: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(FB, conj(FB), block_mean(|FB|^2), conj(FB) F(S^T y))`` for LR ``lq`` ``[B, C, h, w]``."""
        height, width = lq.shape[-2] * scale, lq.shape[-1] * scale
        otf = kernel_to_otf(kernel, (height, width))
        otf_conj = torch.conj(otf)
        inv_w = block_mean(otf.real.square() + otf.imag.square(), scale)
        fbfy = otf_conj * torch.fft.fft2(zero_fill_upsample(lq, scale))
        return otf, otf_conj, inv_w, fbfy

    def forward(self, x: Tensor, terms: tuple[Tensor, Tensor, Tensor, Tensor], alpha: Tensor, scale: int) -> Tensor:
        """``x`` ``[B, C, H, W]`` (the previous estimate), ``alpha`` ``[B, 1, 1, 1]`` -> the minimiser (real)."""
        otf, otf_conj, inv_w, fbfy = terms
        fr = torch.fft.fft2(alpha * x).add_(fbfy)
        # Woodbury on the block structure: (FB^H S^T S FB + alpha)^-1 applied to FR
        inv_wbr = block_mean(otf * fr, scale).div_(inv_w + alpha)
        if scale == 1:
            fr.sub_(otf_conj * inv_wbr)
        else:
            *lead, height, width = fr.shape
            h, w = height // scale, width // scale
            fr.reshape(*lead, scale, h, scale, w).sub_(otf_conj.reshape(*otf_conj.shape[:-2], scale, h, scale, w)
                                                        * inv_wbr.reshape(*inv_wbr.shape[:-2], 1, h, 1, w))
        # the solution is real, so its spectrum is Hermitian: invert the half spectrum straight to a real map
        return torch.fft.irfft2(fr.div_(alpha)[..., : fr.shape[-1] // 2 + 1], s=fr.shape[-2:])


# --------------------------------------------------------------------------------------------------------------
# Prior: ResUNet
# --------------------------------------------------------------------------------------------------------------


STRIP_ELEMENTS = 1 << 18
"""Inference splits a residual block's map into strips of about this many elements (1 MiB of float32), at least
``STRIP_ROWS`` rows (the two rows of context above and below each strip are computed twice)."""
STRIP_ROWS = 32


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))``, 3x3 bias-free convolutions: ``[B, C, H, W]`` -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.res = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(channels, channels, 3, padding=1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.res(x).add_(x)  # in place on the fresh conv output: one feature map less at the peak

    def infer(self, x: Tensor, overwrite: bool) -> Tensor:
        """Inference only (no autograd), the same result with less memory. With ``overwrite`` the result is
        written into ``x`` itself (the caller no longer needs it).

        On CPU (float32, oneDNN) the block is two fused oneDNN convolutions, PyTorch's own pointwise fusions (the
        ones its compiler emits): conv + ReLU, then conv accumulated in place onto the block's input, so the
        block holds its input and one map. Elsewhere it runs in strips of rows, holding its input, its output and
        one strip's temporaries."""
        if _fused_conv_available(x):
            conv1, conv2 = self.res[0], self.res[2]
            hidden = torch.ops.mkldnn._convolution_pointwise(
                x, conv1.weight, None, [1, 1], [1, 1], [1, 1], 1, "relu", [None], None)
            out = x if overwrite else x.clone()
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                out, hidden, conv2.weight, None, [1, 1], [1, 1], [1, 1], 1, "add", 1.0, None, [None], None)
        height = x.shape[-2]
        rows = max(STRIP_ROWS, STRIP_ELEMENTS // max(1, x[..., :1, :].numel()))
        if height <= rows + 4:
            out = self.res(x)
            return x.add_(out) if overwrite else out.add_(x)
        out = x if overwrite else torch.empty_like(x)
        above = None  # input rows just above the current strip, saved before they were overwritten
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            low, high = max(0, top - 2), min(height, bottom + 2)  # two 3x3 convolutions: two rows of context
            block = x[..., low:high, :] if above is None else torch.cat((above, x[..., top:high, :]), dim=-2)
            if overwrite and bottom < height:
                above = x[..., bottom - 2:bottom, :].clone()
            residual = self.res(block)[..., top - low:top - low + bottom - top, :]
            out[..., top:bottom, :] = residual.add_(x[..., top:bottom, :])
        return out


def _fused_conv_available(x: Tensor) -> bool:
    """oneDNN's fused pointwise convolutions apply: a CPU float32 channels-last map outside autograd."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and x.is_contiguous(memory_format=torch.channels_last) and not torch.is_grad_enabled()
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))


class ResUNet(nn.Module):
    """The denoising prior: a 4-scale U-Net of residual blocks with additive skips and no global residual.

    ``[B, in_nc, H, W]`` -> ``[B, out_nc, H, W]``; any ``H, W`` (replicate-padded to a multiple of 8, cropped back).

    Args:
        in_nc: input channels (image + noise-level map).
        out_nc: output channels.
        nc: channels at the four scales.
        nb: residual blocks per scale (0 too: the stages are then their down/up-sampling convolutions alone and
            the body is the identity, as in the authors' code).
    """

    def __init__(self, in_nc: int = 4, out_nc: int = 3, nc: Sequence[int] = (64, 128, 256, 512), nb: int = 2) -> None:
        super().__init__()
        if len(nc) != 4:
            raise ValueError(f"nc must list 4 channel counts, got {list(nc)}")
        c1, c2, c3, c4 = nc
        self.m_head = nn.Conv2d(in_nc, c1, 3, padding=1, bias=False)
        self.m_down1 = nn.Sequential(*[ResBlock(c1) for _ in range(nb)], nn.Conv2d(c1, c2, 2, stride=2, bias=False))
        self.m_down2 = nn.Sequential(*[ResBlock(c2) for _ in range(nb)], nn.Conv2d(c2, c3, 2, stride=2, bias=False))
        self.m_down3 = nn.Sequential(*[ResBlock(c3) for _ in range(nb)], nn.Conv2d(c3, c4, 2, stride=2, bias=False))
        self.m_body = nn.Sequential(*[ResBlock(c4) for _ in range(nb)])
        self.m_up3 = nn.Sequential(nn.ConvTranspose2d(c4, c3, 2, stride=2, bias=False),
                                   *[ResBlock(c3) for _ in range(nb)])
        self.m_up2 = nn.Sequential(nn.ConvTranspose2d(c3, c2, 2, stride=2, bias=False),
                                   *[ResBlock(c2) for _ in range(nb)])
        self.m_up1 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 2, stride=2, bias=False),
                                   *[ResBlock(c1) for _ in range(nb)])
        self.m_tail = nn.Conv2d(c1, out_nc, 3, padding=1, bias=False)

    @torch.no_grad()
    def start_as_identity(self) -> None:
        """Initialise so the output equals the first ``out_nc`` input channels: the head copies them into its
        first channels and the tail copies them back, the last convolution of every residual block and the
        deepest skip's transposed convolution start at zero (so the encoder/decoder path adds nothing until
        trained; gradients reach it through those zero weights)."""
        out_nc = self.m_tail.weight.shape[0]
        if self.m_head.weight.shape[0] < out_nc:
            raise ValueError("identity start needs nc[0] >= out_nc")
        self.m_head.weight[:out_nc].zero_()
        self.m_tail.weight.zero_()
        for c in range(out_nc):
            self.m_head.weight[c, c, 1, 1] = 1.0
            self.m_tail.weight[c, c, 1, 1] = 1.0
        for module in self.modules():
            if isinstance(module, ResBlock):
                module.res[2].weight.zero_()
        self.m_up1[0].weight.zero_()

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        # channels-last: oneDNN's native layout on CPU, so convolutions run without reordering every feature map
        x = F.pad(x, (0, -width % 8, 0, -height % 8), mode="replicate").contiguous(memory_format=torch.channels_last)
        if not torch.is_grad_enabled() and not torch.compiler.is_exporting():  # exported: the plain graph below
            return self._infer(x)[..., :height, :width].contiguous()
        x1 = self.m_head(x)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        x = self.m_body(x4)
        x = self.m_up3(x.add_(x4))  # the skips add in place into the decoder's fresh maps
        x = self.m_up2(x.add_(x3))
        x = self.m_up1(x.add_(x2))
        x = self.m_tail(x.add_(x1))
        # narrow, not a slice: the result's size is the input's exactly, also for symbolic sizes while exporting (a
        # slice's min(size, end) would nest one level deeper in every unfolding iteration)
        return x.narrow(-2, 0, height).narrow(-1, 0, width).contiguous()

    def _infer(self, x: Tensor) -> Tensor:
        """The forward without autograd: residual blocks in strips (:meth:`ResBlock.infer`), overwriting every map
        no longer needed, and each skip released as soon as it is added."""

        def stage(blocks: nn.Sequential, h: Tensor, keep_input: bool) -> Tensor:
            for block in blocks:
                if isinstance(block, ResBlock):
                    h = block.infer(h, overwrite=not keep_input)
                else:
                    h = block(h)
                keep_input = False
            return h

        skips = [self.m_head(x)]
        del x
        for down in (self.m_down1, self.m_down2, self.m_down3):
            skips.append(stage(down, skips[-1], keep_input=True))
        x = stage(self.m_body, skips[-1], keep_input=True)
        for up in (self.m_up3, self.m_up2, self.m_up1):
            x = stage(up, x.add_(skips.pop()), keep_input=False)
        return self.m_tail(x.add_(skips.pop()))

    def forward_reference(self, x: Tensor) -> Tensor:
        """The same function written plainly (as the authors do): default layout, out-of-place adds."""
        height, width = x.shape[-2:]
        x = F.pad(x, (0, -width % 8, 0, -height % 8), mode="replicate")

        def stage(blocks: nn.Sequential, h: Tensor) -> Tensor:
            for block in blocks:
                h = h + block.res(h) if isinstance(block, ResBlock) else block(h)
            return h

        x1 = self.m_head(x)
        x2 = stage(self.m_down1, x1)
        x3 = stage(self.m_down2, x2)
        x4 = stage(self.m_down3, x3)
        x = stage(self.m_body, x4)
        x = stage(self.m_up3, x + x4)
        x = stage(self.m_up2, x + x3)
        x = stage(self.m_up1, x + x2)
        x = self.m_tail(x + x1)
        return x[..., :height, :width]


class HyperNet(nn.Module):
    """``(sigma, s)`` ``[B, 2, 1, 1]`` -> ``[B, 2K, 1, 1]`` positive: ``alpha_1..K`` then ``beta_1..K``."""

    def __init__(self, in_nc: int = 2, out_nc: int = 16, channels: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(in_nc, channels, 1), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1),
                                 nn.ReLU(inplace=True), nn.Conv2d(channels, out_nc, 1), nn.Softplus())

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x) + 1e-6


# --------------------------------------------------------------------------------------------------------------
# USRNet
# --------------------------------------------------------------------------------------------------------------


@ARCH_REGISTRY.register()
class USRNet(nn.Module):
    """USRNet: ``forward(lq, kernel, sigma, scale)``.

    Inputs: ``lq`` ``[B, C, h, w]`` in [0, 1]; ``kernel`` ``[B or 1, 1, kh, kw]`` (or ``[kh, kw]``), any size, one
    per sample, normalised to sum to one (a warning when it did not); ``sigma`` the noise level in [0, 1] units
    (a number, ``[B]`` or ``[B, 1, 1, 1]``); ``scale`` an integer >= 1 (one per batch). Output ``[B, C, h*s, w*s]``.

    Args:
        n_iter: unfolding iterations K (8 in the paper, 6 for USRNet-tiny).
        h_nc: hidden channels of the hyper-parameter net.
        in_nc: prior input channels (colour channels + 1 for the noise-level map).
        out_nc: prior output channels.
        nc: prior channels at its four scales.
        nb: residual blocks per prior scale (>= 0).
        init: ``default`` (PyTorch's initialisation, as the authors train) or ``identity`` (the prior starts as the
            identity on the image channels, see :meth:`ResUNet.start_as_identity`: the unfolding then starts as K
            plain data steps, a regularised deconvolution, and training refines it; converges far faster in
            short CPU runs). Weights only: the state dict is the same.
    """

    def __init__(self, n_iter: int = 8, h_nc: int = 64, in_nc: int = 4, out_nc: int = 3,
                 nc: Sequence[int] = (64, 128, 256, 512), nb: int = 2, init: Init = "default") -> None:
        super().__init__()
        if init not in ("default", "identity"):
            raise ValueError(f"init={init!r} is not supported; allowed values: default, identity")
        if nb < 0:
            raise ValueError(f"nb must be >= 0, got {nb}")
        self.n_iter = n_iter
        self.d = DataStep()
        self.p = ResUNet(in_nc, out_nc, nc, nb)
        self.h = HyperNet(2, 2 * n_iter, h_nc)
        if init == "identity":
            self.p.start_as_identity()
        self.register_load_state_dict_pre_hook(_accept_authors_keys)

    @staticmethod
    def canonical_keys(state: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
        """The authors' other spellings renamed to ours (:func:`usrnet_canonical_keys`): what every loader asks a
        network class before comparing keys (:func:`hatast.utils.checkpoint.check_fit`, ``detect``)."""
        return usrnet_canonical_keys(state)

    def forward(self, lq: Tensor, kernel: Tensor, sigma: Tensor | float, scale: int) -> Tensor:
        scale = _check_scale(scale)
        batch = lq.shape[0]
        kernel = _batch_kernel(kernel, lq)
        sigma = torch.as_tensor(sigma, dtype=lq.dtype, device=lq.device).reshape(-1, 1, 1, 1).expand(batch, 1, 1, 1)
        # exporting: the data step in float64, because onnxruntime's DFT of lengths other than powers of two loses
        # precision in float32 (output errors near 1e-4 where PyTorch's FFT stays near 1e-6)
        step = torch.float64 if torch.compiler.is_exporting() else lq.dtype
        terms = self.d.prepare(lq.to(step), kernel.to(step), scale)
        x = F.interpolate(lq, scale_factor=scale, mode="nearest") if scale > 1 else lq
        ab = self.h(torch.cat((sigma, torch.full_like(sigma, float(scale))), dim=1))
        for i in range(self.n_iter):
            x = self.d(x.to(step), terms, ab[:, i:i + 1].to(step), scale).to(lq.dtype)
            noise_map = ab[:, self.n_iter + i:self.n_iter + i + 1].expand(-1, 1, x.shape[-2], x.shape[-1])
            prior_input = torch.cat((x, noise_map), dim=1)
            del x  # the prior's input holds it: one copy during the prior, not two
            x = self.p(prior_input)
        return x


def _check_scale(scale) -> int:
    value = int(scale)
    if value != scale or value < 1:
        raise ValueError(f"USRNet takes an integer scale >= 1, got {scale}")
    return value


def _batch_kernel(kernel: Tensor, lq: Tensor) -> Tensor:
    """``kernel`` as ``[B, 1, kh, kw]`` in ``lq``'s dtype/device, each summing to one."""
    kernel = torch.as_tensor(kernel, device=lq.device, dtype=lq.dtype)
    if kernel.dim() == 2:
        kernel = kernel[None, None]
    elif kernel.dim() == 3:
        kernel = kernel[:, None]
    if kernel.dim() != 4 or kernel.shape[1] != 1 or kernel.shape[0] not in (1, lq.shape[0]):
        raise ValueError(f"kernel must be [kh, kw], [B, kh, kw] or [B, 1, kh, kw] with B = 1 or {lq.shape[0]}, "
                         f"got {list(kernel.shape)}")
    total = kernel.sum(dim=(-2, -1), keepdim=True)
    if not torch.compiler.is_compiling() and bool((total - 1).abs().max() > 1e-3):
        if bool((total <= 0).any()):
            raise ValueError("kernel sums to zero or less: not a blur kernel")
        warnings.warn(f"blur kernel sums to {total.flatten().tolist()}, not 1: normalised", stacklevel=3)
    return (kernel / total).expand(lq.shape[0], 1, -1, -1)


_AUTHORS_SPELLINGS = (
    # nb = 1: m_body is the lone ResBlock itself
    (re.compile(r"p\.m_body\.res\."), "p.m_body.0.res."),
    # nb = 0: every down/up stage is its lone (transposed) convolution
    (re.compile(r"p\.(m_down[123]|m_up[123])\.(weight|bias)$"), r"p.\1.0.\2"),
)
"""The authors' collapsed spellings (their ``sequential()`` returns a single module unwrapped) -> ours. Their
``m_head``/``m_tail`` (one convolution), ``ResBlock.res`` (three modules) and ``h.mlp`` (an ``nn.Sequential``) never
collapse, and at ``nb >= 2`` no module does."""


def _authors_renames(keys, prefix: str = "") -> dict[str, str]:
    """``{authors' key: ours}`` for the keys of ``keys`` under ``prefix`` spelled the authors' collapsed way."""
    renames = {}
    for key in keys:
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        for pattern, replacement in _AUTHORS_SPELLINGS:
            if pattern.match(rest):
                renames[key] = prefix + pattern.sub(replacement, rest, count=1)
                break
    return renames


def usrnet_canonical_keys(state: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    """``state`` with the keys the authors' code writes at ``nb = 1`` (``p.m_body.res.*``) and ``nb = 0``
    (``p.m_down1.weight``, ``p.m_up3.weight``, ...) spelled as hatast's USRNet names them (``p.m_body.0.res.*``,
    ``p.m_down1.0.weight``, ...); ``state`` itself when nothing needs renaming. Tensors are not copied."""
    renames = _authors_renames(state)
    if not renames:
        return state
    return {renames.get(key, key): value for key, value in state.items()}


def _accept_authors_keys(module, state_dict, prefix, *args) -> None:
    """Load-state-dict pre-hook: ``USRNet.load_state_dict`` takes the authors' collapsed spellings too."""
    for old, new in _authors_renames(list(state_dict), prefix).items():
        state_dict[new] = state_dict.pop(old)


def usrnet_config_from_state_dict(state: Mapping[str, Tensor]) -> dict:
    """USRNet's constructor arguments read from tensor shapes (either spelling, see :func:`usrnet_canonical_keys`)."""
    state = usrnet_canonical_keys(state)
    nb = len({key.split(".")[2] for key in state if key.startswith("p.m_body.")})
    # the transposed convolutions exist at every depth: weights [in, out, 2, 2], from scale 4 down to scale 1
    up3, up2, up1 = (tensor_shape(state, f"p.m_up{i}.0.weight", 4) for i in (3, 2, 1))
    nc = [up1[1], up1[0], up2[0], up3[0]]
    in_nc, out_nc = tensor_shape(state, "p.m_head.weight", 4)[1], tensor_shape(state, "p.m_tail.weight", 4)[0]
    if in_nc != out_nc + 1:  # the prior reads the image being restored and a noise-level map
        raise ValueError(f"'p.m_head.weight' reads {in_nc} channels and 'p.m_tail.weight' writes {out_nc}, where "
                         "USRNet's prior reads its output's channels and one noise-level map")
    return {"n_iter": tensor_shape(state, "h.mlp.4.weight", 4)[0] // 2,
            "h_nc": tensor_shape(state, "h.mlp.0.weight", 4)[0], "in_nc": in_nc, "out_nc": out_nc, "nc": nc, "nb": nb}


# --------------------------------------------------------------------------------------------------------------
# Reference path: the same equations written the straightforward way (as the authors' code does): the transfer
# function and its terms recomputed every iteration, the s x s block stack materialised and the block mean tiled
# back with ``repeat``. Tests compare against it; ``benchmarks/bench_usrnet.py`` times it.
# --------------------------------------------------------------------------------------------------------------


def _stack_blocks(x: Tensor, scale: int) -> Tensor:
    """``[..., s*h, s*w]`` -> ``[..., h, w, s*s]``, a copy of every block."""
    blocks = torch.stack(torch.chunk(x, scale, dim=-2), dim=-1)
    return torch.cat(torch.chunk(blocks, scale, dim=-2), dim=-1)


def reference_data_step(x: Tensor, lq: Tensor, kernel: Tensor, alpha: Tensor, scale: int) -> Tensor:
    """One data step from scratch: transfer function, ``|FB|^2``, ``F(S^T y)``, block stacks, all recomputed."""
    height, width = x.shape[-2:]
    otf = kernel_to_otf(kernel, (height, width))
    otf_conj = torch.conj(otf)
    otf_power = torch.pow(torch.abs(otf), 2)
    fbfy = otf_conj * torch.fft.fftn(zero_fill_upsample(lq, scale), dim=(-2, -1))
    fr = fbfy + torch.fft.fftn(alpha * x, dim=(-2, -1))
    fbr = torch.mean(_stack_blocks(otf * fr, scale), dim=-1)
    inv_w = torch.mean(_stack_blocks(otf_power, scale), dim=-1)
    inv_wbr = fbr / (inv_w + alpha)
    fx = (fr - otf_conj * inv_wbr.repeat(1, 1, scale, scale)) / alpha
    return torch.real(torch.fft.ifftn(fx, dim=(-2, -1)))


def reference_forward(net: USRNet, lq: Tensor, kernel: Tensor, sigma: Tensor | float, scale: int) -> Tensor:
    """``net``'s output computed with :func:`reference_data_step` and the prior's plain forward (same weights)."""
    scale = _check_scale(scale)
    kernel = _batch_kernel(kernel, lq)
    sigma = torch.as_tensor(sigma, dtype=lq.dtype, device=lq.device).reshape(-1, 1, 1, 1).expand(lq.shape[0], 1, 1, 1)
    x = F.interpolate(lq, scale_factor=scale, mode="nearest")
    ab = net.h(torch.cat((sigma, torch.tensor(float(scale)).type_as(sigma).expand_as(sigma)), dim=1))
    for i in range(net.n_iter):
        x = reference_data_step(x, lq, kernel, ab[:, i:i + 1], scale)
        x = net.p.forward_reference(
            torch.cat((x, ab[:, net.n_iter + i:net.n_iter + i + 1].repeat(1, 1, x.size(2), x.size(3))), dim=1))
    return x
