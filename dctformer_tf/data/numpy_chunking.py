"""The chunk law, length filter and chunk bounds in numpy: the twins of `chunking.py`
(docs/design.md §2.4, §2.5).

The random choices follow the same laws as the TensorFlow functions of the same names, drawn
from a numpy `Generator`: the same distribution, not the same draws. Imports numpy and
TensorFlow-free modules only.

Letters: M examples, C channels.
"""

import numpy as np

from dctformer_tf.data.numpy_compact import prefix_elements


def num_chunks(length, chunk_size: int) -> np.ndarray:
    """`ceil(L / chunk_size)`: chunks in a sequence of `length` elements (EOS included)."""
    return (np.asarray(length, np.int64) + chunk_size - 1) // chunk_size


def sample_chunk_index(length, chunk_size: int, p_min: float, power: float,
                       rng: np.random.Generator) -> np.ndarray:
    """One chunk index per length, `P(k) ∝ max((k+1)^−power, p_min)` over
    `k < ceil(L / chunk_size)`.

    Args:
      length: int [...] L >= 1, EOS included.
      rng: the draws' generator (one uniform per length).
    Returns:
      int32 [...].
    """
    n = num_chunks(length, chunk_size)
    if n.size == 0:
        return np.zeros(n.shape, np.int32)
    if n.min() < 1:
        raise ValueError(f"sequence lengths must be at least 1 (EOS), got {int(n.min())} chunks")
    # The weights do not depend on L, only how many of them count: one cumulative table,
    # cut at each sequence's last chunk by its total.
    weights = np.maximum((np.arange(n.max()) + 1.0) ** -power, p_min)  # [K]
    cumulative = np.cumsum(weights)
    draw = rng.random(n.shape) * cumulative[n - 1]
    index = np.searchsorted(cumulative, draw, side="right")
    return np.minimum(index, n - 1).astype(np.int32)  # a draw rounded up to the total


def length_filter_keep_probability(length, l_max) -> np.ndarray:
    """Eq. 11: keep a sequence of length L with probability `min(1, L / L_max)`: float64 [...]."""
    if not l_max or l_max <= 0:
        raise ValueError(f"l_max must be a positive length (or None to disable), got {l_max!r}")
    return np.minimum(1.0, np.asarray(length, np.float64) / float(l_max))


def examples_from_sequence(length, l_max, examples_per_encode: int,
                           rng: np.random.Generator) -> np.ndarray:
    """int32 [...]: training examples per encoded sequence, as `chunking.examples_from_sequence`:
    `floor(r·q)` plus one with probability `frac(r·q)`, `q = min(1, L / l_max)` (1 without
    an l_max), so the mean is `r·q`.

    Args:
      length: int [...]; examples_per_encode: r >= 1; rng: one uniform per length.
    """
    length = np.asarray(length)
    q = np.ones(length.shape) if l_max is None else length_filter_keep_probability(length, l_max)
    mean = examples_per_encode * q
    whole = np.floor(mean)
    return (whole + (rng.random(length.shape) < mean - whole)).astype(np.int32)


def chunk_bounds(length, chunk_index, chunk_size: int, overlap: int) -> tuple:
    """Where chunk k lies in its sequence (`chunking.chunk_bounds`), elementwise.

    Args:
      length: int [...] L; chunk_index: int [...] k with k·chunk_size < L.
    Returns:
      (chunk_start, chunk_end, window_start), each int32 [...].
    """
    length = np.asarray(length, np.int32)
    chunk_start = np.asarray(chunk_index, np.int32) * np.int32(chunk_size)
    if np.any(chunk_start >= length):
        raise ValueError("chunk_index must satisfy chunk_index·chunk_size < length; got "
                         f"chunk_start {chunk_start.tolist()} for length {length.tolist()}")
    chunk_end = np.minimum(chunk_start + chunk_size, length)
    window_start = np.maximum(chunk_start - overlap, 0).astype(np.int32)
    return chunk_start, chunk_end, window_start


def compact_examples(packed: dict, chunk_index, chunk_size: int, overlap: int,
                     loss_from_channel: int = 0) -> dict:
    """Examples in compact form, `chunking.compact_example` with a leading axis.

    Args:
      packed: dict of arrays [M, ...] with at least "length" int [M] and
        "channel_counts" int [M, C] (`pack_sequences`' keys plus "content_hw", "label").
      chunk_index: int [M].
    Returns:
      packed's keys plus int32 [M] "chunk_index", "chunk_start", "chunk_end",
      "window_start", "loss_from_channel" and "loss_tokens".
    """
    chunk_start, chunk_end, window_start = chunk_bounds(packed["length"], chunk_index,
                                                        chunk_size, overlap)
    # Channels never decrease: the first `prefix` elements are exactly those below
    # loss_from_channel, so the loss tokens are the chunk's elements past that prefix.
    prefix = prefix_elements(packed["channel_counts"], loss_from_channel)
    loss_tokens = np.maximum(chunk_end - np.maximum(chunk_start, prefix), 0)
    return {**packed, "chunk_index": np.asarray(chunk_index, np.int32),
            "chunk_start": chunk_start, "chunk_end": chunk_end, "window_start": window_start,
            "loss_from_channel": np.full(chunk_start.shape, loss_from_channel, np.int32),
            "loss_tokens": loss_tokens.astype(np.int32)}
