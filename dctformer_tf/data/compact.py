"""Compact sparse sequences: what the input pipeline sends to the accelerator
(docs/design.md §2.4).

A training example used to carry its dense partial image, int32 `[G, G, C]`: 1.8 MB at 384²
(S = 8) and 12.6 MB at 1024² (S = 16), mostly zeros, built on the host and copied to the
device every step. It now carries its sequence, packed, and the bounds of its chunk; the
dense partial image and the decoder window are built inside the compiled step
(`expand_chunks`), by the same function that likelihood scoring uses
(`chunking.chunk_windows`).

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

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class SequenceLayout:
    """The ranges of a sparse sequence's numbers, from the three settings that fix them.

    It stands in for a `SparseCodec` where only these matter (packing, the dense scatter of
    `tf_ops.sparse_to_dense`), so that a model, which knows `block_size`, `grid_size` and
    `clip` but not the quality, can unpack its batches.

    Args:
      block_size: int. DCT block size S.
      grid_size: int. Luma block grid side G.
      clip: int. Largest quantized magnitude.
    """

    block_size: int
    grid_size: int
    clip: int

    @classmethod
    def of_codec(cls, codec) -> "SequenceLayout":
        if codec.grid is None:
            raise ValueError("a compact sequence needs a codec with a resolution (static grid)")
        return cls(codec.block_size, codec.grid[0], codec.clip)

    @property
    def dct_channels(self) -> int:
        return 3 * self.block_size**2

    @property
    def eos(self) -> int:
        return self.dct_channels

    @property
    def num_positions(self) -> int:
        return self.grid_size**2

    @property
    def num_values(self) -> int:
        return 2 * self.clip + 1

    @property
    def grid(self) -> tuple:
        return (self.grid_size, self.grid_size)

    @property
    def position_bits(self) -> int:
        return max(1, (self.num_positions - 1).bit_length())

    @property
    def value_bits(self) -> int:
        return max(1, (self.num_values - 1).bit_length())

    @property
    def bytes_per_element(self) -> int:
        bits = self.position_bits + self.value_bits
        if bits > 31:  # unpacked in int32 arithmetic
            raise ValueError(f"positions ({self.num_positions}) and values ({self.num_values}) "
                             "need more than 31 bits per element")
        return -(-bits // 8)

    @property
    def count_dtype(self) -> tf.DType:
        return tf.int16 if self.num_positions <= np.iinfo(np.int16).max else tf.int32


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
    channel, position, token = tf.unstack(triples, axis=-1)  # each [L_max]
    coefficient = tf.range(tf.shape(triples)[0]) < length - 1  # EOS and padding excluded
    word = tf.where(coefficient, token * (1 << layout.position_bits) + position, 0)
    shifts = 8 * tf.range(layout.bytes_per_element)
    packed = tf.cast(tf.bitwise.bitwise_and(tf.bitwise.right_shift(word[:, None], shifts), 255),
                     tf.uint8)
    counts = tf.math.unsorted_segment_sum(tf.cast(coefficient, tf.int32),
                                          tf.where(coefficient, channel, 0), layout.dct_channels)
    return {"packed": packed, "channel_counts": tf.cast(counts, layout.count_dtype),
            "length": length}


def unpack_sequences(packed, channel_counts, length, layout: SequenceLayout) -> tf.Tensor:
    """The int32 triples of packed sequences; runs inside the compiled step.

    Args:
      packed: uint8 [B, L_max, bytes].
      channel_counts: int [B, C].
      length: int32 [B].
    Returns:
      int32 [B, L_max, 3], equal to the triples `pack_sequence` was given (EOS row
      `(C, 0, 0)`, zeros after it).
    """
    packed = tf.cast(packed, tf.int32)
    shifts = 8 * tf.range(layout.bytes_per_element)
    word = tf.reduce_sum(tf.bitwise.left_shift(packed, shifts), axis=-1)  # [B, L_max]
    position = tf.bitwise.bitwise_and(word, (1 << layout.position_bits) - 1)
    token = tf.bitwise.right_shift(word, layout.position_bits)
    channel = _channels_from_counts(tf.cast(channel_counts, tf.int32), tf.shape(word)[1])
    steps = tf.range(tf.shape(word)[1])[None, :]
    real = steps < tf.cast(length, tf.int32)[:, None]
    triples = tf.stack([channel, position, token], axis=-1)
    return tf.where(real[..., None], triples, 0)


def _channels_from_counts(counts, max_length) -> tf.Tensor:
    """int32 [B, C] counts -> int32 [B, L_max]: channel i = #channels ending at or before i.

    A scatter of one mark per channel end and a running sum: O(L + C), no [L, C] compare.
    """
    batch = tf.shape(counts)[0]
    ends = tf.minimum(tf.cumsum(counts, axis=1), max_length)  # [B, C] exclusive ends
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(ends))
    marks = tf.tensor_scatter_nd_add(tf.zeros([batch, max_length + 1], tf.int32),
                                     tf.stack([rows, ends], axis=-1), tf.ones_like(ends))
    return tf.cumsum(marks, axis=1)[:, :max_length]


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
