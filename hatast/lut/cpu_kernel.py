"""Fused CPU kernels for look-up tables, compiled by numba (no C build step; parallel over image rows).

The steps of a table, each written once: (a) gather a receptive field and walk its simplex (:func:`_simplex_walk`),
interpolating any number ``m`` of values; (b) sum the rotations in the original frame (:func:`_ensemble_pixel`);
(c) place the ``m`` values where the :class:`~hatast.lut.fields.OutputLayout` says (an ``r x r`` patch, ``m`` maps),
through flat write offsets, so one kernel serves every layout and memory order; (d) keep the sums, or round an
int8 table's sums to 8-bit pixels in the same pass. The kernels built from them:

* :func:`ensemble`: any table on uint8 planes (int8: exact integer sums, or pixels with the authors' rounding, SR-LUT
  inference being :func:`upscale_int8`; float32: the forward of LUT-aware fine-tuning); tests hold it equal in every
  value to the torch path (:mod:`hatast.lut.simplex`);
* two faster forms of :func:`ensemble` for the fields every model uses, equal to it in every value (a test holds
  them so): :func:`_block_kernel` (S with the ensemble: a 2x2 block's remainders sorted once for the four pixels
  whose rotations read it) and :func:`_unrotated_kernel` (a 4-pixel field without the ensemble, IM-LUT's refiner:
  branch-free rows that LLVM vectorises);
* :func:`ensemble_grad`: the gradient with respect to a float table (a scatter of the output gradient onto the
  ``n + 1`` corners each pixel read), equal to what autograd computes through the torch path.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np

from ..utils.cache import cache_dir, writable_dir
from ..utils.padding import reflect_indices
from .fields import OutputLayout, ReceptiveField, padding, rotated_offsets, square_blocks
from .lattice import AUTHORS_S_ORDER, ensemble_bound, index_strides, rounding_map

try:
    import numba
except ImportError:  # the torch path is the fallback
    numba = None


def available() -> bool:
    """Whether numba is installed, so the fused kernels can run."""
    return numba is not None


@functools.lru_cache(maxsize=1)
def numba_cache_dir() -> str | None:
    """Where numba caches hatast's compiled kernels: the user's ``NUMBA_CACHE_DIR`` when set (before or after
    numba was imported), else :func:`~hatast.utils.cache.cache_dir` ``("numba")``; never the package's own
    ``__pycache__``. ``None`` (compile in memory in each process) when that folder cannot be created or written."""
    folder = numba.config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR") or cache_dir("numba")
    return str(folder) if writable_dir(folder) else None


@contextlib.contextmanager
def _numba_cache_at(folder: str):
    """numba's cache settings pointed at ``folder`` only while hatast's functions are decorated (the locator is
    chosen then), so the user's own numba functions keep theirs; the only locator allowed is the user-provided
    folder, so numba never falls back to the package's ``__pycache__``."""
    config = numba.config
    saved = {name: getattr(config, name) for name in ("CACHE_DIR", "CACHE_LOCATOR_CLASSES") if hasattr(config, name)}
    config.CACHE_DIR = folder
    if "CACHE_LOCATOR_CLASSES" in saved:
        config.CACHE_LOCATOR_CLASSES = "UserProvidedCacheLocator"
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(config, name, value)


def _jit(parallel: bool = False, inline: bool = False):
    """numba's lazy compilation (first call), cached on disk in :func:`numba_cache_dir` so later processes load it
    in well under a second; every numba function of hatast is compiled through here."""

    def wrap(function):
        if numba is None:
            return function
        options = dict(parallel=parallel, nogil=True, inline="always" if inline else "never")
        folder = numba_cache_dir()
        if folder is not None:
            try:
                with _numba_cache_at(folder):
                    compiled = numba.njit(cache=True, **options)(function)
            except RuntimeError:  # no usable cache folder after all: compile in each process
                pass
            else:
                where = getattr(getattr(compiled, "_cache", None), "cache_path", folder)  # numba's choice
                if os.path.commonpath([os.path.abspath(where), os.path.abspath(folder)]) == os.path.abspath(folder):
                    return compiled
        return numba.njit(cache=False, **options)(function)

    return wrap


