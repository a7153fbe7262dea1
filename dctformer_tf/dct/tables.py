"""JPEG quantization tables (IJG quality scaling, paper App. A) and the zigzag scan.

Everything here is numpy and built once; the TF twin receives these tables as constants.
"""

import numpy as np

SUPPORTED_BLOCK_SIZES = (8, 16, 32)

# JPEG Annex K, Table K.1 (luminance) and K.2 (chrominance), natural (row-major) order.
ANNEX_K_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int32,
)
# K.2 is 99 outside its top-left 4x4.
ANNEX_K_CHROMA = np.full((8, 8), 99, np.int32)
ANNEX_K_CHROMA[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]


def check_block_size(block_size: int) -> int:
    if block_size not in SUPPORTED_BLOCK_SIZES:
        raise ValueError(
            f"block_size must be one of {SUPPORTED_BLOCK_SIZES}, got {block_size!r}"
        )
    return int(block_size)


def check_quality(quality: int) -> int:
    if isinstance(quality, bool) or int(quality) != quality or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer in [1, 100], got {quality!r}")
    return int(quality)


def quality_scale(quality: int) -> int:
    """libjpeg's `jpeg_quality_scaling`: the percentage applied to the base tables."""
    quality = check_quality(quality)
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def quantization_table(quality: int, block_size: int = 8, chroma: bool = False) -> np.ndarray:
    """The IJG quantization table for a quality, resized to the block size.

    Integer arithmetic exactly as libjpeg's `jpeg_add_quant_table` with force_baseline
    (entries clamped to [1, 255]); float division would differ (e.g. at q = 23 and 35).
    For S != 8 the 8x8 table is resized by nearest neighbour: T_S[i, j] = T_8[8i//S, 8j//S].

    Returns:
      np.int32 [S, S], natural (row = vertical frequency u, column = horizontal v) order.
    """
    block_size = check_block_size(block_size)
    base = ANNEX_K_CHROMA if chroma else ANNEX_K_LUMA
    table = np.clip((base * quality_scale(quality) + 50) // 100, 1, 255).astype(np.int32)
    index = (8 * np.arange(block_size)) // block_size
    return table[np.ix_(index, index)]


def zigzag_order(size: int) -> np.ndarray:
    """JPEG zigzag scan of an S x S block, generalised to any S.

    Returns:
      np.int32 [S*S, 2]: the (row, col) visited at each scan step. For S = 8 this is the
      inverse of libjpeg's `jpeg_natural_order`: (0,0), (0,1), (1,0), (2,0), (1,1), ...
    """
    cells = [(r, c) for r in range(size) for c in range(size)]
    # Along anti-diagonal d = r + c, odd diagonals run down (row increasing), even ones up.
    cells.sort(key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else -rc[0]))
    return np.array(cells, dtype=np.int32)


def dct_matrix(size: int) -> np.ndarray:
    """Orthonormal DCT-II basis, np.float64 [S, S]: A[u, x] = c(u)·cos((2x+1)uπ / 2S).

    The 2-D block transform is A·X·Aᵀ and its inverse Aᵀ·Y·A (A is orthogonal), equal to
    `scipy.fft.dctn(X, norm="ortho")`; for S = 8 this is JPEG's FDCT.
    """
    u = np.arange(size, dtype=np.float64)[:, None]
    x = np.arange(size, dtype=np.float64)[None, :]
    basis = np.cos((2.0 * x + 1.0) * u * np.pi / (2.0 * size))
    scale = np.where(u == 0, np.sqrt(1.0 / size), np.sqrt(2.0 / size))
    return basis * scale


def max_quantized_magnitude(quality: int, block_size: int = 8, chroma: bool = False) -> np.ndarray:
    """The largest |quantized value| any 8-bit image can give each coefficient.

    A level-shifted sample lies in [−128, 128] (Y, Cb and Cr of uint8 RGB lie in [0, 255.5],
    and chroma averaging keeps that range), so the orthonormal coefficient (u, v) is at most
    `128 · ‖A[u]‖₁ · ‖A[v]‖₁` in magnitude (`A` = `dct_matrix`), reached up to the 127/128
    asymmetry by the block of signs of the basis function. Rounding half away from zero
    after dividing by the table entry gives the bound. A `clip` at or above the maximum of
    this table never changes a value: the codec is then lossless before clipping.

    Returns:
      np.int32 [S, S], natural order like `quantization_table`.
    """
    norms = np.abs(dct_matrix(block_size)).sum(axis=1)  # [S]: ‖A[u]‖₁
    peak = 128.0 * norms[:, None] * norms[None, :]  # [S, S]
    table = quantization_table(quality, block_size, chroma)
    return np.floor(peak / table + 0.5).astype(np.int32)
