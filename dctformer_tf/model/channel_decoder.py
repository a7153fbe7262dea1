"""First of the three stacked decoders: predicts the channel of the next triple."""

from collections.abc import Sequence

import keras
from keras import ops

from dctformer_tf.model.par_stack import PARStack, normalize_layer_spec
from dctformer_tf.model.value_init import SinusoidalValueInitializer, check_value_init


def start_triple(num_channels: int, num_positions: int, num_values: int) -> tuple[int, int, int]:
    """The START triple that precedes the first element of a sequence in decoder inputs.

    Decoder inputs are the window triples shifted right by one; at sequence start the first
    input is this triple. Its ids lie just past the target vocabularies, so the input
    embeddings have `C + 2` channel ids (`C` = EOS, `C + 1` = START), `P + 1` position ids
    (`P` = START) and `V + 1` value ids (`V` = START).

    Args:
        num_channels: int. Number of DCT channels `C = 3 * S**2` (EOS excluded).
        num_positions: int. Number of positions `P = G**2`.
        num_values: int. Value vocabulary `V = 2 * clip + 1`.

    Returns:
        `(C + 1, P, V)`: channel, position and value_token ids of the START triple.
    """
    return num_channels + 1, num_positions, num_values


@keras.saving.register_keras_serializable(package="dctformer_tf")
class ChannelDecoder(keras.layers.Layer):
    """Causal Transformer decoder over the previous triples that predicts channel `c_t`.

    The input at window step `t` is `E_c[c_{t-1}] + E_p[p_{t-1}] + E_v[v_{t-1}] + E_t[t]`
    (plus a class embedding when `num_classes > 0`), where `(c, p, v)_{t-1}` is the
    right-shifted triple `inputs[:, t]` (ids from `start_triple` at sequence start). A causal
    `PARStack` with cross-attention to the encoder output gives the hidden state `h_c`;
    `LayerNorm -> Dense` (float32) gives logits over the `C + 1` channels (EOS = `C`).

    `call(inputs [B, T, 3], encoder_output [B, N, D], label=None [B])` returns
    `(logits [B, T, C + 1], hidden [B, T, D])`; the hidden state feeds the position decoder.

    Args:
        num_channels: int. Number of DCT channels `C`.
        num_positions: int. Number of positions `P`.
        num_values: int. Value vocabulary `V`.
        window: int. Maximum window length `T` (size of the step embedding `E_t`).
        d_model: int. Model width `D`.
        num_heads: int. Number of attention heads.
        layer_spec: list of `(n_attention, n_dense)` tuples for the `PARStack`.
        key_size: int. Size of each attention head.
        dropout: float. Dropout rate on the residual branches.
        num_classes: int. Number of classes for the class embedding; 0 = unconditional.
        layer_norm_epsilon: float. Epsilon of the layer norms.
        value_init: str. `"normal"` (N(0, 0.02²) like the other embeddings) or
            `"sinusoidal"`: `E_v` starts as Fourier features of the signed value
            (`value_init.py`), so neighbouring values start out similar.
    """

    def __init__(
        self,
        num_channels: int,
        num_positions: int,
        num_values: int,
        window: int,
        d_model: int,
        num_heads: int,
        layer_spec: Sequence[Sequence[int]],
        key_size: int = 64,
        dropout: float = 0.0,
        num_classes: int = 0,
        layer_norm_epsilon: float = 1e-6,
        value_init: str = "normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.num_positions = num_positions
        self.num_values = num_values
        self.window = window
        self.d_model = d_model
        self.num_heads = num_heads
        self.layer_spec = normalize_layer_spec(layer_spec)
        self.key_size = key_size
        self.dropout = dropout
        self.num_classes = num_classes
        self.layer_norm_epsilon = layer_norm_epsilon
        self.value_init = check_value_init(value_init)

        def embedding(vocabulary, name, initializer=None):
            return keras.layers.Embedding(
                vocabulary,
                d_model,
                embeddings_initializer=initializer or keras.initializers.RandomNormal(stddev=0.02),
                dtype=self.dtype_policy,
                name=name,
            )

        self.channel_embedding = embedding(num_channels + 2, "channel_embedding")
        self.position_embedding = embedding(num_positions + 1, "position_embedding")
        value_initializer = None
        if value_init == "sinusoidal":
            value_initializer = SinusoidalValueInitializer((num_values - 1) // 2, stddev=0.02)
        self.value_embedding = embedding(num_values + 1, "value_embedding", value_initializer)
        self.step_embedding = embedding(window, "step_embedding")
        self.class_embedding = embedding(num_classes, "class_embedding") if num_classes else None
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
        self.output_dense = keras.layers.Dense(num_channels + 1, dtype="float32", name="logits")

    def build(self, inputs_shape, encoder_output_shape, label_shape=None):
        for layer in (
            self.channel_embedding,
            self.position_embedding,
            self.value_embedding,
            self.step_embedding,
            self.class_embedding,
        ):
            if layer is not None:
                layer.build((None,))
        hidden_shape = (None, None, self.d_model)
        self.stack.build(hidden_shape, encoder_output_shape)
        self.output_norm.build(hidden_shape)
        self.output_dense.build(hidden_shape)
        self.built = True

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

    def _logits(self, hidden):
        return self.output_dense(self.output_norm(hidden))

    def call(self, inputs, encoder_output, label=None, training=None):
        steps = ops.arange(ops.shape(inputs)[1])  # [T]
        hidden = self.stack(
            self._embed(inputs, steps, label), context=encoder_output, training=training
        )
        return self._logits(hidden), hidden

    def init_cache(self, encoder_output, window: int) -> dict:
        """Decoding cache for `window` steps: see `PARStack.init_cache`."""
        return self.stack.init_cache(encoder_output, window)

    def decode_step(self, previous_triple, step, cache: dict, label=None):
        """One cached step: `previous_triple [B, 3]` (the input at `step`), `step` int32 scalar
        or `[B]` -> `(logits [B, C + 1], hidden [B, D], cache)`."""
        batch_size = ops.shape(previous_triple)[0]
        steps = ops.broadcast_to(ops.cast(step, "int32"), (batch_size,))[:, None]  # [B, 1]
        embedded = self._embed(previous_triple[:, None, :], steps, label)  # [B, 1, D]
        hidden, cache = self.stack.call_step(embedded, cache, steps[:, 0])
        hidden = hidden[:, 0]  # [B, 1, D] -> [B, D]
        return self._logits(hidden), hidden, cache

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_channels": self.num_channels,
                "num_positions": self.num_positions,
                "num_values": self.num_values,
                "window": self.window,
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "layer_spec": self.layer_spec,
                "key_size": self.key_size,
                "dropout": self.dropout,
                "num_classes": self.num_classes,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "value_init": self.value_init,
            }
        )
        return config