@_jit(inline=True)  # inlined into the kernels: about 3% faster than a call per pixel and rotation here
def _simplex_walk(padded, c, y, x, offsets, k, strides, interval, authors_order, remainder, order, corners, weights):
    """Corners (table rows) and integer weights (summing to ``q``) of the simplex holding the receptive field of
    rotation ``k`` at position ``(y, x)`` of padded plane ``c``; fills ``corners[:n + 1]`` and ``weights[:n + 1]``."""
    n = offsets.shape[1]
    if n == 4:  # every field so far: the scalar walk, written into the arrays
        (corners[0], corners[1], corners[2], corners[3], corners[4], weights[0], weights[1], weights[2], weights[3],
         weights[4]) = _walk4(padded, c, y, x, offsets, k, strides, interval, authors_order)
        return
    q = np.int32(1 << interval)
    mask = q - 1
    corner = 0
    for j in range(n):
        v = np.int32(padded[c, y + offsets[k, j, 0], x + offsets[k, j, 1]])
        corner += (v >> interval) * strides[j]
        remainder[j] = v & mask
        order[j] = j
    for j in range(1, n):  # stable insertion sort, decreasing remainders
        t = order[j]
        i = j - 1
        while i >= 0 and remainder[order[i]] < remainder[t]:
            order[i + 1] = order[i]
            i -= 1
        order[i + 1] = t
    previous = q
    for j in range(n + 1):
        f = remainder[order[j]] if j < n else 0
        weights[j] = previous - f
        previous = f
        corners[j] = corner
        if j < n:
            corner += strides[order[j]]


@_jit(inline=True)
def _sort4(r0, r1, r2, r3):
    """Four remainders sorted decreasing by a branch-free sorting network, as keys ``r << 2 | (3 - j)`` of input
    ``j`` (equal remainders stay in input order)."""
    a, b, d, e = (r0 << 2) | 3, (r1 << 2) | 2, (r2 << 2) | 1, (r3 << 2) | 0
    a, b = max(a, b), min(a, b)
    d, e = max(d, e), min(d, e)
    a, d = max(a, d), min(a, d)
    b, e = max(b, e), min(b, e)
    b, d = max(b, d), min(b, d)
    return a, b, d, e


@_jit(inline=True)
def _base_corner4(v0, v1, v2, v3, interval, s0, s1, s2, s3):
    """The table row of the lattice point below four pixel values, with input strides ``s0..s3``."""
    return (v0 >> interval) * s0 + (v1 >> interval) * s1 + (v2 >> interval) * s2 + (v3 >> interval) * s3


@_jit(inline=True)
def _walk_values4(v0, v1, v2, v3, interval, strides):
    """The walk of a 4-pixel field with values ``v0..v3`` (int32): five corners and their integer weights (summing
    to ``q``), in walk order."""
    mask = np.int32((1 << interval) - 1)
    q = np.int32(1 << interval)
    corner = _base_corner4(v0, v1, v2, v3, interval, strides[0], strides[1], strides[2], strides[3])
    a, b, d, e = _sort4(v0 & mask, v1 & mask, v2 & mask, v3 & mask)
    c1 = corner + strides[3 - (a & 3)]
    c2 = c1 + strides[3 - (b & 3)]
    c3 = c2 + strides[3 - (d & 3)]
    return (corner, c1, c2, c3, c3 + strides[3 - (e & 3)], q - (a >> 2), (a >> 2) - (b >> 2), (b >> 2) - (d >> 2),
            (d >> 2) - (e >> 2), e >> 2)


@_jit(inline=True)
def _walk4(padded, c, y, x, offsets, k, strides, interval, authors_order):
    """:func:`_simplex_walk` for 4-pixel fields (every field so far) in scalars, without scratch arrays
    (:func:`_walk_values4`), or in the authors' corner order where they take it."""
    v0 = np.int32(padded[c, y + offsets[k, 0, 0], x + offsets[k, 0, 1]])
    v1 = np.int32(padded[c, y + offsets[k, 1, 0], x + offsets[k, 1, 1]])
    v2 = np.int32(padded[c, y + offsets[k, 2, 0], x + offsets[k, 2, 1]])
    v3 = np.int32(padded[c, y + offsets[k, 3, 0], x + offsets[k, 3, 1]])
    mask = np.int32((1 << interval) - 1)
    r0, r1, r2, r3 = v0 & mask, v1 & mask, v2 & mask, v3 & mask
    if not (authors_order and r2 > r3 > r0 > r1):
        return _walk_values4(v0, v1, v2, v3, interval, strides)
    o0, o1, o2, o3 = AUTHORS_S_ORDER
    rs = (r0, r1, r2, r3)
    corner = _base_corner4(v0, v1, v2, v3, interval, strides[0], strides[1], strides[2], strides[3])
    c1 = corner + strides[o0]
    c2 = c1 + strides[o1]
    c3 = c2 + strides[o2]
    q = np.int32(1 << interval)
    return corner, c1, c2, c3, c3 + strides[o3], q - rs[o0], rs[o0] - rs[o1], rs[o1] - rs[o2], rs[o2] - rs[o3], rs[o3]


