"""Multi-head attention with a per-head key size and a fixed-shape key/value cache."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="dctformer_tf")
class CachedMultiHeadAttention(keras.layers.Layer):
    """Multi-head dot-product attention whose head size is independent of the model width.

    Queries come from `query [B, T, D]`; keys and values come from `context [B, S, Dc]`
    (cross-attention) or from the query sequence itself (self-attention). Every head projects
    to `key_size` features, so `num_heads * key_size` need not equal `D` (14 heads of 64 at
    `D = 1152` is legal); the output is projected back to `D`. The query-key products run in
    the compute dtype; the scaled logits, the mask and the softmax in float32.

    Three ways to call it:
    - full pass: `layer(query)` (self-attention, causal when `causal=True`) or
      `layer(query, context=context)` (cross-attention) → `[B, T, D]`;
    - cross-attention against keys/values computed once per chunk:
      `layer(query, key_value=layer.project_key_value(context))` → `[B, T, D]`.
      Cross-attention is never masked;
    - one cached self-attention step: `layer(query, cache=cache, cache_index=t)` with
      `query [B, 1, D]`, `cache [B, 2, H, T, K]` (keys then values) and `t` an int32 scalar
      or `[B]`. Slot `t` of the cache is overwritten with this step's key and value, the
      query attends to slots `0..t`, and the call returns `(output [B, 1, D], cache)`. All
      shapes stay static, so the step runs inside `tf.while_loop` and under XLA.

    Each call may add `bias` (float32, broadcastable to `[B, H, T, S]`, e.g. a
    `GridAttentionBias`) to the scaled logits of self-attention, before the mask.

    Args:
        num_heads: int. Number of attention heads `H`.
        key_size: int. Size `K` of each head's queries, keys and values.
        causal: bool. Whether full-pass self-attention lets position `t` attend only to
            positions `<= t`.

    Example:
    ```python
    attention = CachedMultiHeadAttention(num_heads=2, key_size=64, causal=True)
    outputs = attention(np.zeros((4, 10, 32), "float32"))  # [4, 10, 32]
    ```
    """

    def __init__(self, num_heads: int, key_size: int = 64, causal: bool = False, **kwargs):
        # No autocast: Keras would round a float32 `bias` to the compute dtype on the way in.
        # The projections cast their own inputs, and the caches are in the compute dtype.
        super().__init__(autocast=False, **kwargs)
        self.num_heads = num_heads
        self.key_size = key_size
        self.causal = causal

    def build(self, query_shape, context_shape=None):
        d_model = query_shape[-1]
        context_dim = d_model if context_shape is None else context_shape[-1]
        head_shape = (self.num_heads, None, self.key_size)

        def projection(name):
            return keras.layers.EinsumDense(
                "bsd,dhk->bhsk",
                output_shape=head_shape,
                bias_axes="hk",
                dtype=self.dtype_policy,
                name=name,
            )

        self.query_dense = projection("query")
        self.query_dense.build((None, None, d_model))
        self.key_dense = projection("key")
        self.key_dense.build((None, None, context_dim))
        self.value_dense = projection("value")
        self.value_dense.build((None, None, context_dim))
        self.output_dense = keras.layers.EinsumDense(
            "bhtk,hkd->btd",
            output_shape=(None, d_model),
            bias_axes="d",
            dtype=self.dtype_policy,
            name="output",
        )
        self.output_dense.build((None, self.num_heads, None, self.key_size))
        self.built = True

    def project_key_value(self, context):
        """Projects `context [B, S, Dc]` to stacked keys and values `[B, 2, H, S, K]`."""
        key = self.key_dense(context)  # [B, S, Dc] -> [B, H, S, K]
        value = self.value_dense(context)  # [B, S, Dc] -> [B, H, S, K]
        return ops.stack([key, value], axis=1)  # -> [B, 2, H, S, K]

    def call(self, query, context=None, key_value=None, cache=None, cache_index=None,
             bias=None):
        projected_query = self.query_dense(query)  # [B, T, D] -> [B, H, T, K]
        if cache is not None:
            return self._cached_step(query, projected_query, cache, cache_index, bias)
        mask = None
        if key_value is None and context is None and self.causal:
            positions = ops.arange(ops.shape(query)[1])
            mask = ops.greater_equal(positions[:, None], positions[None, :])  # [T, S]
        if key_value is None:
            key_value = self.project_key_value(query if context is None else context)
        return self._attend(projected_query, key_value[:, 0], key_value[:, 1], mask, bias)

    def _cached_step(self, query, projected_query, cache, cache_index, bias=None):
        batch_size = ops.shape(query)[0]
        index = ops.broadcast_to(ops.cast(cache_index, "int32"), (batch_size,))  # [B]
        slots = ops.arange(ops.shape(cache)[3], dtype="int32")  # [T]
        write = ops.equal(slots[None, :], index[:, None])  # [B, T]
        step_key_value = self.project_key_value(query)  # [B, 2, H, 1, K]
        cache = ops.where(write[:, None, None, :, None], step_key_value, cache)
        visible = ops.less_equal(slots[None, :], index[:, None])  # [B, T]
        outputs = self._attend(projected_query, cache[:, 0], cache[:, 1],
                               visible[:, None, None, :], bias)
        return outputs, cache

    def _attend(self, query, key, value, mask, bias=None):
        """`query [B, H, T, K]`, `key`/`value [B, H, S, K]`, boolean `mask` and float32 `bias`
        broadcastable to `[B, H, T, S]` (True = attend) → `[B, T, D]`."""
        scores = ops.einsum("bhtk,bhsk->bhts", query, key)  # [B, H, T, S]
        scores = ops.cast(scores, "float32") * (self.key_size**-0.5)
        if bias is not None:
            scores = scores + bias
        if mask is not None:
            scores = ops.where(mask, scores, -1e9)
        weights = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        attended = ops.einsum("bhts,bhsk->bhtk", weights, value)  # [B, H, T, K]
        return self.output_dense(attended)  # [B, H, T, K] -> [B, T, D]

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_heads": self.num_heads, "key_size": self.key_size, "causal": self.causal}
        )
        return config
