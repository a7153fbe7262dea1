"""Where the AC terms sit, and how cheaply a fixed predictor codes the DC band (docs/results.md,
"Where the block noise comes from").

In the `shapes` data the higher-frequency AC terms sit at the shapes' edges: a block whose
mean differs from a neighbour's carries AC; a block inside a flat shape or a smooth gradient
carries none. Samples whose AC is spread at random over the blocks read as block noise even
when their DC band (the ×S-downsampled image) is a plausible thumbnail. Measured on Y blocks
of dense quantized DCT images (`SparseCodec.encode_dense`):

    edge strength  a block's largest |difference of dequantized DC| to its 4 neighbours
    AC magnitude   the sum of |dequantized coefficient| over the block's bands >= 2
    blocks_with_ac the fraction of blocks with any band >= 2 coefficient
    ac_share_at_edges  the share of all AC magnitude that lies in each image's quarter of
                   blocks of highest edge strength, by rank (random placement: a quarter)
    spearman       the rank correlation of AC magnitude and edge strength, over all blocks

The DC baseline: the median edge detector of LOCO-I / JPEG-LS predicts each block's DC from
its left (a), upper (b) and upper-left (c) neighbours, `min(a, b)` if `c >= max(a, b)`,
`max(a, b)` if `c <= min(a, b)`, else `a + b - c`; the empirical entropy of the residuals
over a set of images is what a static coder of that predictor spends per DC cell.
"""

import numpy as np

from dctformer_tf.dct.order import channel_bands, channel_components

COMPONENT_NAMES = ("Y", "Cb", "Cr")


def dense_images(images, codec) -> np.ndarray:
    """int32 [N, G, G, C]: the quantized dense DCT images of uint8 [N, H, W, 3] images."""
    return np.stack([codec.encode_dense(image)[0] for image in images])


def dequantized(dense, codec) -> np.ndarray:
    """float64 [N, G, G, C]: coefficients in DCT units (value·Q for quantized values)."""
    dense = np.asarray(dense, np.float64)
    if codec.value_encoding == "quantized":
        return dense * codec.rank_table
    return dense


def ac_placement(dense, codec, min_band: int = 2) -> dict:
    """The AC-at-edges measure of the module docstring over a set of dense images.

    Args:
      dense: int [N, G, G, C] quantized dense DCT images (a square grid of >= 2x2 blocks).
      codec: their `SparseCodec`.
      min_band: the lowest band counted as AC.
    Returns:
      {"blocks_with_ac", "ac_share_at_edges", "spearman": float, "num_blocks": int}.
    """
    coefficients = dequantized(dense, codec)
    if coefficients.shape[1] < 2 or coefficients.shape[2] < 2:
        raise ValueError("ac_placement needs at least 2x2 blocks per image")
    bands = channel_bands(codec.order, codec.block_size)
    luma = channel_components(codec.order, codec.block_size) == 0
    dc = coefficients[..., np.flatnonzero(luma & (bands == 0))[0]]  # [N, G, G]
    high = luma & (bands >= min_band)
    magnitude = np.abs(coefficients[..., high]).sum(axis=-1)  # [N, G, G]
    edge = edge_strength(dc)
    top = top_quarter(edge)
    total = magnitude.sum()
    return {
        "blocks_with_ac": float((magnitude > 0).mean()),
        "ac_share_at_edges": float(magnitude[top].sum() / total) if total else 0.0,
        "spearman": spearman(magnitude.ravel(), edge.ravel()),
        "num_blocks": int(magnitude.size),
    }


def top_quarter(strength) -> np.ndarray:
    """bool [N, G, G]: each image's ceil(G²/4) blocks of highest strength, by rank (ties in
    grid order), so that a quarter of the blocks is chosen however many share a value."""
    flat = strength.reshape(len(strength), -1)
    count = -(-flat.shape[1] // 4)
    order = np.argsort(-flat, axis=1, kind="stable")[:, :count]
    top = np.zeros(flat.shape, bool)
    np.put_along_axis(top, order, True, axis=1)
    return top.reshape(strength.shape)


def edge_strength(dc) -> np.ndarray:
    """float64 [N, G, G]: each block's largest |DC difference| to its 4 neighbours (those
    that exist)."""
    dc = np.asarray(dc, np.float64)
    strength = np.zeros_like(dc)
    across = np.abs(np.diff(dc, axis=2))  # [N, G, G-1] between columns j and j+1
    down = np.abs(np.diff(dc, axis=1))  # [N, G-1, G]
    strength[:, :, :-1] = np.maximum(strength[:, :, :-1], across)
    strength[:, :, 1:] = np.maximum(strength[:, :, 1:], across)
    strength[:, :-1, :] = np.maximum(strength[:, :-1, :], down)
    strength[:, 1:, :] = np.maximum(strength[:, 1:, :], down)
    return strength


def spearman(x, y) -> float:
    """Spearman's rank correlation (ties take their average rank); 0 when either is
    constant."""
    rx, ry = _ranks(np.asarray(x, np.float64)), _ranks(np.asarray(y, np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    scale = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / scale) if scale else 0.0


def _ranks(values) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]  # the mean rank of each tie group


def med_prediction(grid) -> np.ndarray:
    """int64 [..., H, W]: the median-edge-detector prediction of every cell from its left,
    upper and upper-left neighbours (0 outside the grid)."""
    grid = np.asarray(grid, np.int64)
    padded = np.pad(grid, [(0, 0)] * (grid.ndim - 2) + [(1, 0), (1, 0)])
    a = padded[..., 1:, :-1]  # left
    b = padded[..., :-1, 1:]  # upper
    c = padded[..., :-1, :-1]  # upper-left
    low, high = np.minimum(a, b), np.maximum(a, b)
    return np.where(c >= high, low, np.where(c <= low, high, a + b - c))


def med_dc_bits(dense, codec) -> dict:
    """Bits per DC cell of each component's DC band under the MED predictor: the empirical
    entropy of the quantized residuals over all images.

    Args:
      dense: int [N, G, G, C] quantized dense DCT images.
    Returns:
      {"Y", "Cb", "Cr": {"bits_per_cell": float, "cells": int}}; chroma DC lives on the
      even/even cells of the luma grid (docs/design.md §1.6), its own G/2 x G/2 grid.
    """
    dense = np.asarray(dense)
    bands = channel_bands(codec.order, codec.block_size)
    components = channel_components(codec.order, codec.block_size)
    result = {}
    for index, name in enumerate(COMPONENT_NAMES):
        channel = np.flatnonzero((components == index) & (bands == 0))[0]
        grid = dense[..., channel]
        if index:
            grid = grid[:, ::2, ::2]
        residual = (grid - med_prediction(grid)).ravel()
        _, counts = np.unique(residual, return_counts=True)
        p = counts / counts.sum()
        result[name] = {"bits_per_cell": float(-(p * np.log2(p)).sum()),
                        "cells": int(residual.size)}
    return result
