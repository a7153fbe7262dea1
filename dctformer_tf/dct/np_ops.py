"""The sparse DCT representation in numpy: the readable reference and the test oracle.

`tf_ops.py` holds the TensorFlow twin of every function here, with the same name,
arguments and shape contract; the tests hold the two bit-exact to each other.

Pipeline (docs/design.md §1): canvas -> JFIF YCbCr, level shift -> 4:2:0 chroma -> block DCT ->
quantize -> dense DCT image [Gh, Gw, C] in channel-rank order -> sparse triples.
All arithmetic before rounding is float64 so that numpy and TensorFlow, which sum in
different orders, stay far (~1e-12) from every rounding boundary, and rounding adds
ROUND_EPS so that values exactly on a half (e.g. DC terms of flat blocks) round the same
way in both twins however their last bit came out.

Letters: S block size, Gh x Gw luma block grid, C = 3·S² channels, P = Gh·Gw positions.
"""

import numpy as np

from dctformer_tf.dct.tables import dct_matrix

# Far above float64 error of the pipeline (~1e-11), far below any quantization step.
ROUND_EPS = 1e-6

# JFIF (ITU-R BT.601 full range), the conversion libjpeg and Pillow use.
RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168735892, -0.331264108, 0.5],
        [0.5, -0.418687589, -0.081312411],
    ],
    dtype=np.float64,
)
YCBCR_TO_RGB = np.array(
    [[1.0, 0.0, 1.402], [1.0, -0.344136286, -0.714136286], [1.0, 1.772, 0.0]],
    dtype=np.float64,
)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, halves away from zero (libjpeg's quantizer), as float64."""
    return np.sign(x) * np.floor(np.abs(x) + (0.5 + ROUND_EPS))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round and saturate float pixels to uint8."""
    return np.clip(round_half_away(x), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- canvas


def canvas_size(height: int, width: int, resolution: int | None, block_size: int) -> tuple:
    """Content size (h, w) and canvas size (Hc, Wc) of an image, docs/design.md §1.1.

    With a resolution R the long side becomes R and the short side is rounded (halves up)
    to a multiple of 2S (at least 2S); the canvas is R x R. Without one the image keeps its
    size and the canvas is the next multiple of 2S.
    """
    unit = 2 * block_size
    if resolution is None:
        return (height, width), (-(-height // unit) * unit, -(-width // unit) * unit)
    long_side, short_side = max(height, width), min(height, width)
    # round(short·R / long / unit) with halves up, in integers.
    units = (2 * short_side * resolution + long_side * unit) // (2 * long_side * unit)
    short_out = max(unit, units * unit)
    content = (resolution, short_out) if height >= width else (short_out, resolution)
    return content, (resolution, resolution)


def resize_weights(in_size: int, out_size: int) -> np.ndarray:
    """Antialiased triangle (bilinear) resampling matrix, np.float64 [out, in].

    Row i averages the input around centre (i + 0.5)·in/out with a triangle whose support
    widens by in/out when downsampling (as Pillow's BILINEAR reduce), rows sum to one.
    """
    scale = in_size / out_size
    support = max(scale, 1.0)
    centre = (np.arange(out_size, dtype=np.float64)[:, None] + 0.5) * scale
    x = (np.arange(in_size, dtype=np.float64)[None, :] + 0.5 - centre) / support
    weights = np.maximum(0.0, 1.0 - np.abs(x))
    return weights / weights.sum(axis=1, keepdims=True)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [height, width, 3] with `resize_weights` in each axis."""
    if image.shape[:2] == (height, width):
        return image
    rows = resize_weights(image.shape[0], height)  # [h, H]
    cols = resize_weights(image.shape[1], width)  # [w, W]
    out = np.einsum("hH,HWc->hWc", rows, image.astype(np.float64), optimize=True)
    out = np.einsum("hWc,wW->hwc", out, cols, optimize=True)
    return to_uint8(out)


def canvas(image: np.ndarray, resolution: int | None, block_size: int) -> tuple:
    """Place an image on its canvas, neutral grey (all-zero coefficients) elsewhere.

    Args:
      image: uint8 [H, W, 3].
    Returns:
      (uint8 [Hc, Wc, 3] canvas, int32 [2] content (h, w)).
    """
    (h, w), (hc, wc) = canvas_size(image.shape[0], image.shape[1], resolution, block_size)
    content = resize(image, h, w)
    out = np.full((hc, wc, 3), 128, dtype=np.uint8)
    out[:h, :w] = content
    return out, np.array([h, w], dtype=np.int32)


# ----------------------------------------------------------------------------- colour


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """float/uint8 [..., 3] RGB -> float64 [..., 3] YCbCr with all components shifted by −128."""
    return (rgb.astype(np.float64) - 128.0) @ RGB_TO_YCBCR.T


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """float64 [..., 3] level-shifted YCbCr -> float64 [..., 3] RGB (unrounded)."""
    return ycbcr @ YCBCR_TO_RGB.T + 128.0


# ----------------------------------------------------------------------------- chroma


def downsample_chroma(plane: np.ndarray) -> np.ndarray:
    """float64 [..., H, W] -> [..., H/2, W/2], 2x2 mean (H, W even)."""
    h, w = plane.shape[-2:]
    return plane.reshape(plane.shape[:-2] + (h // 2, 2, w // 2, 2)).mean(axis=(-3, -1))


def _upsample_axis(plane: np.ndarray, axis: int) -> np.ndarray:
    """Triangle ×2 along one axis: out[2i] = ¾x[i] + ¼x[i−1], out[2i+1] = ¾x[i] + ¼x[i+1]."""
    n = plane.shape[axis]
    prev = np.take(plane, np.maximum(np.arange(n) - 1, 0), axis=axis)
    nxt = np.take(plane, np.minimum(np.arange(n) + 1, n - 1), axis=axis)
    even = 0.75 * plane + 0.25 * prev
    odd = 0.75 * plane + 0.25 * nxt
    out = np.stack([even, odd], axis=axis + 1)  # [..., n, 2, ...]
    return out.reshape(plane.shape[:axis] + (2 * n,) + plane.shape[axis + 1 :])


def upsample_chroma(plane: np.ndarray, method: str = "triangle") -> np.ndarray:
    """float64 [..., h, w] -> [..., 2h, 2w]: libjpeg's "fancy" triangle filter or nearest."""
    if method == "nearest":
        return plane.repeat(2, axis=-2).repeat(2, axis=-1)
    if method != "triangle":
        raise ValueError(f"chroma upsampling must be 'triangle' or 'nearest', got {method!r}")
    return _upsample_axis(_upsample_axis(plane, plane.ndim - 2), plane.ndim - 1)


# ----------------------------------------------------------------------------- block DCT


def block_dct(plane: np.ndarray, block_size: int) -> np.ndarray:
    """float64 [..., H, W] -> [..., H/S, W/S, S·S]: orthonormal DCT-II per S x S block.

    Coefficient (u, v) (u vertical frequency) sits at index u·S + v of the last axis.
    """
    s = block_size
    a = dct_matrix(s)
    h, w = plane.shape[-2:]
    blocks = plane.reshape(plane.shape[:-2] + (h // s, s, w // s, s))  # [..., Gh, S, Gw, S]
    coefs = np.einsum("ux,...gxhy,vy->...ghuv", a, blocks, a, optimize=True)  # [..., Gh, Gw, S, S]
    return coefs.reshape(coefs.shape[:-2] + (s * s,))


def block_idct(coefs: np.ndarray, block_size: int) -> np.ndarray:
    """float64 [..., Gh, Gw, S·S] -> [..., Gh·S, Gw·S]: inverse of `block_dct`."""
    s = block_size
    a = dct_matrix(s)
    gh, gw = coefs.shape[-3:-1]
    blocks = coefs.reshape(coefs.shape[:-1] + (s, s))  # [..., Gh, Gw, S, S]
    pixels = np.einsum("ux,...ghuv,vy->...gxhy", a, blocks, a, optimize=True)  # [..., Gh, S, Gw, S]
    return pixels.reshape(pixels.shape[:-4] + (gh * s, gw * s))


# ----------------------------------------------------------------------------- quantize


def quantize(coefs: np.ndarray, table: np.ndarray, clip: int) -> np.ndarray:
    """float [..., K] coefficients -> int32 [..., K]: round(X / Q) clipped to [−clip, clip]."""
    return np.clip(round_half_away(coefs / table), -clip, clip).astype(np.int32)


def dequantize(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """int [..., K] quantized values -> float64 [..., K] coefficients v·Q."""
    return values.astype(np.float64) * table


# ----------------------------------------------------------------------------- dense image


def image_to_dense(image: np.ndarray, codec) -> np.ndarray:
    """Canvas pixels -> dense DCT image of stored values, channel axis in rank order.

    Luma block (i, j) fills cell (i, j); chroma block (i, j) of the half-resolution planes
    fills cell (2i, 2j) (other chroma cells stay zero).

    Args:
      image: uint8 [..., Hc, Wc, 3] with Hc, Wc multiples of 2S.
      codec: a `SparseCodec` (block size, tables, clip, order, value encoding).
    Returns:
      int32 [..., Gh, Gw, C]: quantized v, or v·Q clipped for "dequantized".
    """
    s, s2 = codec.block_size, codec.block_size**2
    ycc = rgb_to_ycbcr(image)
    luma = block_dct(ycc[..., 0], s)  # [..., Gh, Gw, S²]
    raw = np.zeros(luma.shape[:-1] + (3 * s2,), dtype=np.float64)
    raw[..., :s2] = luma
    for k in (1, 2):
        chroma = block_dct(downsample_chroma(ycc[..., k]), s)  # [..., Gh/2, Gw/2, S²]
        raw[..., ::2, ::2, k * s2 : (k + 1) * s2] = chroma
    ranked = raw[..., codec.rank_to_raw]  # [..., Gh, Gw, C]
    values = quantize(ranked, codec.rank_table, codec.clip)
    if codec.value_encoding == "dequantized":
        values = np.clip(values * codec.rank_table, -codec.clip, codec.clip).astype(np.int32)
    return values


def dense_to_image(dense: np.ndarray, codec, upsample: str = "triangle") -> np.ndarray:
    """Dense DCT image int [..., Gh, Gw, C] (rank order) -> uint8 [..., Hc, Wc, 3] pixels."""
    s, s2 = codec.block_size, codec.block_size**2
    if codec.value_encoding == "dequantized":
        ranked = dense.astype(np.float64)
    else:
        ranked = dequantize(dense, codec.rank_table)
    raw = ranked[..., codec.raw_to_rank]  # [..., Gh, Gw, 3·S²] raw layout
    planes = [block_idct(raw[..., :s2], s)]
    for k in (1, 2):
        chroma = block_idct(raw[..., ::2, ::2, k * s2 : (k + 1) * s2], s)
        planes.append(upsample_chroma(chroma, upsample))
    return to_uint8(ycbcr_to_rgb(np.stack(planes, axis=-1)))


# ----------------------------------------------------------------------------- sparse


def dense_to_sparse(dense: np.ndarray, codec, max_length: int | None = None):
    """Dense image -> triples (channel, position, value_token), then (EOS, 0, 0).

    Sorted by channel, then position p = row·Gw + col; value_token = value + clip.

    Args:
      dense: int [Gh, Gw, C].
      max_length: None for the exact sequence; else pad with zeros to this length.
    Returns:
      int32 [L, 3] (L includes EOS); with max_length, (int32 [max_length, 3], length L)
      where L > max_length means overflow (the caller raises; nothing is silently cut).
    """
    gh, gw, c = dense.shape
    flat = dense.transpose(2, 0, 1).reshape(c, gh * gw)  # [C, P], channel-major
    channels, positions = np.nonzero(flat)  # row-major: sorted by channel, then position
    tokens = flat[channels, positions] + codec.clip
    triples = np.stack([channels, positions, tokens], axis=1).astype(np.int32)
    triples = np.concatenate([triples, np.array([[codec.eos, 0, 0]], np.int32)], axis=0)
    if max_length is None:
        return triples
    length = triples.shape[0]
    padded = np.zeros((max_length, 3), dtype=np.int32)
    padded[: min(length, max_length)] = triples[:max_length]
    return padded, length


def sparse_to_dense(triples: np.ndarray, codec, grid: tuple, length: int | None = None):
    """Scatter triples into a dense image; EOS and everything after it are ignored.

    Args:
      triples: int [L, 3]; any prefix of a sequence.
      grid: (Gh, Gw).
      length: use only the first `length` triples (for padded sequences).
    Returns:
      int32 [Gh, Gw, C].
    """
    triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    if length is not None:
        triples = triples[:length]
    eos = np.flatnonzero(triples[:, 0] == codec.eos)
    if eos.size:
        triples = triples[: eos[0]]
    gh, gw = grid
    dense = np.zeros((gh, gw, codec.dct_channels), dtype=np.int32)
    c, p, t = triples.T
    dense[p // gw, p % gw, c] = t - codec.clip
    return dense
