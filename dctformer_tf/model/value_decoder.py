"""Third of the three stacked decoders: predicts value `v_t` given channel and position."""

import keras
from keras import ops

from dctformer_tf.model.decoder_trunk import DecoderTrunk
from dctformer_tf.model.grid_attention_bias import GridAttentionBias, check_attention_bias
from dctformer_tf.model.partial_image_encoder import encoder_cell_index
from dctformer_tf.model.position_init import SinusoidalPositionInitializer, check_position_init
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
class ValueDecoder(DecoderTrunk):
    """Causal Transformer decoder that predicts the value of triple `t` given channel, position.

    The input at step `t` is the position decoder's hidden state `h_p[t]` plus `E'_p[p_t]`
    (the teacher-forced target position) plus the encoder output at the encoder token whose
    cell contains `p_t` (`gather_encoder_cells`). The `DecoderTrunk` (causal `PARStack`
    cross-attending to the encoder output) gives logits over the `V` value tokens.

    `call(position_hidden [B, T, D], target_position [B, T], encoder_output [B, N, D])`
    returns `logits [B, T, V]`.

    Args:
        num_positions: int. Number of positions `P = G**2`.
        num_values: int. Value vocabulary `V`.
        grid_size: int. Luma block-grid side `G`.
        conv_stride: int. Stride of the encoder's conv (locates the encoder cell of `p_t`).
        value_init: str. `"normal"` (Glorot-uniform logits kernel) or `"sinusoidal"`: the
            kernel's column for value `v` starts as Fourier features of `v`
            (`value_init.py`), so the first logits are smooth in `v`.
        position_init: str. `"normal"` or `"sinusoidal_2d"`: `E'_p` starts as Fourier
            features of the grid row and column (`position_init.py`).
        attention_bias: str. `"none"` or `"grid_2d"`: the self-attention logits get a
            learned bias per head for the grid offset between the two elements' target
            positions (`grid_attention_bias.py`); the decoding cache then also holds the
            window's positions.
        **kwargs: the `DecoderTrunk` arguments (`d_model`, `num_heads`, `layer_spec`,
            `key_size`, `dropout`, `layer_norm_epsilon`) and the base layer's.
    """

    def __init__(
        self,
        num_positions: int,
        num_values: int,
        grid_size: int,
        conv_stride: int,
        value_init: str = "normal",
        position_init: str = "normal",
        attention_bias: str = "none",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.value_init = check_value_init(value_init)
        self.position_init = check_position_init(position_init, grid_size)
        self.attention_bias = check_attention_bias(attention_bias)
        self.num_positions = num_positions
        self.num_values = num_values
        self.grid_size = grid_size
        self.conv_stride = conv_stride

        position_initializer = None
        if position_init == "sinusoidal_2d":
            position_initializer = SinusoidalPositionInitializer(grid_size, stddev=0.02)
        self.target_position_embedding = self._embedding(
            num_positions, "target_position_embedding", position_initializer)
        logits_initializer = "glorot_uniform"
        if value_init == "sinusoidal":
            logits_initializer = SinusoidalValueInitializer((num_values - 1) // 2, transpose=True)
        self._create_trunk(num_values, logits_initializer)
        self.grid_bias = None
        if attention_bias == "grid_2d":
            self.grid_bias = GridAttentionBias(grid_size, self.num_heads, name="grid_bias")

    def build(self, *input_shapes):
        super().build(*input_shapes)
        if self.grid_bias is not None:
            self.grid_bias.build()

    def _embed(self, position_hidden, target_position, encoder_output):
        """`position_hidden [B, T, D]`, `target_position [B, T]` -> inputs `[B, T, D]`."""
        target_position = ops.cast(target_position, "int32")
        cells = gather_encoder_cells(
            encoder_output, target_position, self.grid_size, self.conv_stride
        )
        return position_hidden + self.target_position_embedding(target_position) + cells

    def call(self, position_hidden, target_position, encoder_output, training=None):
        embedded = self._embed(position_hidden, target_position, encoder_output)
        bias = None
        if self.grid_bias is not None:
            bias = self.grid_bias(target_position, target_position)  # [B, H, T, T]
        logits, _ = self._trunk(embedded, encoder_output, training, bias)
        return logits

    def init_cache(self, encoder_output, window: int) -> dict:
        """`DecoderTrunk.init_cache`, plus `"positions"` int32 `[B, window]` (the window's
        target positions so far) with the grid attention bias."""
        cache = super().init_cache(encoder_output, window)
        if self.grid_bias is not None:
            cache["positions"] = ops.zeros((ops.shape(encoder_output)[0], window), "int32")
        return cache

    def decode_step(self, position_hidden, position, step, encoder_output, cache: dict):
        """One cached step: `position_hidden [B, D]`, sampled/forced `position [B]`, `step`
        int32 scalar or `[B]`, `encoder_output [B, N, D]` -> `(logits [B, V], cache)`."""
        embedded = self._embed(position_hidden[:, None, :], position[:, None], encoder_output)
        bias = None
        if self.grid_bias is not None:
            positions = cache["positions"]  # [B, window]
            slots = ops.arange(ops.shape(positions)[1], dtype="int32")
            index = ops.broadcast_to(ops.cast(step, "int32"), ops.shape(position))  # [B]
            positions = ops.where(ops.equal(slots[None, :], index[:, None]),
                                  ops.cast(position, "int32")[:, None], positions)
            cache = {**cache, "positions": positions}
            bias = self.grid_bias(position[:, None], positions)  # [B, H, 1, window]
        logits, _, cache = self._trunk_step(embedded, cache, step, bias)
        return logits, cache
