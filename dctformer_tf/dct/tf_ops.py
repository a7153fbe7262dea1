"""The sparse DCT representation in TensorFlow: the twin of `np_ops.py`.

Same function names, arguments and shape contracts as the numpy reference; the tests hold
the two bit-exact. Everything runs inside `tf.data.Dataset.map`, with no Python loops over
pixels or blocks, leading batch dimensions allowed wherever they make sense, static output
shapes where the input has them (the sparse sequence is padded to `max_length` with its true
length returned beside it). `sparse_to_dense` also runs under `tf.function(jit_compile=True)`
(the sampler's compiled chunk step); `dense_to_sparse` does not (its `tf.where` has a
data-dependent shape).

Arithmetic is float64 and rounding adds ROUND_EPS, exactly as in the numpy twin (see there).
"""

import numpy as np
import tensorflow as tf

from dctformer_tf.dct import np_ops
from dctformer_tf.dct.tables import dct_matrix

ROUND_EPS = np_ops.ROUND_EPS


def round_half_away(x: tf.Tensor) -> tf.Tensor:
    """Round to nearest, halves away from zero, as float64."""
    return tf.sign(x) * tf.floor(tf.abs(x) + (0.5 + ROUND_EPS))


def to_uint8(x: tf.Tensor) -> tf.Tensor:
    """Round and saturate float pixels to uint8."""
    return tf.cast(tf.clip_by_value(round_half_away(x), 0.0, 255.0), tf.uint8)


# ----------------------------------------------------------------------------- canvas


def canvas_size(height, width, resolution: int | None, block_size: int):
    """int32 scalars (h, w), (Hc, Wc): content and canvas sizes, as `np_ops.canvas_size`."""
    unit = 2 * block_size
    height = tf.cast(height, tf.int64)
    width = tf.cast(width, tf.int64)
    if resolution is None:
        hc = (height + unit - 1) // unit * unit
        wc = (width + unit - 1) // unit * unit
        return (height, width), (hc, wc)
    long_side, short_side = tf.maximum(height, width), tf.minimum(height, width)
    units = (2 * short_side * resolution + long_side * unit) // (2 * long_side * unit)
    short_out = tf.maximum(tf.constant(unit, tf.int64), units * unit)
    r = tf.constant(resolution, tf.int64)
    h = tf.where(height >= width, r, short_out)
    w = tf.where(height >= width, short_out, r)
    return (h, w), (r, r)


def resize_weights(in_size, out_size) -> tf.Tensor:
    """float64 [out, in] antialiased triangle resampling matrix (see `np_ops`)."""
    in_f = tf.cast(in_size, tf.float64)
    out_f = tf.cast(out_size, tf.float64)
    scale = in_f / out_f
    support = tf.maximum(scale, 1.0)
    centre = (tf.range(out_f, dtype=tf.float64)[:, None] + 0.5) * scale
    x = (tf.range(in_f, dtype=tf.float64)[None, :] + 0.5 - centre) / support
    weights = tf.maximum(1.0 - tf.abs(x), 0.0)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def resize(image: tf.Tensor, height, width) -> tf.Tensor:
    """uint8 [H, W, 3] -> uint8 [height, width, 3] with `resize_weights` in each axis."""
    rows = resize_weights(tf.shape(image)[0], height)  # [h, H]
    cols = resize_weights(tf.shape(image)[1], width)  # [w, W]
    out = tf.einsum("hH,HWc->hWc", rows, tf.cast(image, tf.float64))
    out = tf.einsum("hWc,wW->hwc", out, cols)
    same = tf.logical_and(
        tf.equal(tf.shape(image, out_type=tf.int64)[0], height),
        tf.equal(tf.shape(image, out_type=tf.int64)[1], width),
    )
    # The identity case must stay exact: skip resampling rather than trust rounding.
    return tf.cond(same, lambda: image, lambda: to_uint8(out))


