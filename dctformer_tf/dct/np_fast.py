"""The fast encoder in numpy: the twin of `tf_fast.py` (docs/design.md §1.10).

canvas pixels -> float32 colour planes -> float32 separable block DCT -> quantize, marking
near-ties UNSAFE -> flat vector of the channel planes in sequence order -> UNSAFE entries
recomputed in float64 -> a row-major scan of the non-zeros, already in sequence order ->
triples. The sequences equal `np_ops` (the float64 reference)
exactly; `fast_plan.py` says why.

Letters: B images, H x W canvas, S block size, Gh x Gw luma grid, P = Gh·Gw, F flat entries,
M listed entries.
"""

import numpy as np

from dctformer_tf.dct import np_ops
from dctformer_tf.dct.fast_plan import CHROMA, UNSAFE, plan_for


def colour_planes(pixels: np.ndarray, plan) -> tuple:
    """uint8 [B, H, W, 3] -> (float32 [B, H, W] Y, float32 [B, 2, H/2, W/2] Cb, Cr 2x2 means)."""
    x = pixels.astype(np.float32) - np.float32(128.0)
    c = plan.colour
    luma = x[..., 0] * c[0, 0] + x[..., 1] * c[0, 1] + x[..., 2] * c[0, 2]
    quad = x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]
    chroma = [(quad[..., 0] * c[k, 0] + quad[..., 1] * c[k, 1] + quad[..., 2] * c[k, 2])
              * np.float32(0.25) for k in (1, 2)]
    return luma, np.stack(chroma, axis=1)