@_jit(inline=True)
def _walk_scratch(n):
    """Per-thread scratch arrays of :func:`_simplex_walk`: remainders, their order, corners, weights."""
    return np.empty(n, np.int32), np.empty(n, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1, np.int32)


@_jit(inline=True)
def _ensemble_pixel(padded, p, y, x, table, offsets, placement, strides, interval, rotations, authors_order, scratch,
                    integer, patch, acc):
    """(a) + (b): the receptive field of pixel ``(p, y, x)`` interpolated in every rotation and summed in the
    original frame into ``acc`` (``m`` values). ``integer``: an int8 table, multiplied in int32 (exact); else a
    float table, in float32."""
    remainder, order, corners, weights = scratch
    n = offsets.shape[1]
    m = table.shape[1]
    for t in range(m):  # loops, not slice assignments: those cost a view per pixel
        acc[t] = 0
    for k in range(rotations):
        if n == 4:  # the scalar walk without the arrays: twice as fast for a one-output table
            c0, c1, c2, c3, c4, w0, w1, w2, w3, w4 = _walk4(padded, p, y, x, offsets, k, strides, interval,
                                                            authors_order)
            for t in range(m):
                if integer:
                    acc[placement[k, t]] += (w0 * np.int32(table[c0, t]) + w1 * np.int32(table[c1, t])
                                             + w2 * np.int32(table[c2, t]) + w3 * np.int32(table[c3, t])
                                             + w4 * np.int32(table[c4, t]))
                else:
                    acc[placement[k, t]] += (np.float32(w0) * np.float32(table[c0, t])
                                             + np.float32(w1) * np.float32(table[c1, t])
                                             + np.float32(w2) * np.float32(table[c2, t])
                                             + np.float32(w3) * np.float32(table[c3, t])
                                             + np.float32(w4) * np.float32(table[c4, t]))
            continue
        _simplex_walk(padded, p, y, x, offsets, k, strides, interval, authors_order, remainder, order, corners,
                      weights)
        for t in range(m):
            patch[t] = 0
        for j in range(n + 1):
            w = weights[j]  # locals: loads from arrays in the loop would not be hoisted
            corner = corners[j]
            if w != 0:  # ties and zero remainders are common in flat regions
                if integer:
                    for t in range(m):
                        patch[t] += w * np.int32(table[corner, t])
                else:
                    wf = np.float32(w)
                    for t in range(m):
                        patch[t] += wf * np.float32(table[corner, t])
        for t in range(m):
            acc[placement[k, t]] += patch[t]


@_jit(parallel=True)
def _ensemble_kernel(padded, table, offsets, placement, strides, interval, pad, rotations, authors_order, steps,
                     write, final, bound, to_pixels, integer, acc_type, out):
    """The ensemble sum of every pixel, (c) placed at ``out[p * steps[0] + y * steps[1] + x * steps[2] + write[t]]``
    (flat) and (d) either stored as is or turned into 8-bit pixels through ``final`` (int8 tables). Parallel over
    rows, planes innermost: an HWC image's channels are written next to each other."""
    planes, padded_height, padded_width = padded.shape
    height = padded_height - 2 * pad
    width = padded_width - 2 * pad
    m = table.shape[1]
    for y in numba.prange(height):
        scratch = _walk_scratch(offsets.shape[1])
        patch = np.empty(m, dtype=acc_type.dtype)  # one rotation, rotated frame
        acc = np.empty(m, dtype=acc_type.dtype)
        for x in range(width):
            for p in range(planes):
                _ensemble_pixel(padded, p, y + pad, x + pad, table, offsets, placement, strides, interval, rotations,
                                authors_order, scratch, integer, patch, acc)
                at = p * steps[0] + y * steps[1] + x * steps[2]
                if to_pixels:
                    for t in range(m):
                        out[at + write[t]] = final[np.int64(acc[t]) + bound]  # typed for float tables too
                else:
                    for t in range(m):
                        out[at + write[t]] = acc[t]


