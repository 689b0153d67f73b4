"""Reading and writing user images: the one image I/O path of the command-line tools and of BasicSR's validation
image saves (datasets read through BasicSR's FileClient).

* Reading applies the EXIF orientation, so a phone photo is processed as it is displayed, not as its sensor stored it.
* Pixels stay in their stored integer type and channel order (OpenCV's BGR) until a network needs floats, so a
  look-up table never holds a float copy of an image.
* Writing encodes in memory and writes the bytes from Python through the atomic writer (temporary file, then
  rename): no file name reaches OpenCV, whose C++ code crashed on names that are not valid UTF-8. Float results are
  converted to integers in strips of rows, so writing holds the result, one integer copy and the encoded file.
* Reading likewise hands OpenCV bytes that Python read, never a file name.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .errors import HatastError
from .files import write_bytes_atomic

if TYPE_CHECKING:  # torch is imported where a tensor is made: the table path never needs it
    from torch import Tensor

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
EXIF_ORIENTATION_TAG = 0x0112
_STRIP_ROWS = 256
_DAMAGE_WORDS = ("premature end", "corrupt", "incomplete", "truncat")


class ImageError(HatastError):
    """An image that cannot be processed, with the file and the reason."""


@dataclass
class Image:
    """An image as stored, plus what is needed to write results back in its format.

    Attributes:
        bgr: ``[H, W, 3]`` uint8 or uint16 in OpenCV's channel order (grey files are expanded to three channels).
        alpha: ``[H, W]`` of the same type, or None.
        max_value: 255 for 8-bit files, 65535 for 16-bit ones.
        grey: the file held one channel.
    """

    bgr: np.ndarray
    alpha: np.ndarray | None
    max_value: int
    grey: bool = False

    @property
    def pixels(self) -> np.ndarray:
        """The colour as the file stores it: ``[H, W]`` for grey files, else ``[H, W, 3]`` BGR (alpha left out)."""
        return self.bgr[..., 0] if self.grey else self.bgr

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.bgr.shape[0], self.bgr.shape[1]

    def tensor(self) -> Tensor:
        """``[1, 3, H, W]`` float32 RGB in [0, 1], what networks read."""
        import torch

        rgb = torch.from_numpy(self.bgr[..., ::-1].copy()).permute(2, 0, 1)[None]
        return rgb.float().div_(self.max_value)


def apply_exif_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn ``[H, W, ...]`` pixels stored with EXIF ``orientation`` (1-8) into the displayed image."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],                  # mirrored left-right
        3: lambda a: a[::-1, ::-1],               # rotated 180
        4: lambda a: a[::-1],                     # mirrored top-bottom
        5: lambda a: a.swapaxes(0, 1),            # transposed
        6: lambda a: np.rot90(a, -1),             # rotated 90 clockwise to display
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],  # transversed
        8: lambda a: np.rot90(a, 1),              # rotated 90 counter-clockwise to display
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(pixels))


def image_header(path: str | Path) -> tuple[int, int, int] | None:
    """(height, width, EXIF orientation) as stored, from the file's header (no decoding); None when Pillow cannot
    read it."""
    try:
        from PIL import Image as PILImage

        with PILImage.open(path) as img:
            width, height = img.size
            if img.format == "PNG":  # Pillow's PNG getexif() decodes the whole image to look for a late eXIf chunk
                exif = PILImage.Exif()
                if img.info.get("exif"):
                    exif.load(img.info["exif"])
            else:
                exif = img.getexif()
            orientation = exif.get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001  (not an image Pillow knows)
        return None
    return height, width, orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation tag of ``path`` (1 when absent or unreadable)."""
    header = image_header(path)
    return header[2] if header else 1


@contextlib.contextmanager
def _decoder_messages() -> Iterator[list[str]]:
    """Collect what the C decoders (libpng, libjpeg, OpenCV's log) print on file descriptor 2 while decoding, so a
    damaged file gives one error line that quotes them instead of stray lines around it."""
    sys.stderr.flush()
    saved = os.dup(2)
    messages: list[str] = []
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            messages += [line.strip() for line in sink.read().decode(errors="replace").splitlines() if line.strip()]


