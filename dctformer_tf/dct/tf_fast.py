"""The fast encoder in TensorFlow: the twin of `np_fast.py` (docs/design.md §1.10).

Three stages, so that each runs where it is fastest:
  1. `flat_coefficients` (XLA): canvases -> int16 [B, F], the quantized coefficients in
     sequence order with near-ties marked UNSAFE, plus a flag per segment holding one.
     Float32 and static shapes: the colour transform, quantizer and layout change fuse into a
     few loops around two small matmuls.
  2. `fix_unsafe` and `list_nonzero` (plain graph, data-dependent shapes): the flagged
     segments are searched and their UNSAFE entries recomputed in float64; one row-major
     `tf.where` then lists every image's non-zeros, already in sequence order, and the first
     max_length of each image are padded into a static [B, max_length].
  3. `decode_entries` (XLA): flat indices -> (channel, position, value_token) triples.
The sequences equal `np_ops` (the float64 reference) exactly; `fast_plan.py` says why.
`encode_canvas` runs these stages, the "ops" encoder of `encoders.py`; its "fused" encoder
does the same arithmetic in one CPU kernel (`fused_op.py`).

Letters: B images, H x W canvas, S block size, P = Gh·Gw positions, F flat entries,
L = max_length, M listed entries.
"""

import numpy as np
import tensorflow as tf

from dctformer_tf.dct import tf_ops
from dctformer_tf.dct.fast_plan import CHROMA, UNSAFE, plan_for

# ----------------------------------------------------------------------------- stage 1


def colour_planes(pixels: tf.Tensor, plan) -> tuple:
    """uint8 [B, H, W, 3] -> (float32 [B, H, W] Y, float32 [B, 2, H/2, W/2] Cb, Cr 2x2
    means)."""
    x = tf.cast(pixels, tf.float32) - 128.0
    c = plan.colour
    luma = x[..., 0] * c[0, 0] + x[..., 1] * c[0, 1] + x[..., 2] * c[0, 2]
    # Strided slices fuse into one loop under XLA; a reshape + reduce_sum does not.
    quad = x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2]
    chroma = [(quad[..., 0] * c[k, 0] + quad[..., 1] * c[k, 1] + quad[..., 2] * c[k, 2]) * 0.25
              for k in (1, 2)]
    return luma, tf.stack(chroma, axis=1)