@_jit(inline=True)
def _unit_to_pixel(value):
    """A float intensity in [0, 1] (clipped) -> uint8, half up: the rounding every IM-LUT output goes through."""
    level = min(max(value * np.float32(255), np.float32(0)), np.float32(255))
    return np.uint8(np.floor(level + np.float32(0.5)))


@_jit(parallel=True)
def _onto_kernel(base, sums, step, out):
    """``out [H, W, P]`` = ``base [P, H, W]`` plus ``sums [P, H, W]`` times ``step``, as pixels
    (:func:`_unit_to_pixel`)."""
    planes, height, width = base.shape
    for y in numba.prange(height):
        for x in range(width):
            for p in range(planes):
                out[y, x, p] = _unit_to_pixel(base[p, y, x] + np.float32(sums[p, y, x]) * step)


@_jit(parallel=True)
def _unrotated_kernel(padded, table, offsets, strides, interval, pad, steps, write, final, bound, to_pixels, integer,
                      base, step, out):
    """:func:`_ensemble_kernel` for a 4-pixel field without the rotation ensemble (IM-LUT's refiner): one output
    value of a whole row per loop, with no data-dependent branch inside (LLVM vectorises it; 2-3x the general kernel
    here). With a ``base`` (not empty), the sums go onto it as :func:`_onto_kernel` puts them, in the same pass."""
    planes, padded_height, padded_width = padded.shape
    height = padded_height - 2 * pad
    width = padded_width - 2 * pad
    stride = steps[2]
    for row in numba.prange(planes * height):
        p = row // height
        y = row - p * height
        r0 = padded[p, y + pad + offsets[0, 0, 0], pad + offsets[0, 0, 1]:]  # each input's row, from x = 0
        r1 = padded[p, y + pad + offsets[0, 1, 0], pad + offsets[0, 1, 1]:]
        r2 = padded[p, y + pad + offsets[0, 2, 0], pad + offsets[0, 2, 1]:]
        r3 = padded[p, y + pad + offsets[0, 3, 0], pad + offsets[0, 3, 1]:]
        for t in range(table.shape[1]):
            column = table[:, t]
            at = p * steps[0] + y * steps[1] + write[t]
            if integer:
                for x in range(width):
                    c0, c1, c2, c3, c4, w0, w1, w2, w3, w4 = _walk_values4(
                        np.int32(r0[x]), np.int32(r1[x]), np.int32(r2[x]), np.int32(r3[x]), interval, strides)
                    total = (w0 * np.int32(column[c0]) + w1 * np.int32(column[c1]) + w2 * np.int32(column[c2])
                             + w3 * np.int32(column[c3]) + w4 * np.int32(column[c4]))
                    if to_pixels:
                        out[at + x * stride] = final[total + bound]
                    elif base.size:
                        out[at + x * stride] = _unit_to_pixel(base[p, y, x] + np.float32(total) * step)
                    else:
                        out[at + x * stride] = total
            else:
                for x in range(width):
                    c0, c1, c2, c3, c4, w0, w1, w2, w3, w4 = _walk_values4(
                        np.int32(r0[x]), np.int32(r1[x]), np.int32(r2[x]), np.int32(r3[x]), interval, strides)
                    out[at + x * stride] = (np.float32(w0) * np.float32(column[c0])
                                            + np.float32(w1) * np.float32(column[c1])
                                            + np.float32(w2) * np.float32(column[c2])
                                            + np.float32(w3) * np.float32(column[c3])
                                            + np.float32(w4) * np.float32(column[c4]))


