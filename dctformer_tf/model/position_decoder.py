"""Second of the three stacked decoders: predicts position `p_t` given channel `c_t`."""

import keras
from keras import ops

from dctformer_tf.model.decoder_trunk import DecoderTrunk
from dctformer_tf.model.position_init import SinusoidalPositionInitializer, check_position_init


@keras.saving.register_keras_serializable(package="dctformer_tf")
class PositionDecoder(DecoderTrunk):
    """Causal Transformer decoder that predicts the position of triple `t` given its channel.

    The input at step `t` is the channel decoder's hidden state `h_c[t]` (the residual stream
    before its output layer norm) plus `E'_c[c_t]`, the embedding of the teacher-forced
    target channel. The `DecoderTrunk` (causal `PARStack` cross-attending to the encoder
    output) gives the hidden state `h_p` and logits over the `P` positions.

    `call(channel_hidden [B, T, D], target_channel [B, T], encoder_output [B, N, D])` returns
    `(logits [B, T, P], hidden [B, T, D])`; the hidden state feeds the value decoder.

    Args:
        num_channels: int. Number of DCT channels `C` (targets range over `C + 1` with EOS).
        num_positions: int. Number of positions `P`.
        position_init: str. `"normal"` (Glorot-uniform logits kernel) or `"sinusoidal_2d"`:
            the kernel's column for position `p` starts as Fourier features of its grid row
            and column (`position_init.py`), so the first logits are smooth over the grid.
        grid_size: int. Luma block-grid side `G` (`P = G**2`); used by `position_init`.
        **kwargs: the `DecoderTrunk` arguments (`d_model`, `num_heads`, `layer_spec`,
            `key_size`, `dropout`, `layer_norm_epsilon`) and the base layer's.
    """

    def __init__(self, num_channels: int, num_positions: int, position_init: str = "normal",
                 grid_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.num_positions = num_positions
        self.position_init = check_position_init(position_init, grid_size)
        self.grid_size = grid_size
        self.target_channel_embedding = self._embedding(
            num_channels + 1, "target_channel_embedding"
        )
        logits_initializer = "glorot_uniform"
        if position_init == "sinusoidal_2d":
            logits_initializer = SinusoidalPositionInitializer(grid_size, transpose=True)
        self._create_trunk(num_positions, logits_initializer)

    def _embed(self, channel_hidden, target_channel):
        """`channel_hidden [B, T, D]`, `target_channel [B, T]` -> inputs `[B, T, D]`."""
        return channel_hidden + self.target_channel_embedding(ops.cast(target_channel, "int32"))

    def call(self, channel_hidden, target_channel, encoder_output, training=None):
        return self._trunk(self._embed(channel_hidden, target_channel), encoder_output, training)

    def decode_step(self, channel_hidden, channel, step, cache: dict):
        """One cached step: `channel_hidden [B, D]`, sampled/forced `channel [B]`, `step`
        int32 scalar or `[B]` -> `(logits [B, P], hidden [B, D], cache)`."""
        embedded = self._embed(channel_hidden[:, None, :], channel[:, None])  # [B, 1, D]
        return self._trunk_step(embedded, cache, step)