def block_dct(plane: np.ndarray, plan) -> np.ndarray:
    """float32 [N, h, w] -> float32 [N, S², (h/S)·(w/S)]: rows u·S + v, columns positions."""
    s, a = plan.block_size, plan.dct
    n, h, w = plane.shape
    vertical = np.matmul(a, plane.reshape(n * h // s, s, w))  # [N·gh, S (u), w]
    coefs = (vertical.reshape(-1, s) @ a.T).reshape(n, h // s, s, w // s, s)  # [N, gh, u, gw, v]
    return coefs.transpose(0, 2, 4, 1, 3).reshape(n, s * s, -1)


def quantize_guarded(coefs: np.ndarray, component: int, plan) -> np.ndarray:
    """float32 [N, S², Pk] (rows u·S + v) -> int16 [N, S², Pk], rows in sequence order.

    Rounds half away from zero; a value within the guard band of a rounding boundary, where
    float32 and float64 could round differently, becomes UNSAFE instead.
    """
    rows = plan.rows[component]
    y = coefs[:, rows] * plan.inv_step[component][None, :, None]
    magnitude = np.abs(y)
    whole = np.floor(magnitude)
    frac = magnitude - whole  # exact in floating point
    value = np.sign(y) * (whole + (frac >= 0.5))
    unsafe = np.abs(frac - np.float32(0.5)) < plan.guard[component][None, :, None]
    return np.where(unsafe, UNSAFE, value).astype(np.int16)


def flat_coefficients(pixels: np.ndarray, plan) -> tuple:
    """uint8 [B, H, W, 3] canvases -> (int16 [B, F] flat, bool [B, 6·S²] flags).

    flat: each channel's plane in sequence order; values quantized (before any clip),
    UNSAFE where the guard band holds them. flags: which segments hold an UNSAFE.
    """
    luma, chroma = colour_planes(pixels, plan)
    b, q, s2 = luma.shape[0], plan.segment, plan.block_size**2
    coefs = block_dct(chroma.reshape((2 * b,) + chroma.shape[2:]), plan)  # [2B, S², P/4]
    coefs = coefs.reshape((b, 2) + coefs.shape[1:])
    stack = np.concatenate([
        quantize_guarded(block_dct(luma, plan), 0, plan).reshape(b, 4 * s2, q),
        quantize_guarded(coefs[:, 0], 1, plan),
        quantize_guarded(coefs[:, 1], 2, plan),
    ], axis=1)  # [B, 6·S², P/4]: Y, Cb, Cr segments
    segments = stack[:, plan.segment_source]  # [B, 6·S², P/4] in sequence order
    return segments.reshape(b, -1), (segments == UNSAFE).any(axis=2)


def locate(flat_index: np.ndarray, plan) -> tuple:
    """int [M] flat indices -> (int [M] channel ids, int [M] positions on the luma grid)."""
    segment = flat_index // plan.segment
    offset = flat_index - segment * plan.segment
    start = plan.segment_start[segment]
    position = np.where(start >= 0, start + offset, plan.chroma_position[offset])
    return plan.segment_channel[segment], position


def exact_values(pixels: np.ndarray, plan, image, channel, position) -> np.ndarray:
    """Quantized values of M listed coefficients recomputed in float64 as the reference does.

    Args:
      pixels: uint8 [B, H, W, 3] canvases.
      image, channel, position: int [M] of each coefficient.
    Returns:
      int32 [M] round(X / Q), before any clip.
    """
    s, gw = plan.block_size, plan.grid[1]
    component = plan.component[channel]
    luma = component == 0
    # A luma block, and a chroma block at its even cell, lie in macroblock (row/2, col/2).
    row, col = position // gw, position % gw
    mb_row, mb_col = row // 2, col // 2
    b, h, w, _ = pixels.shape
    strips = pixels.reshape(b, h, w // (2 * s), 2 * s * 3)  # [B, H, W/2S, 2S·3]
    lines = 2 * s * mb_row[:, None] + np.arange(2 * s)  # [M, 2S]
    window = strips[image[:, None], lines, mb_col[:, None]].reshape(-1, 2 * s, 2 * s, 3)
    window = window.astype(np.float64) - 128.0
    uv = plan.raw[channel] % (s * s)
    rows = plan.exact_weights[np.where(luma, row % 2, CHROMA), uv // s]  # [M, 2S]
    cols = plan.exact_weights[np.where(luma, col % 2, CHROMA), uv % s]  # [M, 2S]
    plane = window @ plan.colour64[component][:, None, :, None]  # [M, 2S, 2S, 1]
    coefs = rows[:, None, :] @ plane[..., 0] @ cols[:, :, None]  # [M, 1, 1]
    return np_ops.round_half_away(coefs[:, 0, 0] / plan.step[channel]).astype(np.int32)


def fix_unsafe(flat: np.ndarray, flags: np.ndarray, pixels: np.ndarray, plan) -> np.ndarray:
    """int16 [B, F] with UNSAFE marks -> int16 [B, F] with the exact values there.

    Only the flagged segments are searched: the guard band marks few entries.
    """
    image, segment = np.nonzero(flags)
    hits, offset = np.nonzero(flat.reshape(len(flat), -1, plan.segment)[image, segment] == UNSAFE)
    image, index = image[hits], segment[hits] * plan.segment + offset
    flat = flat.copy()
    flat[image, index] = exact_values(pixels, plan, image, *locate(index, plan))
    return flat


def encode_canvas(pixels: np.ndarray, codec, max_length: int | None = None):
    """Canvases -> sparse sequences, equal to `np_ops.dense_to_sparse(image_to_dense(...))`.

    Args:
      pixels: uint8 [B, H, W, 3] canvases (H, W multiples of 2S).
      max_length: None for exact sequences; else pad (or cut) to this length.
    Returns:
      a list of B int32 [L, 3] (EOS last); with max_length, (int32 [B, max_length, 3],
      int32 [B] lengths L) where L > max_length means overflow, as `np_ops.dense_to_sparse`.
    """
    plan = plan_for(pixels, codec)
    flat = fix_unsafe(*flat_coefficients(pixels, plan), pixels, plan)
    image, index = np.nonzero(flat)  # row-major: by image, then in sequence order
    channel, position = locate(index, plan)
    triples = _triples(channel, position, flat[image, index].astype(np.int64), codec)
    counts = np.bincount(image, minlength=pixels.shape[0])
    eos = np.array([[codec.eos, 0, 0]], np.int32)
    sequences = [np.concatenate([body, eos]) for body in np.split(triples, np.cumsum(counts)[:-1])]
    if max_length is None:
        return sequences
    padded = np.zeros((len(sequences), max_length, 3), np.int32)
    for i, sequence in enumerate(sequences):
        padded[i, : min(len(sequence), max_length)] = sequence[:max_length]
    return padded, (counts + 1).astype(np.int32)


def _triples(channel, position, values: np.ndarray, codec) -> np.ndarray:
    """int32 [M, 3] (channel, position, value_token) of listed non-zero values."""
    if codec.value_encoding == "dequantized":
        values = values * codec.rank_table[channel]
    tokens = np.clip(values, -codec.clip, codec.clip) + codec.clip
    return np.stack([channel, position, tokens], axis=1).astype(np.int32)