@_jit(parallel=True)
def _block_kernel(padded, table, block_strides, anchors, placement, interval, pad, steps, write, final, bound,
                  to_pixels, integer, acc_type, chunk_rows, out):
    """:func:`_ensemble_kernel` for a field that covers a 2x2 block in every rotation (S), four rotations: each block
    is read and its remainders sorted once for the four pixels whose rotations read it (the walk's weights depend on
    the sorted values only; the order of tied remainders changes only corners of weight 0). Rotation ``k``'s sums
    of a row wait in ``rows[row parity, k]`` until the row is complete, then add up in rotation order, so every sum
    equals :func:`_ensemble_kernel`'s. ``block_strides[k, i]``: the table-index stride of block pixel ``i`` in
    rotation ``k``. Parallel over chunks of ``chunk_rows`` rows of each plane (each walks one block row more)."""
    planes, padded_height, padded_width = padded.shape
    height = padded_height - 2 * pad
    width = padded_width - 2 * pad
    m = table.shape[1]
    mask = np.int32((1 << interval) - 1)
    q = np.int32(1 << interval)
    chunks = (height + chunk_rows - 1) // chunk_rows
    for job in numba.prange(planes * chunks):
        p = job // chunks
        y0 = (job - p * chunks) * chunk_rows
        y1 = min(height, y0 + chunk_rows)
        rows = np.empty((2, 4, width, m), dtype=acc_type.dtype)
        acc = np.empty(m, dtype=acc_type.dtype)
        for by in range(y0 - 1, y1):  # the block covering image rows by and by + 1
            for bx in range(-1, width):
                v = (np.int32(padded[p, by + pad, bx + pad]), np.int32(padded[p, by + pad, bx + pad + 1]),
                     np.int32(padded[p, by + pad + 1, bx + pad]), np.int32(padded[p, by + pad + 1, bx + pad + 1]))
                a, b, d, e = _sort4(v[0] & mask, v[1] & mask, v[2] & mask, v[3] & mask)  # pixel 3 - (key & 3)
                w0, w1, w2, w3, w4 = q - (a >> 2), (a >> 2) - (b >> 2), (b >> 2) - (d >> 2), (d >> 2) - (e >> 2), e >> 2
                for k in range(4):
                    y = by + anchors[k, 0]
                    x = bx + anchors[k, 1]
                    if y < y0 or y >= y1 or x < 0 or x >= width:
                        continue
                    c0 = _base_corner4(v[0], v[1], v[2], v[3], interval, block_strides[k, 0], block_strides[k, 1],
                                       block_strides[k, 2], block_strides[k, 3])
                    c1 = c0 + block_strides[k, 3 - (a & 3)]
                    c2 = c1 + block_strides[k, 3 - (b & 3)]
                    c3 = c2 + block_strides[k, 3 - (d & 3)]
                    c4 = c3 + block_strides[k, 3 - (e & 3)]
                    slot = rows[y & 1, k, x]
                    for t in range(m):
                        if integer:
                            slot[t] = (w0 * np.int32(table[c0, t]) + w1 * np.int32(table[c1, t])
                                       + w2 * np.int32(table[c2, t]) + w3 * np.int32(table[c3, t])
                                       + w4 * np.int32(table[c4, t]))
                        else:
                            slot[t] = (np.float32(w0) * np.float32(table[c0, t])
                                       + np.float32(w1) * np.float32(table[c1, t])
                                       + np.float32(w2) * np.float32(table[c2, t])
                                       + np.float32(w3) * np.float32(table[c3, t])
                                       + np.float32(w4) * np.float32(table[c4, t]))
            if by < y0:
                continue
            done = rows[by & 1]  # row by: rotations anchored low in their block came from block row by - 1
            for x in range(width):
                for t in range(m):
                    acc[t] = 0
                for k in range(4):
                    for t in range(m):
                        acc[placement[k, t]] += done[k, x, t]
                at = p * steps[0] + by * steps[1] + x * steps[2]
                if to_pixels:
                    for t in range(m):
                        out[at + write[t]] = final[np.int64(acc[t]) + bound]
                else:
                    for t in range(m):
                        out[at + write[t]] = acc[t]


@_jit(parallel=True)
def _ensemble_grad_kernel(padded, grad_out, offsets, placement, strides, interval, pad, rotations, authors_order,
                          steps, write, grads):
    """Gradient of ``(grad_out * ensemble sum).sum()`` with respect to a float table: each pixel's output gradient
    scattered onto the ``n + 1`` corners each rotation read, one copy of the gradient per chunk of rows (no races)."""
    planes, padded_height, padded_width = padded.shape
    height = padded_height - 2 * pad
    width = padded_width - 2 * pad
    n = offsets.shape[1]
    m = grads.shape[2]
    chunks = grads.shape[0]
    for chunk in numba.prange(chunks):
        patch = np.empty(m, dtype=np.float32)  # output gradient of one pixel, original frame
        remainder, order, corners, weights = _walk_scratch(n)
        for row in range(chunk, planes * height, chunks):
            p = row // height
            y = row - p * height
            for x in range(width):
                at = p * steps[0] + y * steps[1] + x * steps[2]
                for t in range(m):
                    patch[t] = grad_out[at + write[t]]
                for k in range(rotations):
                    _simplex_walk(
                        padded, p, y + pad, x + pad, offsets, k, strides, interval, authors_order, remainder, order,
                        corners, weights,
                    )
                    for j in range(n + 1):
                        w = np.float32(weights[j])
                        corner = corners[j]
                        if w != 0:
                            for t in range(m):
                                grads[chunk, corner, t] += w * patch[placement[k, t]]