def canvas(image: tf.Tensor, resolution: int | None, block_size: int):
    """Place an image on its canvas, neutral grey elsewhere.

    Args:
      image: uint8 [H, W, 3] (one image; sizes differ between images).
    Returns:
      (uint8 [Hc, Wc, 3] canvas — static [R, R, 3] when a resolution is given —,
       int32 [2] content (h, w)).
    """
    unit = 2 * block_size
    # Same rule as SparseCodec.check_image: an image smaller than one macroblock is an error,
    # never silently upscaled or padded.
    check = tf.debugging.assert_greater_equal(
        tf.reduce_min(tf.shape(image)[:2]), unit,
        message=f"image is smaller than one {unit}x{unit} macroblock (2·block_size); size",
        summarize=3,
    )
    with tf.control_dependencies([check]):
        image = tf.identity(image)
    (h, w), (hc, wc) = canvas_size(tf.shape(image)[0], tf.shape(image)[1], resolution, block_size)
    content = resize(image, h, w)
    out = tf.pad(
        tf.cast(content, tf.int32) - 128, [[0, hc - h], [0, wc - w], [0, 0]]
    )  # zero padding of (pixel − 128) is neutral grey
    out = tf.cast(out + 128, tf.uint8)
    if resolution is not None:
        out = tf.ensure_shape(out, [resolution, resolution, 3])
    return out, tf.cast(tf.stack([h, w]), tf.int32)


# ----------------------------------------------------------------------------- colour


def rgb_to_ycbcr(rgb: tf.Tensor) -> tf.Tensor:
    """[..., 3] RGB -> float64 [..., 3] YCbCr with all components shifted by −128."""
    matrix = tf.constant(np_ops.RGB_TO_YCBCR.T, tf.float64)
    return tf.tensordot(tf.cast(rgb, tf.float64) - 128.0, matrix, axes=1)


def ycbcr_to_rgb(ycbcr: tf.Tensor) -> tf.Tensor:
    """float64 [..., 3] level-shifted YCbCr -> float64 [..., 3] RGB (unrounded)."""
    return tf.tensordot(ycbcr, tf.constant(np_ops.YCBCR_TO_RGB.T, tf.float64), axes=1) + 128.0


# ----------------------------------------------------------------------------- chroma


