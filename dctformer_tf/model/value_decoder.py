"""Third of the three stacked decoders: predicts value `v_t` given channel and position."""

from collections.abc import Sequence

import keras
from keras import ops

from dctformer_tf.model.par_stack import PARStack, normalize_layer_spec
from dctformer_tf.model.partial_image_encoder import encoder_cell_index
from dctformer_tf.model.value_init import SinusoidalValueInitializer, check_value_init


def gather_encoder_cells(encoder_output, positions, grid_size: int, conv_stride: int):
    """Encoder tokens at the cells containing `positions`.

    Args:
        encoder_output: `[B, N, D]` output of `PartialImageEncoder`.
        positions: int `[B, T]` positions in `[0, G**2)`.
        grid_size: int. Luma block-grid side `G`.
        conv_stride: int. Stride of the encoder's conv.

    Returns:
        `[B, T, D]`: `encoder_output[b, encoder_cell_index(positions[b, t])]`.
    """
    cells = encoder_cell_index(positions, grid_size, conv_stride)  # [B, T]
    return ops.take_along_axis(encoder_output, cells[:, :, None], axis=1)  # -> [B, T, D]


@keras.saving.register_keras_serializable(package="dctformer_tf")
class ValueDecoder(keras.layers.Layer):
    """Causal Transformer decoder that predicts the value of triple `t` given channel, position.

    The input at step `t` is the position decoder's hidden state `h_p[t]` plus `E'_p[p_t]`
    (the teacher-forced target position) plus the encoder output at the encoder token whose
    cell contains `p_t` (`gather_encoder_cells`). A causal `PARStack` with cross-attention to
    the encoder output, then `LayerNorm -> Dense` (float32), gives logits over the `V` value
    tokens.

    `call(position_hidden [B, T, D], target_position [B, T], encoder_output [B, N, D])`
    returns `logits [B, T, V]`.

    Args:
        num_positions: int. Number of positions `P = G**2`.
        num_values: int. Value vocabulary `V`.
        grid_size: int. Luma block-grid side `G`.
        conv_stride: int. Stride of the encoder's conv (locates the encoder cell of `p_t`).
        d_model: int. Model width `D`.
        num_heads: int. Number of attention heads.
        layer_spec: list of `(n_attention, n_dense)` tuples for the `PARStack`.
        key_size: int. Size of each attention head.
        dropout: float. Dropout rate on the residual branches.
        layer_norm_epsilon: float. Epsilon of the layer norms.
        value_init: str. `"normal"` (Glorot-uniform logits kernel) or `"sinusoidal"`: the
            kernel's column for value `v` starts as Fourier features of `v`
            (`value_init.py`), so the first logits are smooth in `v`.
    """

    def __init__(
        self,
        num_positions: int,
        num_values: int,
        grid_size: int,
        conv_stride: int,
        d_model: int,
        num_heads: int,
        layer_spec: Sequence[Sequence[int]],
        key_size: int = 64,
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        value_init: str = "normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_positions = num_positions
        self.num_values = num_values
        self.grid_size = grid_size
        self.conv_stride = conv_stride
        self.d_model = d_model
        self.num_heads = num_heads
        self.layer_spec = normalize_layer_spec(layer_spec)
        self.key_size = key_size
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.value_init = check_value_init(value_init)

        self.target_position_embedding = keras.layers.Embedding(
            num_positions,
            d_model,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="target_position_embedding",
        )
        self.stack = PARStack(
            self.layer_spec,
            num_heads,
            key_size=key_size,
            dropout=dropout,
            causal=True,
            cross_attention=True,
            layer_norm_epsilon=layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="stack",
        )
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype="float32", name="output_norm"
        )
        kernel_initializer = "glorot_uniform"
        if value_init == "sinusoidal":
            kernel_initializer = SinusoidalValueInitializer((num_values - 1) // 2, transpose=True)
        self.output_dense = keras.layers.Dense(
            num_values, kernel_initializer=kernel_initializer, dtype="float32", name="logits"
        )

    def build(self, position_hidden_shape, target_position_shape, encoder_output_shape):
        self.target_position_embedding.build((None,))
        hidden_shape = (None, None, self.d_model)
        self.stack.build(hidden_shape, encoder_output_shape)
        self.output_norm.build(hidden_shape)
        self.output_dense.build(hidden_shape)
        self.built = True

    def _inputs(self, position_hidden, target_position, encoder_output):
        """`position_hidden [B, T, D]`, `target_position [B, T]` -> inputs `[B, T, D]`."""
        target_position = ops.cast(target_position, "int32")
        cells = gather_encoder_cells(
            encoder_output, target_position, self.grid_size, self.conv_stride
        )
        return position_hidden + self.target_position_embedding(target_position) + cells

    def call(self, position_hidden, target_position, encoder_output, training=None):
        inputs = self._inputs(position_hidden, target_position, encoder_output)
        hidden = self.stack(inputs, context=encoder_output, training=training)
        return self.output_dense(self.output_norm(hidden))

    def init_cache(self, encoder_output, window: int) -> dict:
        """Decoding cache for `window` steps: see `PARStack.init_cache`."""
        return self.stack.init_cache(encoder_output, window)

    def decode_step(self, position_hidden, position, step, encoder_output, cache: dict):
        """One cached step: `position_hidden [B, D]`, sampled/forced `position [B]`, `step`
        int32 scalar or `[B]`, `encoder_output [B, N, D]` -> `(logits [B, V], cache)`."""
        inputs = self._inputs(position_hidden[:, None, :], position[:, None], encoder_output)
        hidden, cache = self.stack.call_step(inputs, cache, step)  # [B, 1, D]
        return self.output_dense(self.output_norm(hidden[:, 0])), cache

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_positions": self.num_positions,
                "num_values": self.num_values,
                "grid_size": self.grid_size,
                "conv_stride": self.conv_stride,
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "layer_spec": self.layer_spec,
                "key_size": self.key_size,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "value_init": self.value_init,
            }
        )
        return config
