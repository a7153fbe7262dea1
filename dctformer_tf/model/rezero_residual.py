"""Pre-norm ReZero residual connection (paper App. B, Eq. 10)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dctformer_tf")
class ReZeroResidual(keras.layers.Layer):
    """`H + alpha * dropout(f(LayerNorm(H)))` with a trainable scalar `alpha` initialised to 0.

    The layer norm sits inside the residual path (Child et al. 2019, Parisotto et al. 2020)
    and the branch is scaled by a zero-initialised scalar (ReZero, Bachlechner et al. 2020),
    so a freshly built stack of these layers is the identity. The layer norm always runs in
    float32; the branch runs in the layer's compute dtype and the sum keeps the dtype of `H`.

    `call(inputs [B, T, D], context=None, key_value=None, cache=None, cache_index=None)`:
    the arguments given (not None) go on to the branch `f`, which is how an attention branch
    receives its context, precomputed keys/values or decoding cache (see
    `CachedMultiHeadAttention`). A branch that returns a tuple `(y, *state)` (a cached
    attention step) makes this layer return `(H + alpha * y, *state)`.

    Args:
        sublayer: keras.layers.Layer. The residual function `f`, mapping `[B, T, D]` (plus its
            own keyword arguments) to `[B, T, D]`.
        dropout: float. Dropout rate on the branch output.
        layer_norm_epsilon: float. Epsilon of the layer norm.

    Example:
    ```python
    block = ReZeroResidual(FeedForward(), dropout=0.1)
    outputs = block(np.zeros((2, 5, 32), "float32"))  # [2, 5, 32]
    ```

    References:
    - [Bachlechner et al., 2020](https://arxiv.org/abs/2003.04887)
    - [Nash et al., 2021](https://arxiv.org/abs/2103.03841), Appendix B
    """

    def __init__(
        self,
        sublayer: keras.layers.Layer,
        dropout: float = 0.0,
        layer_norm_epsilon: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sublayer = sublayer
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype="float32", name="layer_norm"
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, inputs_shape, context_shape=None):
        self.layer_norm.build(inputs_shape)
        if context_shape is None:
            self.sublayer.build(inputs_shape)
        else:
            self.sublayer.build(inputs_shape, context_shape)
        self.alpha = self.add_weight(name="alpha", shape=(), initializer="zeros")
        self.built = True

    def call(
        self, inputs, context=None, key_value=None, cache=None, cache_index=None, training=None
    ):
        branch_kwargs = dict(context=context, key_value=key_value, cache=cache)
        branch_kwargs = {k: v for k, v in branch_kwargs.items() if v is not None}
        if cache is not None:
            branch_kwargs["cache_index"] = cache_index
        branch = self.sublayer(self.layer_norm(inputs), **branch_kwargs)
        state = ()
        if isinstance(branch, tuple):
            branch, *state = branch
        branch = self.dropout_layer(branch, training=training)
        outputs = inputs + ops.cast(self.alpha, inputs.dtype) * ops.cast(branch, inputs.dtype)
        return (outputs, *state) if state else outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sublayer": keras.saving.serialize_keras_object(self.sublayer),
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["sublayer"] = keras.saving.deserialize_keras_object(config["sublayer"])
        return cls(**config)