def _require_numba() -> None:
    if numba is None:
        raise RuntimeError("the fused LUT kernels need numba (pip install numba); use the torch path instead")


def _pad_planes(planes: np.ndarray, field: ReceptiveField) -> np.ndarray:
    """Reflection-pad ``[P, H, W]`` uint8 planes by the field's margin on every side."""
    pad = padding(field)
    count, height, width = planes.shape
    padded = np.empty((count, height + 2 * pad, width + 2 * pad), planes.dtype)
    padded[:, pad : pad + height, pad : pad + width] = planes  # the bulk by a plain copy, only the margins indexed
    cols = reflect_indices(width, pad, pad)
    padded[:, pad : pad + height, :pad] = planes[:, :, cols[:pad]]
    padded[:, pad : pad + height, pad + width :] = planes[:, :, cols[pad + width :]]
    rows = reflect_indices(height, pad, pad) + pad
    padded[:, :pad] = padded[:, rows[:pad]]
    padded[:, pad + height :] = padded[:, rows[pad + height :]]
    return padded


def _geometry(field: ReceptiveField, layout: OutputLayout, interval: int):
    return rotated_offsets(field), layout.placement(), np.array(index_strides(field.size, interval), dtype=np.int64)


def _check_rotations(rotations: int) -> None:
    if rotations not in (1, 4):
        raise ValueError(f"rotations must be 1 (no ensemble) or 4 (the rotation ensemble), got {rotations}")