def block_dct(plane: tf.Tensor, plan) -> tf.Tensor:
    """float32 [N, h, w] -> float32 [N, S², (h/S)·(w/S)]: rows u·S + v, columns positions."""
    s = plan.block_size
    h, w = plane.shape[1], plane.shape[2]
    a = tf.constant(plan.dct)
    lines = tf.reshape(plane, [-1, s, w])  # [N·gh, S (x), w]
    vertical = tf.matmul(tf.broadcast_to(a, [tf.shape(lines)[0], s, s]), lines)  # [N·gh, u, w]
    coefs = tf.matmul(tf.reshape(vertical, [-1, s]), a, transpose_b=True)  # [N·gh·S·gw, v]
    coefs = tf.reshape(coefs, [-1, h // s, s, w // s, s])  # [N, gh, u, gw, v]
    return tf.reshape(tf.transpose(coefs, [0, 2, 4, 1, 3]), [-1, s * s, (h // s) * (w // s)])


def quantize_guarded(coefs: tf.Tensor, component: int, plan) -> tf.Tensor:
    """float32 [N, S², Pk] (rows u·S + v) -> float32 [N, S², Pk], rows in sequence order:
    integer values rounded half away from zero, UNSAFE within the guard band of a boundary
    (kept float so that XLA fuses the cast into the layout change)."""
    y = tf.gather(coefs, plan.rows[component], axis=1)
    y *= tf.constant(plan.inv_step[component])[None, :, None]
    magnitude = tf.abs(y)
    whole = tf.floor(magnitude)
    frac = magnitude - whole  # exact in floating point
    value = tf.sign(y) * (whole + tf.cast(frac >= 0.5, tf.float32))
    unsafe = tf.abs(frac - 0.5) < tf.constant(plan.guard[component])[None, :, None]
    return tf.where(unsafe, float(UNSAFE), value)


def flat_coefficients(pixels: tf.Tensor, plan) -> tuple:
    """uint8 [B, H, W, 3] canvases -> (int16 [B, F] flat, bool [B, 6·S²] flags).

    flat: each channel's plane in sequence order; values quantized (before any clip),
    UNSAFE where the guard band holds them. flags: which segments hold an UNSAFE.
    """
    luma, chroma = colour_planes(pixels, plan)
    batch, q, s2 = tf.shape(pixels)[0], plan.segment, plan.block_size**2
    h, w = chroma.shape[2], chroma.shape[3]
    coefs = block_dct(tf.reshape(chroma, [-1, h, w]), plan)  # [2B, S², P/4]
    coefs = tf.reshape(coefs, [-1, 2, s2, q])
    stack = tf.concat([
        tf.reshape(quantize_guarded(block_dct(luma, plan), 0, plan), [batch, 4 * s2, q]),
        quantize_guarded(coefs[:, 0], 1, plan),
        quantize_guarded(coefs[:, 1], 2, plan),
    ], axis=1)  # [B, 6·S², P/4]: Y, Cb, Cr segments
    segments = tf.cast(tf.gather(stack, plan.segment_source, axis=1), tf.int16)
    flags = tf.reduce_any(tf.equal(segments, UNSAFE), axis=2)
    return tf.reshape(segments, [-1, plan.flat_size]), flags


# ----------------------------------------------------------------------------- stage 2


def locate(flat_index: tf.Tensor, plan) -> tuple:
    """int32 [...] flat indices -> (int32 [...] channel ids, int32 [...] positions).

    Static-shape, vectorizable arithmetic: it runs under XLA too.
    """
    segment = _divide(flat_index, plan.segment, plan.flat_size)
    offset = flat_index - segment * plan.segment
    start = tf.gather(tf.constant(plan.segment_start), segment)
    chroma = tf.gather(tf.constant(plan.chroma_position), offset)
    channel = tf.gather(tf.constant(plan.segment_channel), segment)
    return channel, tf.where(start >= 0, start + offset, chroma)


def _divide(numerator: tf.Tensor, divisor: int, bound: int) -> tf.Tensor:
    """int32 numerator // divisor for 0 <= numerator < bound, without integer division.

    XLA's CPU integer division does not vectorize. In float32, (n + ½)/d lies at least ½/d
    from an integer and is computed to a relative 2^-23, so its floor is exact for n < 2^22.
    """
    if bound >= 2**22:
        return numerator // divisor
    scaled = (tf.cast(numerator, tf.float32) + 0.5) * (1.0 / divisor)
    return tf.cast(tf.floor(scaled), numerator.dtype)


def exact_values(pixels: tf.Tensor, plan, image, channel, position) -> tf.Tensor:
    """int32 [M]: listed coefficients recomputed in float64 (see `np_fast.exact_values`).

    image, channel, position: int32 [M].
    """
    s, gw = plan.block_size, plan.grid[1]
    component = tf.gather(tf.constant(plan.component), channel)
    luma = tf.equal(component, 0)
    # A luma block, and a chroma block at its even cell, lie in macroblock (row/2, col/2).
    row, col = position // gw, position % gw
    mb_row, mb_col = row // 2, col // 2
    h, w = pixels.shape[1], pixels.shape[2]
    strips = tf.reshape(pixels, [-1, h, w // (2 * s), 2 * s * 3])  # [B, H, W/2S, 2S·3]
    lines = 2 * s * mb_row[:, None] + tf.range(2 * s)  # [M, 2S]
    index = tf.stack([tf.broadcast_to(image[:, None], tf.shape(lines)), lines,
                      tf.broadcast_to(mb_col[:, None], tf.shape(lines))], axis=-1)  # [M, 2S, 3]
    window = tf.reshape(tf.gather_nd(strips, index), [-1, 2 * s, 2 * s, 3])
    window = tf.cast(window, tf.float64) - 128.0
    uv = tf.gather(tf.constant(plan.raw), channel) % (s * s)
    weights = tf.constant(plan.exact_weights)
    rows = tf.gather_nd(weights, tf.stack([tf.where(luma, row % 2, CHROMA), uv // s], 1))
    cols = tf.gather_nd(weights, tf.stack([tf.where(luma, col % 2, CHROMA), uv % s], 1))
    colour = tf.gather(tf.constant(plan.colour64), component)  # [M, 3]
    plane = tf.einsum("mxyc,mc->mxy", window, colour)  # [M, 2S, 2S]
    coefs = tf.einsum("mx,mxy,my->m", rows, plane, cols)
    step = tf.gather(tf.constant(plan.step), channel)
    return tf.cast(tf_ops.round_half_away(coefs / step), tf.int32)


def fix_unsafe(flat: tf.Tensor, flags: tf.Tensor, pixels: tf.Tensor, plan,
               jit_compile: bool = True) -> tf.Tensor:
    """int16 [B, F] with UNSAFE marks -> int16 [B, F] with the exact values there.

    Only the flagged segments are searched: the guard band marks few entries.
    `jit_compile` recomputes them in one XLA call instead of many small graph ops.
    """
    q = plan.segment
    flagged = tf.cast(tf.where(flags), tf.int32)  # [K, 2] (image, segment)
    segments = tf.gather_nd(tf.reshape(flat, [tf.shape(flat)[0], -1, q]), flagged)  # [K, P/4]
    hits = tf.cast(tf.where(tf.equal(segments, UNSAFE)), tf.int32)  # [U, 2] (row of K, offset)
    found = tf.gather(flagged, hits[:, 0])
    image, index = found[:, 0], found[:, 1] * q + hits[:, 1]
    if jit_compile:
        exact = _exact_padded(pixels, plan, image, index)
    else:
        exact = exact_values(pixels, plan, image, *locate(index, plan))
    return tf.tensor_scatter_nd_update(
        flat, tf.stack([image, index], axis=1), tf.cast(exact, tf.int16))


def _exact_padded(pixels: tf.Tensor, plan, image: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """`exact_values` of int32 [U] flat indices under XLA, on the list zero-padded to a power
    of two so that XLA compiles once per size class, not once per count."""
    count = tf.size(index)
    classes = tf.math.ceil(tf.math.log(tf.cast(tf.maximum(count, 1), tf.float32)) / np.log(2.0))
    padding = [[0, tf.cast(2.0**classes, tf.int32) - count]]
    return _exact(pixels, tf.pad(image, padding), tf.pad(index, padding), plan)[:count]


def list_nonzero(flat: tf.Tensor, max_length: int) -> tuple:
    """int16 [B, F] -> (int32 [B, L] indices into the flattened [B·F] of each image's first L
    non-zeros in sequence order, zero-padded, int32 [B] counts of non-zeros)."""
    batch, size = tf.shape(flat, out_type=tf.int64)[0], flat.shape[1]
    found = tf.where(tf.reshape(flat, [-1]))[:, 0]  # [M] int64, sorted
    splits = tf.searchsorted(found[None], (tf.range(batch + 1) * size)[None],
                             out_type=tf.int64)[0]  # [B + 1]: each image's slice of found
    ragged = tf.RaggedTensor.from_row_splits(tf.cast(found, tf.int32), splits, validate=False)
    return ragged.to_tensor(shape=[None, max_length]), tf.cast(ragged.row_lengths(), tf.int32)


# ----------------------------------------------------------------------------- stage 3


def decode_entries(flat: tf.Tensor, index: tf.Tensor, counts: tf.Tensor, codec, plan) -> tuple:
    """Listed flat indices -> (int32 [B, L, 3] padded triples, int32 [B] lengths with EOS).

    Args:
      flat: int16 [B, F]; index: int32 [B, L] from `list_nonzero`; counts: int32 [B].
    A length > L means overflow (the triples hold the first L); the caller raises.
    """
    steps = tf.range(index.shape[1])[None, :]
    valid = steps < counts[:, None]
    index = tf.where(valid, index - tf.range(tf.shape(flat)[0])[:, None] * flat.shape[1], 0)
    values = tf.cast(tf.gather(flat, index, batch_dims=1), tf.int32)
    channel, position = locate(index, plan)
    if codec.value_encoding == "dequantized":
        values *= tf.gather(tf.constant(codec.rank_table), channel)
    tokens = tf.clip_by_value(values, -codec.clip, codec.clip) + codec.clip
    eos = tf.where(steps == counts[:, None], codec.eos, 0)
    triples = tf.stack([tf.where(valid, channel, eos), tf.where(valid, position, 0),
                        tf.where(valid, tokens, 0)], axis=-1)
    return triples, counts + 1


# ----------------------------------------------------------------------------- encoder
# The plan and codec are Python arguments: each compiled function is traced once per plan.


@tf.function(jit_compile=True)
def _stage1(pixels, plan):
    return flat_coefficients(pixels, plan)


@tf.function(jit_compile=True)
def _exact(pixels, image, index, plan):
    return exact_values(pixels, plan, image, *locate(index, plan))


@tf.function(jit_compile=True)
def _stage3(flat, index, counts, codec, plan):
    return decode_entries(flat, index, counts, codec, plan)


def encode_canvas(pixels: tf.Tensor, codec, max_length: int, jit_compile: bool = True):
    """uint8 [B, H, W, 3] canvases -> (int32 [B, max_length, 3], int32 [B] lengths L).

    The three stages as TensorFlow ops, for plain graphs such as tf.data (`tf.where` has
    data-dependent shapes); `jit_compile` compiles stages 1 and 3 with XLA. The sequences
    are the same either way.
    """
    plan = plan_for(pixels, codec)
    stage1 = _stage1 if jit_compile else flat_coefficients
    stage3 = _stage3 if jit_compile else decode_entries
    flat, flags = stage1(pixels, plan)
    flat = fix_unsafe(flat, flags, pixels, plan, jit_compile)
    index, counts = list_nonzero(flat, max_length)
    return stage3(flat, index, counts, codec, plan)
