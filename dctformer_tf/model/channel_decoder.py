"""First of the three stacked decoders: predicts the channel of the next triple."""

import keras
from keras import ops

from dctformer_tf.data.layout import start_triple  # noqa: F401  (re-exported)
from dctformer_tf.model.decoder_trunk import DecoderTrunk
from dctformer_tf.model.position_init import SinusoidalPositionInitializer, check_position_init
from dctformer_tf.model.value_init import SinusoidalValueInitializer, check_value_init


@keras.saving.register_keras_serializable(package="dctformer_tf")
class ChannelDecoder(DecoderTrunk):
    """Causal Transformer decoder over the previous triples that predicts channel `c_t`.

    The input at window step `t` is `E_c[c_{t-1}] + E_p[p_{t-1}] + E_v[v_{t-1}] + E_t[t]`
    (plus a class embedding when `num_classes > 0`), where `(c, p, v)_{t-1}` is the
    right-shifted triple `inputs[:, t]` (ids from `start_triple` at sequence start). The
    `DecoderTrunk` (causal `PARStack` cross-attending to the encoder output) gives the hidden
    state `h_c`, and its logits over the `C + 1` channels (EOS = `C`).

    `call(inputs [B, T, 3], encoder_output [B, N, D], label=None [B])` returns
    `(logits [B, T, C + 1], hidden [B, T, D])`; the hidden state feeds the position decoder.

    Args:
        num_channels: int. Number of DCT channels `C`.
        num_positions: int. Number of positions `P`.
        num_values: int. Value vocabulary `V`.
        window: int. Maximum window length `T` (size of the step embedding `E_t`).
        num_classes: int. Number of classes for the class embedding; 0 = unconditional.
        value_init: str. `"normal"` (N(0, 0.02²) like the other embeddings) or
            `"sinusoidal"`: `E_v` starts as Fourier features of the signed value
            (`value_init.py`), so neighbouring values start out similar.
        position_init: str. `"normal"` or `"sinusoidal_2d"`: `E_p` starts as Fourier
            features of the grid row and column (`position_init.py`); needs `grid_size`.
        grid_size: int. Luma block-grid side `G` (`P = G**2`); used by `position_init`.
        **kwargs: the `DecoderTrunk` arguments (`d_model`, `num_heads`, `layer_spec`,
            `key_size`, `dropout`, `layer_norm_epsilon`) and the base layer's.
    """

    def __init__(
        self,
        num_channels: int,
        num_positions: int,
        num_values: int,
        window: int,
        num_classes: int = 0,
        value_init: str = "normal",
        position_init: str = "normal",
        grid_size: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.position_init = check_position_init(position_init, grid_size)
        self.grid_size = grid_size
        self.num_channels = num_channels
        self.num_positions = num_positions
        self.num_values = num_values
        self.window = window
        self.num_classes = num_classes
        self.value_init = check_value_init(value_init)

        value_initializer = None
        if value_init == "sinusoidal":
            value_initializer = SinusoidalValueInitializer((num_values - 1) // 2, stddev=0.02)
        # Input ids run past the targets by START (and EOS for channels): see `start_triple`.
        self.channel_embedding = self._embedding(num_channels + 2, "channel_embedding")
        position_initializer = None
        if position_init == "sinusoidal_2d":
            position_initializer = SinusoidalPositionInitializer(grid_size, stddev=0.02)
        self.position_embedding = self._embedding(
            num_positions + 1, "position_embedding", position_initializer)
        self.value_embedding = self._embedding(num_values + 1, "value_embedding", value_initializer)
        self.step_embedding = self._embedding(window, "step_embedding")
        self.class_embedding = None
        if num_classes:
            self.class_embedding = self._embedding(num_classes, "class_embedding")
        self._create_trunk(num_channels + 1)

    def _embed(self, triples, steps, label):
        """`triples [B, T, 3]`, `steps [T]` or `[B, T]` -> input embeddings `[B, T, D]`."""
        triples = ops.cast(triples, "int32")
        embedded = (
            self.channel_embedding(triples[..., 0])
            + self.position_embedding(triples[..., 1])
            + self.value_embedding(triples[..., 2])
            + self.step_embedding(steps)
        )
        if self.class_embedding is not None:
            embedded = embedded + self.class_embedding(label)[:, None, :]  # [B, 1, D]
        return embedded

    def call(self, inputs, encoder_output, label=None, training=None):
        steps = ops.arange(ops.shape(inputs)[1])  # [T]
        return self._trunk(self._embed(inputs, steps, label), encoder_output, training)

    def decode_step(self, previous_triple, step, cache: dict, label=None):
        """One cached step: `previous_triple [B, 3]` (the input at `step`), `step` int32 scalar
        or `[B]` -> `(logits [B, C + 1], hidden [B, D], cache)`."""
        batch_size = ops.shape(previous_triple)[0]
        steps = ops.broadcast_to(ops.cast(step, "int32"), (batch_size,))  # [B]
        embedded = self._embed(previous_triple[:, None, :], steps[:, None], label)  # [B, 1, D]
        return self._trunk_step(embedded, cache, steps)
