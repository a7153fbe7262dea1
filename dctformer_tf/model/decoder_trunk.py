"""The part the three stacked decoders share: PAR stack, output layer norm, logits, cache."""

import inspect
from collections.abc import Sequence

import keras

from dctformer_tf.model.par_stack import PARStack, normalize_layer_spec


class DecoderTrunk(keras.layers.Layer):
    """Base layer of the stacked decoders: everything after the input embedding.

    A decoder maps its inputs to an embedding `[B, T, D]`; the trunk runs it through a causal
    `PARStack` that cross-attends to the encoder output `[B, N, D]` and gives the hidden state
    `[B, T, D]`, then `LayerNorm -> Dense` (both float32) gives the logits `[B, T, X]`
    (docs/design.md §3). The three decoders differ only in their input embedding and in `X`.
    Under a mixed policy the input embeddings, the residual stream and the hidden state stay
    float32 (the layer never casts its inputs); the stack's matmuls use the compute dtype.

    A subclass takes its own arguments and passes the trunk's (below) on as `**kwargs`,
    creates its input embeddings with `_embedding`, then calls `_create_trunk(X)`; its `call`
    returns `_trunk(embedded, encoder_output)` and its cached `decode_step` returns
    `_trunk_step(embedded [B, 1, D], cache, step)`. The trunk provides `build`, `init_cache`
    and `get_config` (every `__init__` argument, the subclass' and the trunk's, read from the
    attribute of the same name).

    Args:
        d_model: int. Model width `D`.
        num_heads: int. Number of attention heads.
        layer_spec: list of `(n_attention, n_dense)` tuples for the `PARStack`.
        key_size: int. Size of each attention head.
        dropout: float. Dropout rate on the residual branches.
        layer_norm_epsilon: float. Epsilon of the layer norms.
        remat: bool. Whether the stack's residuals recompute their activations in the
            backward pass (`PARStack`).

    Example:
    ```python
    class TokenDecoder(DecoderTrunk):
        def __init__(self, vocabulary: int, **kwargs):
            super().__init__(**kwargs)
            self.vocabulary = vocabulary
            self.token_embedding = self._embedding(vocabulary, "token_embedding")
            self._create_trunk(vocabulary)

        def call(self, tokens, encoder_output, training=None):
            return self._trunk(self.token_embedding(tokens), encoder_output, training)

    decoder = TokenDecoder(10, d_model=32, num_heads=2, layer_spec=[(1, 1)])
    logits, hidden = decoder(np.zeros((2, 5), "int32"), np.zeros((2, 7, 32), "float32"))
    ```
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        layer_spec: Sequence[Sequence[int]],
        key_size: int = 64,
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        remat: bool = False,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # keep the float32 residual stream
        self.d_model = d_model
        self.num_heads = num_heads
        self.layer_spec = normalize_layer_spec(layer_spec)
        self.key_size = key_size
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.remat = remat
        # Names, not layers, so that each embedding stays reachable (and tracked for
        # checkpoints) through its own attribute only.
        self._embedding_names = []

    def _embedding(self, vocabulary: int, name: str, initializer=None) -> keras.layers.Embedding:
        """An input embedding table `[vocabulary, D]`, N(0, 0.02²) unless `initializer`, that
        `build` builds. Assign it to the attribute `name`: checkpoint keys follow attributes.
        float32 under any policy: a lookup has no matmul to speed up, and the embeddings start
        the float32 residual stream."""
        self._embedding_names.append(name)
        return keras.layers.Embedding(
            vocabulary,
            self.d_model,
            embeddings_initializer=initializer or keras.initializers.RandomNormal(stddev=0.02),
            dtype="float32",
            name=name,
        )

    def _create_trunk(self, num_logits: int, logits_initializer="glorot_uniform"):
        """Creates the stack and the output layers, after the input embeddings, so that
        `weights` lists the embeddings first."""
        self.stack = PARStack(
            self.layer_spec,
            self.num_heads,
            key_size=self.key_size,
            dropout=self.dropout,
            causal=True,
            cross_attention=True,
            layer_norm_epsilon=self.layer_norm_epsilon,
            remat=self.remat,
            dtype=self.dtype_policy,
            name="stack",
        )
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype="float32", name="output_norm"
        )
        self.output_dense = keras.layers.Dense(
            num_logits, kernel_initializer=logits_initializer, dtype="float32", name="logits"
        )

    def build(self, *input_shapes):
        # The embeddings, the decoder inputs they are added to and the encoder output all have
        # width D, so no weight depends on `input_shapes`; varargs also let Keras' automatic
        # build call this with no shapes for any subclass' `call` signature.
        for name in self._embedding_names:
            getattr(self, name).build((None,))
        hidden_shape = (None, None, self.d_model)
        self.stack.build(hidden_shape, hidden_shape)
        self.output_norm.build(hidden_shape)
        self.output_dense.build(hidden_shape)
        self.built = True

    def _trunk(self, embedded, encoder_output, training=None, self_bias=None):
        """`embedded [B, T, D]`, `encoder_output [B, N, D]` (and an optional self-attention
        bias `[B, H, T, T]`) -> `(logits [B, T, X], hidden [B, T, D])`."""
        hidden = self.stack(embedded, context=encoder_output, training=training,
                            self_bias=self_bias)
        return self.output_dense(self.output_norm(hidden)), hidden

    def init_cache(self, encoder_output, window: int) -> dict:
        """Decoding cache for `window` steps: see `PARStack.init_cache`."""
        return self.stack.init_cache(encoder_output, window)

    def _trunk_step(self, embedded, cache: dict, step, self_bias=None):
        """One cached step: `embedded [B, 1, D]` at window step `step` (int32 scalar or `[B]`)
        -> `(logits [B, X], hidden [B, D], cache)`; equals step `step` of `_trunk`."""
        hidden, cache = self.stack.call_step(embedded, cache, step, self_bias)
        hidden = hidden[:, 0]  # [B, 1, D] -> [B, D]
        return self.output_dense(self.output_norm(hidden)), hidden, cache

    def get_config(self):
        # The layer contract written once for every decoder: each `__init__` argument (the
        # subclass' own and the trunk's, which it passes on) is a public attribute of that name.
        names = [
            name
            for cls in (type(self), DecoderTrunk)
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
        ]
        config = super().get_config()
        config.update({name: getattr(self, name) for name in names})
        return config
