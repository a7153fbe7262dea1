"""Pre-norm ReZero residual connection (paper App. B, Eq. 10)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dctformer_tf")
class ReZeroResidual(keras.layers.Layer):
    """`H + alpha * dropout(f(LayerNorm(H)))` with a trainable scalar `alpha` initialised to 0.

    The layer norm sits inside the residual path (Child et al. 2019, Parisotto et al. 2020)
    and the branch is scaled by a zero-initialised scalar (ReZero, Bachlechner et al. 2020),
    so a freshly built stack of these layers is the identity.

    Precision: the residual stream `H` is float32 under any dtype policy, since deep stacks
    do not survive a bfloat16 stream (this layer never casts its inputs to the compute
    dtype). The layer norm and `alpha` are float32; the branch `f` (its matmuls) runs in the
    compute dtype, and its output is cast to float32 before the sum.

    Rematerialisation (`remat=True`): a full pass keeps only `H` for the backward pass and
    recomputes the block (layer norm, branch, dropout) from it there (`keras.remat`). The
    dropout seed is drawn once, before the block, so the recomputation draws the same mask
    as the forward pass and the gradients are those of the plain layer. Cached decoding
    steps never rematerialise.

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
        remat: bool. Whether to recompute the block in the backward pass instead of storing
            its activations.

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
        remat: bool = False,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # keep the float32 residual stream
        self.sublayer = sublayer
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.remat = remat
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
        self, inputs, context=None, key_value=None, cache=None, cache_index=None, training=None,
        bias=None,
    ):
        inputs = ops.cast(inputs, "float32")
        if self.remat and cache is None and key_value is None:
            return self._rematerialized(inputs, context, training, bias)
        branch_kwargs = dict(context=context, key_value=key_value, cache=cache, bias=bias)
        branch_kwargs = {k: v for k, v in branch_kwargs.items() if v is not None}
        if cache is not None:
            branch_kwargs["cache_index"] = cache_index
        return self._residual(inputs, branch_kwargs, training)

    def _residual(self, inputs, branch_kwargs, training, dropout_seed=None):
        """`inputs + alpha * dropout(f(LayerNorm(inputs)))`; the dropout draws its mask from
        `dropout_seed` when given, else from the dropout layer's own seed generator."""
        branch = self.sublayer(self.layer_norm(inputs), **branch_kwargs)
        state = ()
        if isinstance(branch, tuple):
            branch, *state = branch
        if dropout_seed is None:
            branch = self.dropout_layer(branch, training=training)
        else:
            branch = keras.random.dropout(branch, self.dropout, seed=_DrawnSeed(dropout_seed))
        outputs = inputs + self.alpha * ops.cast(branch, "float32")
        return (outputs, *state) if state else outputs

    def _rematerialized(self, inputs, context, training, bias=None):
        """The full-pass residual under `keras.remat`, which takes positional tensors only
        (and differentiates with respect to each): `inputs`, then `context` or an attention
        `bias` if any (a residual has at most one of them)."""
        dropout_seed = None
        if training and self.dropout > 0:
            # The same generator and call as `keras.layers.Dropout`: the same masks as
            # `remat=False` from the same generator state.
            dropout_seed = self.dropout_layer.seed_generator.next()

        extra = {"context": context, "bias": bias}
        extra = {key: value for key, value in extra.items() if value is not None}
        if len(extra) > 1:
            raise ValueError("a residual branch takes a context or an attention bias, not both")

        def residual(inputs, *tensors):
            branch_kwargs = dict(zip(extra, tensors, strict=True))
            return self._residual(inputs, branch_kwargs, training, dropout_seed)

        return keras.remat(residual)(inputs, *extra.values())

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sublayer": keras.saving.serialize_keras_object(self.sublayer),
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "remat": self.remat,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["sublayer"] = keras.saving.deserialize_keras_object(config["sublayer"])
        return cls(**config)


class _DrawnSeed(keras.random.SeedGenerator):
    """A seed already drawn, as `keras.random` takes it (it accepts ints and generators,
    not seed tensors): every `next()` returns the same `int [2]` tensor, so a rematerialised
    block's dropout draws the same mask in the forward pass and in its recomputation."""

    def __init__(self, seed):  # no state variable: nothing to track or checkpoint
        self.seed = seed

    def next(self, ordered=True):
        return self.seed