def ensemble(
    planes: np.ndarray,
    table: np.ndarray,
    field: ReceptiveField,
    layout: OutputLayout,
    interval: int,
    rotations: int = 4,
    authors_order: bool = False,
    to_pixels: bool = False,
    channels_last: bool = False,
    specialised: bool = True,
    onto: tuple[np.ndarray, float] | None = None,
) -> np.ndarray:
    """A table on ``[P, H, W]`` uint8 planes: the ensemble sum of every pixel, placed by ``layout``.

    Args:
        table: ``[L**n, m]`` int8 (exact integer sums) or float32 (LUT-aware fine-tuning).
        rotations: 4 for the rotation ensemble, 1 for the table on the image as it is.
        to_pixels: round an int8 table's sums to uint8 pixels with the SR-LUT authors' rule
            (:func:`hatast.lut.lattice.rounding_map`), in the same pass.
        channels_last: place a patch layout into ``[H*r, W*r, P]`` (an HWC image) instead of ``[P, H*r, W*r]``.
        specialised: run the faster kernel where one applies (:func:`_unrotated_kernel` for a 4-pixel field without
            the ensemble, :func:`_block_kernel` for S with it; not with the authors' order, whose corners break the
            symmetry the block walk relies on); False: always the general :func:`_ensemble_kernel`, the reference a
            test holds them equal to in every value.
        onto: ``(base, step)``, for an int8 table with one channel: return ``base [P, H, W]`` (float, [0, 1]) plus
            the sums times ``step``, rounded half up to an ``[H, W, P]`` uint8 image (IM-LUT's refiner residual; in
            the table's pass where the unrotated kernel runs, so the sums are never stored).

    Returns:
        ``layout.output_shape(P, H, W)`` (or its channels-last form): uint8 with ``to_pixels``, else int32 for an
        int8 table and float32 for a float one, in table units times ``q``; with ``onto``, the ``[H, W, P]`` image.
    """
    _require_numba()
    _check_rotations(rotations)
    count, height, width = planes.shape
    if table.dtype != np.int8:
        table = np.ascontiguousarray(table, dtype=np.float32)
        if to_pixels:
            raise ValueError("to_pixels needs an int8 table (its sums are exact integers)")
    offsets, placement, strides = _geometry(field, layout, interval)
    steps, write = layout.write_offsets(count, height, width, channels_last)
    shape = layout.output_shape(count, height, width)
    if channels_last:
        shape = shape[1:] + shape[:1]
    dtype = np.uint8 if to_pixels else np.int32 if table.dtype == np.int8 else np.float32
    unrotated = specialised and offsets.shape[1] == 4 and rotations == 1 and not authors_order
    base, step = np.empty((0, 0, 0), np.float32), np.float32(0)
    if onto is not None:
        if table.dtype != np.int8 or layout.kind != "channels" or layout.count != 1 or to_pixels:
            raise ValueError("onto needs an int8 table with one channel, without to_pixels")
        base, step = np.ascontiguousarray(onto[0], np.float32), np.float32(onto[1])
        if base.shape != planes.shape:
            raise ValueError(f"onto's base has shape {base.shape}, the planes {planes.shape}")
        if not unrotated:  # sums first, then onto the base
            sums = ensemble(planes, table, field, layout, interval, rotations, authors_order, specialised=specialised)
            out = np.empty((height, width, count), np.uint8)
            _onto_kernel(base, sums[:, 0], step, out)
            return out
        shape, dtype = (height, width, count), np.uint8
        steps, write = np.array([1, width * count, count], np.int64), np.zeros(1, np.int64)
    out = np.empty(shape, dtype=dtype)
    bound = ensemble_bound(interval, authors_order)
    final = rounding_map(interval, bound)
    padded, table, integer = _pad_planes(planes, field), np.ascontiguousarray(table), table.dtype == np.int8
    acc_type = np.empty(0, np.int32 if integer else np.float32)
    blocks = square_blocks(field) if specialised and rotations == 4 and not authors_order else None
    if unrotated:
        _unrotated_kernel(padded, table, offsets, strides, interval, padding(field), steps, write, final, bound,
                          to_pixels, integer, base, step, out.reshape(-1))
    elif blocks is not None:
        anchors, slots = blocks
        block_strides = np.empty((4, 4), np.int64)
        block_strides[np.arange(4)[:, None], slots] = strides  # block pixel slots[k, j] has input j's stride
        chunk_rows = max(8, -(-height * count // (8 * numba.get_num_threads())))  # ~8 jobs a thread, for balance
        _block_kernel(padded, table, block_strides, anchors, placement, interval, padding(field), steps, write,
                      final, bound, to_pixels, integer, acc_type, chunk_rows, out.reshape(-1))
    else:
        _ensemble_kernel(padded, table, offsets, placement, strides, interval, padding(field), rotations,
                         authors_order, steps, write, final, bound, to_pixels, integer, acc_type, out.reshape(-1))
    return out


def ensemble_grad(
    planes: np.ndarray,
    grad_out: np.ndarray,
    rows: int,
    field: ReceptiveField,
    layout: OutputLayout,
    interval: int,
    rotations: int = 4,
    authors_order: bool = False,
) -> np.ndarray:
    """Gradient of ``(grad_out * ensemble(planes, table)).sum()`` with respect to a float table: ``[rows, m]``
    float32 (``grad_out`` placed as :func:`ensemble` places, planes first)."""
    _require_numba()
    _check_rotations(rotations)
    count, height, width = planes.shape
    offsets, placement, strides = _geometry(field, layout, interval)
    steps, write = layout.write_offsets(count, height, width)
    chunks = min(numba.get_num_threads(), count * height)
    grads = np.zeros((chunks, rows, layout.count), dtype=np.float32)
    _ensemble_grad_kernel(
        _pad_planes(planes, field), np.ascontiguousarray(grad_out, dtype=np.float32).reshape(-1), offsets, placement,
        strides, interval, padding(field), rotations, authors_order, steps, write, grads,
    )
    return grads.sum(0)


def upscale_int8(
    image: np.ndarray,
    table: np.ndarray,
    field: ReceptiveField,
    scale: int,
    interval: int,
    authors_order: bool = False,
) -> np.ndarray:
    """SR-LUT inference: ``[H, W, C]`` uint8 and an ``[L**n, scale**2]`` int8 table -> ``[H*scale, W*scale, C]``
    uint8 (the rotation ensemble and the authors' rounding in one pass, written straight into the HWC image)."""
    planes = np.ascontiguousarray(image.transpose(2, 0, 1))
    return ensemble(planes, table, field, OutputLayout.patch(scale), interval, 4, authors_order, to_pixels=True,
                    channels_last=True)
