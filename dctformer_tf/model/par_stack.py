"""PAR Transformer stack built from a layer spec [(n_attention, n_dense), ...]."""

from collections.abc import Sequence

import keras
from keras import ops

from dctformer_tf.model.cached_multi_head_attention import CachedMultiHeadAttention
from dctformer_tf.model.feed_forward import FeedForward
from dctformer_tf.model.rezero_residual import ReZeroResidual


def normalize_layer_spec(layer_spec: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Returns `layer_spec` as a list of `(n_attention, n_dense)` int tuples.

    Accepts the lists that JSON and gin produce (`[[1, 2], [1, 4]]`) as well as tuples.
    """
    spec = [(int(n_attention), int(n_dense)) for n_attention, n_dense in layer_spec]
    if not spec or any(n_attention < 0 or n_dense < 0 for n_attention, n_dense in spec):
        raise ValueError(
            f"layer_spec must be a non-empty list of (n_attention, n_dense) >= 0, got {layer_spec}"
        )
    return spec


@keras.saving.register_keras_serializable(package="dctformer_tf")
class PARStack(keras.layers.Layer):
    """A stack of PAR Transformer blocks (Mandava et al. 2020) of pre-norm ReZero residuals.

    Each `(n_attention, n_dense)` entry of `layer_spec` is one block: `n_attention` attention
    layers followed by `n_dense` feed-forward layers (`D -> 4D -> D`, GELU). With
    `cross_attention=True` every attention layer is self-attention followed by cross-attention
    to a context sequence, each its own residual. Every residual is
    `H + alpha * f(LayerNorm(H))` (see `ReZeroResidual`). The residual stream (inputs and
    outputs) is float32 under any dtype policy; the branches compute in the compute dtype.

    `call(inputs [B, T, D], context=None [B, N, D])` returns `[B, T, D]`. For incremental
    decoding, `init_cache(context, window)` builds the fixed-shape cache and
    `call_step(inputs [B, 1, D], cache, cache_index)` runs one position.

    Args:
        layer_spec: list of `(n_attention, n_dense)` tuples, e.g. `[(1, 2)] * 3 + [(1, 4)]`.
        num_heads: int. Number of attention heads.
        key_size: int. Size of each attention head.
        dropout: float. Dropout rate on every residual branch.
        causal: bool. Whether self-attention is causal.
        cross_attention: bool. Whether every attention layer is followed by cross-attention
            to the `context` argument.
        layer_norm_epsilon: float. Epsilon of the layer norms.
        remat: bool. Whether every residual recomputes its activations in the backward
            pass instead of storing them (`ReZeroResidual`).

    Example:
    ```python
    stack = PARStack([(1, 2), (1, 4)], num_heads=2, causal=True, cross_attention=True)
    outputs = stack(np.zeros((2, 10, 32), "f4"), context=np.zeros((2, 16, 32), "f4"))
    ```

    References:
    - [Mandava et al., 2020](https://arxiv.org/abs/2009.04534)
    """

    def __init__(
        self,
        layer_spec: Sequence[Sequence[int]],
        num_heads: int,
        key_size: int = 64,
        dropout: float = 0.0,
        causal: bool = False,
        cross_attention: bool = False,
        layer_norm_epsilon: float = 1e-6,
        remat: bool = False,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # keep the float32 residual stream
        self.layer_spec = normalize_layer_spec(layer_spec)
        self.num_heads = num_heads
        self.key_size = key_size
        self.dropout = dropout
        self.causal = causal
        self.cross_attention = cross_attention
        self.layer_norm_epsilon = layer_norm_epsilon
        self.remat = remat

        # Residuals in execution order; `_kinds[i]` says how to call `residual_layers[i]`.
        self.residual_layers = []
        self._kinds = []
        for block, (n_attention, n_dense) in enumerate(self.layer_spec):
            for i in range(n_attention):
                self._add("self", f"block{block}_self_attention{i}", self._attention(causal))
                if cross_attention:
                    self._add("cross", f"block{block}_cross_attention{i}", self._attention(False))
            for i in range(n_dense):
                self._add(
                    "dense",
                    f"block{block}_dense{i}",
                    FeedForward(dtype=self.dtype_policy, name="feed_forward"),
                )

    def _attention(self, causal):
        return CachedMultiHeadAttention(
            self.num_heads, self.key_size, causal=causal, dtype=self.dtype_policy, name="attention"
        )

    def _add(self, kind, name, sublayer):
        residual = ReZeroResidual(
            sublayer,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            remat=self.remat,
            dtype=self.dtype_policy,
            name=name,
        )
        self._kinds.append(kind)
        self.residual_layers.append(residual)
        # Also an attribute: Keras' tracked list is invisible to `tf.train.Checkpoint`, so
        # without this the blocks' weights reach a checkpoint only through the optimizer's
        # variable list, and a model restored without its optimizer keeps its initial
        # blocks (ReZero gates at 0: every stack an identity) while reporting a match.
        setattr(self, name, residual)

    @property
    def num_attention_layers(self) -> int:
        """Number of self-attention layers `L` (= number of cross-attention layers if any)."""
        return sum(n_attention for n_attention, _ in self.layer_spec)

    def build(self, inputs_shape, context_shape=None):
        for kind, residual in zip(self._kinds, self.residual_layers, strict=True):
            if kind == "cross":
                residual.build(inputs_shape, context_shape)
            else:
                residual.build(inputs_shape)
        self.built = True

    def call(self, inputs, context=None, training=None, self_bias=None):
        """`self_bias`: float32 `[B, H, T, T]` added to every self-attention's logits."""
        outputs = inputs
        for kind, residual in zip(self._kinds, self.residual_layers, strict=True):
            if kind == "cross":
                outputs = residual(outputs, context=context, training=training)
            elif kind == "self":
                outputs = residual(outputs, training=training, bias=self_bias)
            else:
                outputs = residual(outputs, training=training)
        return outputs

    def init_cache(self, context, window: int) -> dict:
        """Returns the decoding cache for `window` positions, given `context [B, N, D]`.

        `{"self": zeros [B, L, 2, H, window, K]}` holds the self-attention keys/values of each
        of the `L` attention layers; with cross-attention, `"cross" [B, L, 2, H, N, K]` holds
        the context keys/values, computed here once.
        """
        batch_size = ops.shape(context)[0]
        shape = (batch_size, self.num_attention_layers, 2, self.num_heads, window, self.key_size)
        cache = {"self": ops.zeros(shape, dtype=self.compute_dtype)}
        if self.cross_attention and self.num_attention_layers:
            cross = [
                residual.sublayer.project_key_value(ops.cast(context, self.compute_dtype))
                for kind, residual in zip(self._kinds, self.residual_layers, strict=True)
                if kind == "cross"
            ]
            cache["cross"] = ops.stack(cross, axis=1)  # L x [B, 2, H, N, K] -> [B, L, 2, H, N, K]
        return cache

    def call_step(self, inputs, cache: dict, cache_index, self_bias=None):
        """Runs position `cache_index` (int32 scalar or `[B]`) of `inputs [B, 1, D]`;
        `self_bias` (float32 `[B, H, 1, window]`) is added to every self-attention's logits.

        Returns `(outputs [B, 1, D], cache)` with this position's keys/values written into
        the self-attention cache. Equals position `cache_index` of the full causal pass when
        the cache holds positions `0..cache_index - 1`.
        """
        outputs = inputs
        self_caches = []
        for kind, residual in zip(self._kinds, self.residual_layers, strict=True):
            if kind == "self":
                layer_cache = cache["self"][:, len(self_caches)]  # [B, 2, H, T, K]
                outputs, layer_cache = residual(outputs, cache=layer_cache,
                                                cache_index=cache_index, bias=self_bias)
                self_caches.append(layer_cache)
            elif kind == "cross":
                key_value = cache["cross"][:, len(self_caches) - 1]  # [B, 2, H, N, K]
                outputs = residual(outputs, key_value=key_value)
            else:
                outputs = residual(outputs)
        cache = dict(cache)
        if self_caches:
            # L x [B, 2, H, T, K] -> [B, L, 2, H, T, K]
            cache["self"] = ops.stack(self_caches, axis=1)
        return outputs, cache

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "layer_spec": self.layer_spec,
                "num_heads": self.num_heads,
                "key_size": self.key_size,
                "dropout": self.dropout,
                "causal": self.causal,
                "cross_attention": self.cross_attention,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "remat": self.remat,
            }
        )
        return config
