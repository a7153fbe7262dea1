"""Compact sequences in numpy: the twin of `compact.py`, byte for byte (docs/design.md §2.5).

Imports numpy and TensorFlow-free modules only (the numpy input path's hosts have no
TensorFlow).

Letters: B sequences, L_max = max_length, C channels.
"""

import numpy as np

from dctformer_tf.data.layout import SequenceLayout


def pack_sequences(triples, length, layout: SequenceLayout) -> dict:
    """Sequences in compact form: `compact.pack_sequence` on each row, byte for byte.

    Args:
      triples: int [B, L_max, 3] (zero after EOS).
      length: int [B], EOS included.
      layout: the sequences' `SequenceLayout`.
    Returns:
      {"packed": uint8 [B, L_max, layout.bytes_per_element] (the little-endian bytes of
       `token·2^position_bits + position`, zero at EOS and after),
       "channel_counts": layout.count_dtype [B, C] (EOS not counted),
       "length": int32 [B]}.
    """
    triples = np.asarray(triples)
    length = np.asarray(length, np.int32)
    batch, max_length, _ = triples.shape
    channels = layout.dct_channels
    n = np.clip(length - 1, 0, max_length)  # coefficients: EOS and padding excluded
    # Only the columns that hold a coefficient are worked on: a sequence fills a fraction
    # of its buffer.
    used = triples[:, :int(n.max(initial=0))]  # [B, W, 3]
    coefficient = np.arange(used.shape[1])[None, :] < n[:, None]  # [B, W]
    word = used[..., 2].astype(np.int64) * (1 << layout.position_bits) + used[..., 1]
    word = np.where(coefficient, word, 0).astype("<u4")  # explicit byte order: any host
    packed = np.zeros((batch, max_length, layout.bytes_per_element), np.uint8)
    packed[:, :used.shape[1]] = word[..., None].view(np.uint8)[..., :layout.bytes_per_element]
    # One bincount over (row, channel) pairs counts every row's channels at once.
    flat = (np.arange(batch)[:, None] * channels + used[..., 0])[coefficient]
    counts = np.bincount(flat, minlength=batch * channels).reshape(batch, channels)
    return {"packed": packed, "channel_counts": counts.astype(layout.count_dtype),
            "length": length}


def prefix_elements(channel_counts, loss_from_channel) -> np.ndarray:
    """int32 [...]: elements whose channel is below `loss_from_channel` (they come first).

    Args:
      channel_counts: int [..., C].
      loss_from_channel: int, or int [...].
    """
    counts = np.asarray(channel_counts, np.int32)
    below = np.arange(counts.shape[-1]) < np.asarray(loss_from_channel)[..., None]
    return np.where(below, counts, 0).sum(axis=-1, dtype=np.int32)
