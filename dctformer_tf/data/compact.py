"""Compact sparse sequences: what the input pipeline sends to the accelerator
(docs/design.md §2.4).

A dense training example carries its partial image, int32 `[G, G, C]`: 1.8 MB at 384²
(S = 8) and 12.6 MB at 1024² (S = 16), mostly zeros, which the host would build and copy to
the device every step. So a compact example carries its sequence, packed, and the bounds of
its chunk instead; the dense partial image and the decoder window are built inside the
compiled step (`expansion.expand_chunks`), by the same function that likelihood scoring
uses (`expansion.chunk_windows`).

Packing uses the one ordering rule of every sequence (`dct/order.py`): channel ids never
decrease along it. So the channels are stored as a count per channel, and each element
stores only its position and value token, `token · 2^position_bits + position`, in the
fewest whole bytes:

    "packed"          uint8 [L_max, bytes]   little-endian (position, token) per element;
                                             zero at EOS and after it
    "channel_counts"  int16 [C] (int32 if P > 32767)  elements of each channel id, EOS not
                                             counted
    "length"          int32 []               L, EOS included

Element i's channel is the number of channels that end at or before i, so EOS (i = L − 1,
past the end of every channel) gets channel C = EOS by the same rule. At 384², S = 8
(P = 2304, V = 2401) an element takes 3 bytes; at 1024², S = 16 (P = 4096, V = 6401), 4.
"""

import sys

import numpy as np
import tensorflow as tf

from dctformer_tf.data.expansion import unpack_sequences  # noqa: F401  (re-exported)
from dctformer_tf.data.layout import SequenceLayout


def pack_sequence(triples, length, layout: SequenceLayout) -> dict:
    """One sequence in compact form (module docstring).

    Args:
      triples: int32 [L_max, 3], as `encode_dataset` yields (zero after EOS).
      length: int32 [], EOS included.
    Returns:
      {"packed": uint8 [L_max, layout.bytes_per_element],
       "channel_counts": layout.count_dtype [C], "length": int32 []}.
    """
    triples = tf.convert_to_tensor(triples, tf.int32)
    length = tf.cast(length, tf.int32)
    max_length = tf.shape(triples)[0]
    # Only the coefficients (EOS and padding excluded) are worked on, then zero-padded back
    # to L_max: a sequence rarely fills its buffer, and this runs once per kept sequence on
    # the host (docs/benchmarks.md, "Input pipeline").
    n = tf.clip_by_value(length - 1, 0, max_length)
    coefficients = triples[:n]
    word = coefficients[:, 2] * (1 << layout.position_bits) + coefficients[:, 1]
    if sys.byteorder == "little":  # the word's bytes as they lie in memory, low byte first
        packed = tf.bitcast(word, tf.uint8)[:, :layout.bytes_per_element]
    else:
        shifts = 8 * tf.range(layout.bytes_per_element)
        packed = tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(word[:, None], shifts),
                                                255), tf.uint8)
    packed = tf.pad(packed, [[0, max_length - n], [0, 0]])
    packed = tf.ensure_shape(packed, [triples.shape[0], layout.bytes_per_element])
    counts = tf.math.bincount(coefficients[:, 0], minlength=layout.dct_channels,
                              maxlength=layout.dct_channels)
    counts = tf.ensure_shape(counts, [layout.dct_channels])  # static, as XLA and TPUs need
    return {"packed": packed, "channel_counts": tf.cast(counts, layout.count_dtype),
            "length": length}


def prefix_elements(channel_counts, loss_from_channel) -> tf.Tensor:
    """int32 [...]: elements whose channel is below `loss_from_channel` (they come first).

    Args:
      channel_counts: int [..., C].
      loss_from_channel: int32 [...] or int.
    """
    counts = tf.cast(channel_counts, tf.int32)
    below = tf.range(tf.shape(counts)[-1]) < tf.cast(loss_from_channel, tf.int32)[..., None]
    return tf.reduce_sum(tf.where(below, counts, 0), axis=-1)


def example_bytes(element_spec) -> int:
    """Bytes of one example of a dataset whose elements are batches (leading axis dropped).

    Args:
      element_spec: a (nested) `tf.TensorSpec` structure with fully known shapes.
    """
    total = 0
    for spec in tf.nest.flatten(element_spec):
        shape = spec.shape[1:]
        if not shape.is_fully_defined():
            raise ValueError(f"example_bytes needs static shapes, got {spec}")
        total += int(np.prod(shape.as_list(), dtype=np.int64)) * spec.dtype.size
    return total