def _split_last_two(plane: tf.Tensor, fh: int, fw: int) -> tf.Tensor:
    """[..., H, W] -> [..., H/fh, fh, W/fw, fw]."""
    shape = tf.shape(plane)
    lead, h, w = shape[:-2], shape[-2], shape[-1]
    new_shape = tf.concat([lead, [h // fh, fh, w // fw, fw]], axis=0)
    return tf.reshape(plane, new_shape)


def downsample_chroma(plane: tf.Tensor) -> tf.Tensor:
    """float64 [..., H, W] -> [..., H/2, W/2], 2x2 mean."""
    return tf.reduce_mean(_split_last_two(plane, 2, 2), axis=[-3, -1])


def _upsample_axis(plane: tf.Tensor, axis: int) -> tf.Tensor:
    """Triangle ×2 along one (non-negative) axis, edges replicated."""
    n = tf.shape(plane)[axis]
    prev = tf.gather(plane, tf.maximum(tf.range(n) - 1, 0), axis=axis)
    nxt = tf.gather(plane, tf.minimum(tf.range(n) + 1, n - 1), axis=axis)
    even = 0.75 * plane + 0.25 * prev
    odd = 0.75 * plane + 0.25 * nxt
    out = tf.stack([even, odd], axis=axis + 1)  # [..., n, 2, ...]
    shape = tf.shape(plane)
    new_shape = tf.concat([shape[:axis], [2 * n], shape[axis + 1 :]], axis=0)
    return tf.reshape(out, new_shape)


def upsample_chroma(plane: tf.Tensor, method: str = "triangle") -> tf.Tensor:
    """float64 [..., h, w] -> [..., 2h, 2w]: libjpeg's "fancy" triangle filter or nearest."""
    rank = plane.shape.rank
    if method == "nearest":
        return tf.repeat(tf.repeat(plane, 2, axis=rank - 2), 2, axis=rank - 1)
    if method != "triangle":
        raise ValueError(f"chroma upsampling must be 'triangle' or 'nearest', got {method!r}")
    return _upsample_axis(_upsample_axis(plane, rank - 2), rank - 1)


# ----------------------------------------------------------------------------- block DCT


def block_dct(plane: tf.Tensor, block_size: int) -> tf.Tensor:
    """float64 [..., H, W] -> [..., H/S, W/S, S·S]: orthonormal DCT-II per S x S block."""
    s = block_size
    a = tf.constant(dct_matrix(s), tf.float64)
    blocks = _split_last_two(tf.cast(plane, tf.float64), s, s)  # [..., Gh, S, Gw, S]
    coefs = tf.einsum("ux,...gxhy,vy->...ghuv", a, blocks, a)  # [..., Gh, Gw, S, S]
    shape = tf.shape(coefs)
    return tf.reshape(coefs, tf.concat([shape[:-2], [s * s]], axis=0))


def block_idct(coefs: tf.Tensor, block_size: int) -> tf.Tensor:
    """float64 [..., Gh, Gw, S·S] -> [..., Gh·S, Gw·S]: inverse of `block_dct`."""
    s = block_size
    a = tf.constant(dct_matrix(s), tf.float64)
    shape = tf.shape(coefs)
    blocks = tf.reshape(coefs, tf.concat([shape[:-1], [s, s]], axis=0))  # [..., Gh, Gw, S, S]
    pixels = tf.einsum("ux,...ghuv,vy->...gxhy", a, blocks, a)  # [..., Gh, S, Gw, S]
    return tf.reshape(pixels, tf.concat([shape[:-3], [shape[-3] * s, shape[-2] * s]], axis=0))


# ----------------------------------------------------------------------------- quantize


def quantize(coefs: tf.Tensor, table, clip: int) -> tf.Tensor:
    """float [..., K] coefficients -> int32 [..., K]: round(X / Q) clipped to [−clip, clip]."""
    q = tf.constant(np.asarray(table, np.float64))
    v = tf.clip_by_value(round_half_away(coefs / q), -float(clip), float(clip))
    return tf.cast(v, tf.int32)


def dequantize(values: tf.Tensor, table) -> tf.Tensor:
    """int [..., K] quantized values -> float64 [..., K] coefficients v·Q."""
    return tf.cast(values, tf.float64) * tf.constant(np.asarray(table, np.float64))


# ----------------------------------------------------------------------------- dense image


def _interleave_even_cells(chroma: tf.Tensor) -> tf.Tensor:
    """[..., Gh/2, Gw/2, K] -> [..., Gh, Gw, K] with block (i, j) at cell (2i, 2j), else 0."""
    x = chroma[..., :, None, :, None, :]  # [..., Gh/2, 1, Gw/2, 1, K]
    rank = x.shape.rank
    paddings = [[0, 0]] * (rank - 4) + [[0, 1], [0, 0], [0, 1], [0, 0]]
    x = tf.pad(x, paddings)  # [..., Gh/2, 2, Gw/2, 2, K]
    shape = tf.shape(chroma)
    new_shape = tf.concat([shape[:-3], [2 * shape[-3], 2 * shape[-2], shape[-1]]], axis=0)
    return tf.reshape(x, new_shape)


def image_to_dense(image: tf.Tensor, codec) -> tf.Tensor:
    """uint8 [..., Hc, Wc, 3] canvas -> int32 [..., Gh, Gw, C] dense image (rank order)."""
    s = codec.block_size
    ycc = rgb_to_ycbcr(image)
    parts = [block_dct(ycc[..., 0], s)]  # [..., Gh, Gw, S²]
    for k in (1, 2):
        chroma = block_dct(downsample_chroma(ycc[..., k]), s)  # [..., Gh/2, Gw/2, S²]
        parts.append(_interleave_even_cells(chroma))
    raw = tf.concat(parts, axis=-1)  # [..., Gh, Gw, 3·S²] raw layout
    ranked = tf.gather(raw, codec.rank_to_raw, axis=-1)
    values = quantize(ranked, codec.rank_table, codec.clip)
    if codec.value_encoding == "dequantized":
        values = tf.clip_by_value(
            values * tf.constant(codec.rank_table, tf.int32), -codec.clip, codec.clip
        )
    return values


def dense_to_image(dense: tf.Tensor, codec, upsample: str = "triangle") -> tf.Tensor:
    """int [..., Gh, Gw, C] dense image (rank order) -> uint8 [..., Hc, Wc, 3] pixels."""
    s, s2 = codec.block_size, codec.block_size**2
    if codec.value_encoding == "dequantized":
        ranked = tf.cast(dense, tf.float64)
    else:
        ranked = dequantize(dense, codec.rank_table)
    raw = tf.gather(ranked, codec.raw_to_rank, axis=-1)  # [..., Gh, Gw, 3·S²]
    planes = [block_idct(raw[..., :s2], s)]
    for k in (1, 2):
        chroma = block_idct(raw[..., ::2, ::2, k * s2 : (k + 1) * s2], s)
        planes.append(upsample_chroma(chroma, upsample))
    return to_uint8(ycbcr_to_rgb(tf.stack(planes, axis=-1)))


# ----------------------------------------------------------------------------- sparse


def dense_to_sparse(dense: tf.Tensor, codec, max_length: int):
    """Dense image -> padded triples plus EOS, static output shapes.

    The non-zeros of the channel-major [C, P] view are already sorted by channel, then
    position, so no sort is needed: `tf.where` lists them row-major, and each non-zero's
    slot is its rank among its image's non-zeros.

    Args:
      dense: int [..., Gh, Gw, C] (no or one leading batch dimension).
      max_length: static length of the output (EOS included).
    Returns:
      (int32 [..., max_length, 3] triples zero-padded, int32 [...] true lengths L with EOS).
      L > max_length means the sequence overflowed: the caller must raise, not truncate.
    """
    dense = tf.convert_to_tensor(dense)
    if dense.shape.rank == 3:
        triples, length = dense_to_sparse(dense[None], codec, max_length)
        return triples[0], length[0]
    batch, gh, gw, c = tf.unstack(tf.shape(dense))
    num_positions = gh * gw
    flat = tf.reshape(tf.transpose(dense, [0, 3, 1, 2]), [batch, c * num_positions])  # [B, C·P]
    nonzero = tf.not_equal(flat, 0)
    num_nonzero = tf.reduce_sum(tf.cast(nonzero, tf.int32), axis=1)  # [B]
    where = tf.cast(tf.where(nonzero), tf.int32)  # [M, 2] (row, flat index), row-major
    rows, flat_index = where[:, 0], where[:, 1]
    starts = tf.cumsum(num_nonzero, exclusive=True)  # [B]
    slot = tf.range(tf.shape(where)[0]) - tf.gather(starts, rows)  # [M]
    # Overflowing entries go to a dump slot at max_length, sliced off below. Only the flat
    # index (+1, so that 0 marks an empty slot) is scattered; the triple is derived.
    slot = tf.minimum(slot, max_length)
    found = tf.tensor_scatter_nd_update(
        tf.zeros([batch, max_length + 1], tf.int32),
        tf.stack([rows, slot], axis=-1),
        flat_index + 1,
    )[:, :max_length]  # [B, max_length]
    filled = found > 0
    index = tf.maximum(found - 1, 0)
    value = tf.gather(flat, index, batch_dims=1) + codec.clip
    triples = tf.stack([index // num_positions, index % num_positions, value], axis=-1)
    triples *= tf.cast(filled, tf.int32)[..., None]
    eos_row = tf.one_hot(num_nonzero, max_length, dtype=tf.int32)[..., None]  # [B, max_len, 1]
    triples += eos_row * tf.constant([codec.eos, 0, 0], tf.int32)
    return triples, num_nonzero + 1


def sparse_to_dense(triples: tf.Tensor, codec, grid: tuple, length=None) -> tf.Tensor:
    """Scatter triples into a dense image; EOS, padding and anything after EOS ignored.

    Args:
      triples: int [..., L, 3] (leading batch dims allowed).
      grid: (Gh, Gw), static.
      length: int [...] number of valid triples per sequence (default: all L).
    Returns:
      int32 [..., Gh, Gw, C].
    """
    triples = tf.convert_to_tensor(triples, tf.int32)
    squeeze = triples.shape.rank == 2
    if squeeze:
        triples = triples[None]
        length = None if length is None else tf.reshape(length, [1])
    gh, gw = grid
    batch, seq = tf.shape(triples)[0], tf.shape(triples)[1]
    channel, position, token = tf.unstack(triples, axis=-1)  # each [B, L]
    steps = tf.range(seq)[None, :]
    valid = tf.ones_like(channel, tf.bool) if length is None else steps < length[:, None]
    # Everything from the first EOS on is ignored, like the numpy twin.
    after_eos = tf.cumsum(tf.cast(channel == codec.eos, tf.int32), axis=1) > 0
    valid = valid & ~after_eos
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(channel))
    channel = tf.where(valid, channel, 0)
    position = tf.where(valid, position, 0)
    values = tf.where(valid, token - codec.clip, 0)
    index = tf.stack([rows, position // gw, position % gw, channel], axis=-1)  # [B, L, 4]
    dense = tf.tensor_scatter_nd_add(
        tf.zeros([batch, gh, gw, codec.dct_channels], tf.int32), index, values
    )
    return dense[0] if squeeze else dense
