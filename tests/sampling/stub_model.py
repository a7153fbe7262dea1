"""Stub models with the `DCTransformer` decoding interface, for sampler tests (t5x-style).

`ScriptedModel` forces known sequences: at sequence index i its logits put all mass on
`script[b, i]` — but only if everything it was given is what a correct sampler gives it
(partial image = scatter of the elements before the chunk, previous triple = element i − 1
or START, the channel and position of this step). Otherwise it points at a wrong token, so a
sampler that feeds anything wrong cannot reproduce the script.

`RandomModel` returns random logits that favour invalid triples, for the mask tests.
"""

import numpy as np
import tensorflow as tf

from dctformer_tf.dct import tf_ops

BIG = 30.0


class _StubBase:
    num_classes = 0
    d_model = 4
    compute_dtype = "float32"

    def __init__(self, codec, chunk_size, overlap):
        self.codec = codec
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.window = chunk_size + overlap
        self.num_channels = codec.num_channels
        self.num_positions = codec.num_positions
        self.num_values = codec.num_values

    def init_cache(self, encoder_output, window):
        zeros = tf.zeros_like(encoder_output["chunk_start"])
        return {**encoder_output, "channel": zeros, "previous_position": zeros}


class ScriptedModel(_StubBase):
    """Forces `script` (int32 [B, L, 3], each row a valid sequence ending in EOS)."""

    def __init__(self, codec, chunk_size, overlap, script):
        super().__init__(codec, chunk_size, overlap)
        self.script = tf.constant(script, tf.int32)
        self.start = tf.constant([codec.dct_channels + 1, codec.num_positions,
                                  codec.num_values], tf.int32)

    def encode(self, partial_image, label=None):
        # Values are never zero, so the non-zero count is the number of elements before
        # the chunk; the partial image must equal the scatter of exactly those.
        count = tf.math.count_nonzero(partial_image, axis=[1, 2, 3], dtype=tf.int32)  # [B]
        expected = tf_ops.sparse_to_dense(self.script, self.codec, self.codec.grid,
                                          length=count)
        exact = tf.reduce_all(tf.equal(expected, partial_image), axis=[1, 2, 3])
        return {"chunk_start": tf.zeros_like(count) + tf.reduce_max(count), "partial_ok": exact}

    def _index(self, cache, step):
        window_start = tf.maximum(cache["chunk_start"] - self.overlap, 0)
        return window_start + step  # [B] sequence index

    def _row(self, i):
        i = tf.clip_by_value(i, 0, self.script.shape[1] - 1)
        return tf.gather(self.script, i, batch_dims=1)

    def _logits(self, token, size, ok):
        token = tf.where(ok, token, (token + 1) % size)  # wrong inputs -> wrong token
        return tf.one_hot(token, size) * BIG

    def decode_channel_step(self, cache, previous_triple, step, label=None):
        i = self._index(cache, step)
        expected_previous = tf.where((i == 0)[:, None], self.start[None], self._row(i - 1))
        ok = cache["partial_ok"] & tf.reduce_all(previous_triple == expected_previous, axis=-1)
        return self._logits(self._row(i)[:, 0], self.num_channels, ok), cache

    def decode_position_step(self, cache, channel, step):
        i = self._index(cache, step)
        ok = channel == self._row(i)[:, 0]
        return self._logits(self._row(i)[:, 1], self.num_positions, ok), {
            **cache, "channel": channel}

    def decode_value_step(self, cache, position, step):
        i = self._index(cache, step)
        ok = (position == self._row(i)[:, 1]) & (cache["channel"] == self._row(i)[:, 0])
        return self._logits(self._row(i)[:, 2], self.num_values, ok), cache


class RandomModel(_StubBase):
    """Random logits (seeded by step and chunk) with a pull toward invalid choices: the
    previous channel and position, position 0, chroma at odd cells, the zero value."""

    def encode(self, partial_image, label=None):
        count = tf.math.count_nonzero(partial_image, axis=[1, 2, 3], dtype=tf.int32)
        return {"chunk_start": count}

    def _noise(self, cache, step, size, salt):
        batch = tf.shape(cache["chunk_start"])[0]
        seed = tf.stack([tf.reduce_max(cache["chunk_start"]) * 1000 + step, salt])
        return tf.random.stateless_normal([batch, size], seed, stddev=3.0)

    def decode_channel_step(self, cache, previous_triple, step, label=None):
        logits = self._noise(cache, step, self.num_channels, 1)
        # Favour staying in (or going back before) the previous channel; discourage EOS.
        previous = previous_triple[:, 0]
        previous = tf.where(previous >= self.num_channels, 0, previous)  # START -> 0
        logits += 20.0 * tf.one_hot(previous, self.num_channels)
        logits += 20.0 * tf.one_hot(tf.maximum(previous - 1, 0), self.num_channels)
        logits += 15.0 * tf.one_hot(previous + 1, self.num_channels)
        logits -= 30.0 * tf.one_hot(self.num_channels - 1, self.num_channels)
        return logits, {**cache, "previous_position": tf.minimum(previous_triple[:, 1],
                                                                 self.num_positions - 1)}

    def decode_position_step(self, cache, channel, step):
        logits = self._noise(cache, step, self.num_positions, 2)
        logits += 4.0 * tf.one_hot(cache["previous_position"], self.num_positions)
        logits += 3.0 * tf.one_hot(tf.zeros_like(channel), self.num_positions)
        logits += 3.0 * tf.one_hot(tf.ones_like(channel), self.num_positions)  # odd cell
        return logits, cache

    def decode_value_step(self, cache, position, step):
        logits = self._noise(cache, step, self.num_values, 3)
        logits += 6.0 * tf.one_hot(tf.fill(tf.shape(position), self.codec.clip), self.num_values)
        return logits, cache


def random_sequence(codec, rng, length: int) -> np.ndarray:
    """A valid sparse sequence of `length` elements plus EOS (random non-zeros of a
    random dense image restricted to valid cells), int32 [length + 1, 3]."""
    from dctformer_tf.dct import np_ops

    g = codec.grid[0]
    dense = np.zeros((g, g, codec.dct_channels), np.int32)
    from dctformer_tf.dct.order import channel_components

    chroma = channel_components(codec.order, codec.block_size) > 0
    rows, cols = np.indices((g, g))
    valid = np.broadcast_to(~chroma[None, None] | ((rows % 2 == 0) & (cols % 2 == 0))[..., None],
                            dense.shape)
    cells = np.flatnonzero(valid.ravel())
    chosen = rng.choice(cells, size=length, replace=False)
    values = rng.integers(1, 50, size=length) * rng.choice([-1, 1], size=length)
    dense.ravel()[chosen] = values
    return np_ops.dense_to_sparse(dense, codec)
