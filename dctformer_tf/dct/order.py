"""Channel orders: which DCT coefficient each channel id stands for.

A coefficient is named by its *raw index* `k·S² + u·S + v`: component k (0 = Y, 1 = Cb,
2 = Cr) and frequency (u vertical, v horizontal). A channel id is the coefficient's rank in
the sequence order, so "channels never decrease along a sequence" is the whole ordering rule
and the dense DCT image stores its channel axis in rank order.

Orders (docs/design.md §1.7):
  "bands"      dyadic frequency bands, low to high; band 0 = {(0,0)}, band b holds
               2^(b-1) <= max(u, v) < 2^b; each band visits Y, then Cr, then Cb, each in
               JPEG zigzag order. The DC terms come first: every sequence starts with the
               x S-downsampled image (super-resolution uses this prefix).
  "luma_first" all Y bands, then all Cr bands, then all Cb bands (colorization: the whole
               grayscale image is the prefix).
"""

import numpy as np

from dctformer_tf.dct.tables import check_block_size, zigzag_order

ORDERS = ("bands", "luma_first")
Y, CB, CR = 0, 1, 2
# Figure 2 of the paper visits Y, then Cr, then Cb within a band.
COMPONENT_VISIT = (Y, CR, CB)


def frequency_band(u: int, v: int) -> int:
    """Dyadic band of coefficient (u, v): 0 for DC, else floor(log2(max(u, v))) + 1."""
    return int(max(u, v)).bit_length()


def rank_to_raw(order: str, block_size: int) -> np.ndarray:
    """np.int32 [3·S²]: raw coefficient index of each channel id (a permutation)."""
    block_size = check_block_size(block_size)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    s2 = block_size * block_size
    num_bands = frequency_band(block_size - 1, block_size - 1) + 1
    scan = [(int(u), int(v)) for u, v in zigzag_order(block_size)]
    by_band = [[u * block_size + v for u, v in scan if frequency_band(u, v) == b]
               for b in range(num_bands)]
    if order == "bands":
        ranks = [k * s2 + i for b in range(num_bands) for k in COMPONENT_VISIT for i in by_band[b]]
    else:
        ranks = [k * s2 + i for k in COMPONENT_VISIT for b in range(num_bands) for i in by_band[b]]
    return np.array(ranks, dtype=np.int32)


def raw_to_rank(order: str, block_size: int) -> np.ndarray:
    """np.int32 [3·S²]: channel id of each raw coefficient index (inverse permutation)."""
    forward = rank_to_raw(order, block_size)
    inverse = np.empty_like(forward)
    inverse[forward] = np.arange(forward.size, dtype=np.int32)
    return inverse


def channel_components(order: str, block_size: int) -> np.ndarray:
    """np.int32 [3·S²]: component (0 Y, 1 Cb, 2 Cr) of each channel id."""
    return rank_to_raw(order, block_size) // (block_size * block_size)


def channel_bands(order: str, block_size: int) -> np.ndarray:
    """np.int32 [3·S²]: frequency band of each channel id."""
    within = rank_to_raw(order, block_size) % (block_size * block_size)
    return np.array([frequency_band(i // block_size, i % block_size) for i in within], np.int32)
