"""A learned attention bias for the offset between two cells of the block grid.

The value decoder knows the grid cell of every element it attends over (its target
positions), so one head can be taught to look at the element one cell to the left, another
at the one above, whatever their distance in the sequence. With `attention_bias="grid_2d"`
its self-attention logits get a learned term per head and per grid offset,

    logit[h, i, j] += b[h, Δrow(i, j), Δcol(i, j)],   Δ ∈ [−(G−1), G−1],

shared by the decoder's attention layers (as T5 shares its relative-position bias across a
stack). The table starts at zero, so a new model computes exactly what it computes without
the option; training moves it. Ids past the grid (none occur among target positions, but a
padded slot may hold any id) share one extra entry per head.
"""

import keras
from keras import ops

ATTENTION_BIASES = ("none", "grid_2d")


def check_attention_bias(attention_bias: str) -> str:
    if attention_bias not in ATTENTION_BIASES:
        raise ValueError(
            f"attention_bias must be one of {ATTENTION_BIASES}, got {attention_bias!r}")
    return attention_bias


def grid_offset_index(query_positions, key_positions, grid_size: int):
    """int32 `[B, T, S]`: the index of the offset between each query cell and each key cell
    in a table of `(2G − 1)² + 1` entries (the last for ids past the grid).

    Args:
      query_positions: int `[B, T]`; key_positions: int `[B, S]` (positions in `[0, G²)`).
    """
    g = grid_size
    q = ops.cast(query_positions, "int32")[:, :, None]  # [B, T, 1]
    k = ops.cast(key_positions, "int32")[:, None, :]  # [B, 1, S]
    rows = q // g - k // g + (g - 1)
    cols = q % g - k % g + (g - 1)
    inside = ops.logical_and(ops.less(q, g * g), ops.less(k, g * g))
    return ops.where(inside, rows * (2 * g - 1) + cols, (2 * g - 1) ** 2)


@keras.saving.register_keras_serializable(package="dctformer_tf")
class GridAttentionBias(keras.layers.Layer):
    """`call(query_positions [B, T], key_positions [B, S])` -> float32 `[B, H, T, S]`: the
    learned bias of each head for each pair's grid offset (`grid_offset_index`).

    Args:
      grid_size: int. Luma block-grid side `G`.
      num_heads: int. Attention heads `H`.
    """

    def __init__(self, grid_size: int, num_heads: int, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.grid_size = grid_size
        self.num_heads = num_heads

    def build(self, *input_shapes):
        self.table = self.add_weight(
            name="table", shape=(self.num_heads, (2 * self.grid_size - 1) ** 2 + 1),
            initializer="zeros")
        self.built = True

    def call(self, query_positions, key_positions):
        index = grid_offset_index(query_positions, key_positions, self.grid_size)  # [B, T, S]
        bias = ops.take(self.table, index, axis=1)  # [H, B, T, S]
        return ops.transpose(bias, (1, 0, 2, 3))

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update({"grid_size": self.grid_size, "num_heads": self.num_heads})
        return config