def decode_file(path: str | Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """The pixels of an image file as stored (no EXIF turn), decoded by OpenCV from bytes that Python read: the one
    place image files are decoded. Raises :class:`ImageError` for an unreadable, empty, undecodable or partly
    decoded file."""
    path = Path(path)
    try:
        encoded = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise ImageError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not encoded.size:
        raise ImageError(f"{path}: not a readable image (empty file)")
    with _decoder_messages() as messages:
        data = cv2.imdecode(encoded, flags)
    if data is None:
        detail = f" ({messages[-1][:160]})" if messages else ""
        raise ImageError(f"{path}: not a readable image{detail}")
    damage = [m for m in messages if any(word in m.lower() for word in _DAMAGE_WORDS)]
    if damage:  # decoded, but only in part (a truncated JPEG comes back with its missing rows grey)
        raise ImageError(f"{path}: damaged image, decoded only in part ({damage[0][:160]})")
    return data


def read_image(path: str | Path) -> Image:
    """Read an 8- or 16-bit grey, RGB or RGBA image, turned as EXIF orientation says it is displayed."""
    path = Path(path)
    data = decode_file(path)
    if data.dtype == np.uint8:
        max_value = 255
    elif data.dtype == np.uint16:
        max_value = 65535
    else:
        raise ImageError(f"{path}: {data.dtype} pixels are not supported (8- or 16-bit integers only)")
    if data.ndim == 2:
        data = data[..., None]
    channels = data.shape[2]
    if channels not in (1, 3, 4):
        raise ImageError(f"{path}: {channels} channels are not supported (grey, RGB or RGBA)")
    data = apply_exif_orientation(data, exif_orientation(path))
    alpha = np.ascontiguousarray(data[..., 3]) if channels == 4 else None
    bgr = np.repeat(data, 3, axis=2) if channels == 1 else np.ascontiguousarray(data[..., :3])
    return Image(bgr, alpha, max_value, grey=channels == 1)


def upscale_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of an alpha plane to the result's ``(height, width)``, in its own integer type (models are
    trained on colour only)."""
    return cv2.resize(alpha, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def to_integers(result: Tensor | np.ndarray, max_value: int) -> np.ndarray:
    """``[1, 3, H, W]`` float RGB in [0, 1] -> ``[H, W, 3]`` BGR integers, converted a strip of rows at a time; an
    integer ``[H, W, 3]`` BGR array passes through."""
    if isinstance(result, np.ndarray):
        return result
    dtype = np.uint16 if max_value > 255 else np.uint8
    _, _, h, w = result.shape
    out = np.empty((h, w, 3), dtype)
    for top in range(0, h, _STRIP_ROWS):
        strip = result[0, [2, 1, 0], top:top + _STRIP_ROWS].float().clamp_(0, 1).mul_(max_value).round_()
        out[top:top + _STRIP_ROWS] = strip.permute(1, 2, 0).cpu().numpy()
    return out


def write_image(path: str | Path, result: Tensor | np.ndarray, alpha: np.ndarray | None = None,
                max_value: int = 255) -> None:
    """Write a result atomically, in the format of ``path``'s extension.

    Args:
        result: ``[1, 3, H, W]`` float RGB in [0, 1] (a network's output), or ``[H, W, 3]`` BGR integers (a table's).
        alpha: ``[H, W]`` integers of the output's type, or None.
        max_value: 255 for 8-bit output, 65535 for 16-bit.
    """
    path = Path(path)
    pixels = to_integers(result, max_value)
    if alpha is not None:
        pixels = np.concatenate([pixels, alpha[..., None].astype(pixels.dtype)], axis=2)
    try:
        imwrite_atomic(pixels, path)
    except OSError as err:
        raise ImageError(f"{path}: could not write the image ({err.strerror or err})") from None


def encode_image(img: np.ndarray, suffix: str, params=None) -> memoryview:
    """``img`` encoded in the format of ``suffix`` (``'.png'``), in memory: no file name ever reaches a C library
    (OpenCV crashed on names that are not valid UTF-8)."""
    try:
        ok, encoded = cv2.imencode(suffix, img, params or [])
    except cv2.error as err:
        raise ImageError(f"cannot encode a {img.dtype} image of shape {img.shape} as {suffix} "
                         f"({str(err).strip().splitlines()[-1][:120]})") from None
    if not ok:
        raise ImageError(f"cannot encode a {img.dtype} image of shape {img.shape} as {suffix}")
    return encoded.data


def imwrite_atomic(img: np.ndarray, file_path: str | os.PathLike, params=None, auto_mkdir: bool = True) -> None:
    """``basicsr.utils.imwrite``'s interface: the image encoded in memory in the format of the file's extension
    (:func:`encode_image`), then written by Python through the atomic writer (temporary file, rename)."""
    suffix = Path(file_path).suffix.lower() or ".png"
    write_bytes_atomic(file_path, encode_image(img, suffix, params))
