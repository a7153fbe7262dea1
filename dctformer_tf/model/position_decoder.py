"""Second of the three stacked decoders: predicts position `p_t` given channel `c_t`."""

from collections.abc import Sequence

import keras
from keras import ops

from dctformer_tf.model.par_stack import PARStack, normalize_layer_spec


@keras.saving.register_keras_serializable(package="dctformer_tf")
class PositionDecoder(keras.layers.Layer):
    """Causal Transformer decoder that predicts the position of triple `t` given its channel.

    The input at step `t` is the channel decoder's hidden state `h_c[t]` (the residual stream
    before its output layer norm) plus `E'_c[c_t]`, the embedding of the teacher-forced
    target channel. A causal `PARStack` with cross-attention to the encoder output gives the
    hidden state `h_p`; `LayerNorm -> Dense` (float32) gives logits over the `P` positions.

    `call(channel_hidden [B, T, D], target_channel [B, T], encoder_output [B, N, D])` returns
    `(logits [B, T, P], hidden [B, T, D])`; the hidden state feeds the value decoder.

    Args:
        num_channels: int. Number of DCT channels `C` (targets range over `C + 1` with EOS).
        num_positions: int. Number of positions `P`.
        d_model: int. Model width `D`.
        num_heads: int. Number of attention heads.
        layer_spec: list of `(n_attention, n_dense)` tuples for the `PARStack`.
        key_size: int. Size of each attention head.
        dropout: float. Dropout rate on the residual branches.
        layer_norm_epsilon: float. Epsilon of the layer norms.
    """

    def __init__(
        self,
        num_channels: int,
        num_positions: int,
        d_model: int,
        num_heads: int,
        layer_spec: Sequence[Sequence[int]],
        key_size: int = 64,
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_channels = num_channels
        self.num_positions = num_positions
        self.d_model = d_model
        self.num_heads = num_heads
        self.layer_spec = normalize_layer_spec(layer_spec)
        self.key_size = key_size
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

        self.target_channel_embedding = keras.layers.Embedding(
            num_channels + 1,
            d_model,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="target_channel_embedding",
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
        self.output_dense = keras.layers.Dense(num_positions, dtype="float32", name="logits")

    def build(self, channel_hidden_shape, target_channel_shape, encoder_output_shape):
        self.target_channel_embedding.build((None,))
        hidden_shape = (None, None, self.d_model)
        self.stack.build(hidden_shape, encoder_output_shape)
        self.output_norm.build(hidden_shape)
        self.output_dense.build(hidden_shape)
        self.built = True

    def call(self, channel_hidden, target_channel, encoder_output, training=None):
        inputs = channel_hidden + self.target_channel_embedding(ops.cast(target_channel, "int32"))
        hidden = self.stack(inputs, context=encoder_output, training=training)
        return self.output_dense(self.output_norm(hidden)), hidden

    def init_cache(self, encoder_output, window: int) -> dict:
        """Decoding cache for `window` steps: see `PARStack.init_cache`."""
        return self.stack.init_cache(encoder_output, window)

    def decode_step(self, channel_hidden, channel, step, cache: dict):
        """One cached step: `channel_hidden [B, D]`, sampled/forced `channel [B]`, `step`
        int32 scalar or `[B]` -> `(logits [B, P], hidden [B, D], cache)`."""
        inputs = channel_hidden + self.target_channel_embedding(ops.cast(channel, "int32"))
        hidden, cache = self.stack.call_step(inputs[:, None, :], cache, step)  # [B, 1, D]
        hidden = hidden[:, 0]  # [B, 1, D] -> [B, D]
        return self.output_dense(self.output_norm(hidden)), hidden, cache

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_channels": self.num_channels,
                "num_positions": self.num_positions,
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "layer_spec": self.layer_spec,
                "key_size": self.key_size,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
