import numpy as np
import pytest

from dctformer_tf.model.cached_multi_head_attention import CachedMultiHeadAttention
from tests.model.layer_test_case import run_layer_test


def numpy_attention(layer, query, context, mask):
    """Reference multi-head attention from the layer's weights; `mask [T, S]` True = attend."""

    def project(dense, x):
        kernel, bias = (v.numpy().astype(np.float64) for v in dense.weights)  # [D, H, K]
        return np.einsum("btd,dhk->bthk", x, kernel) + bias.reshape(kernel.shape[1:])

    q = project(layer.query_dense, query)
    k = project(layer.key_dense, context)
    v = project(layer.value_dense, context)
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(layer.key_size)
    scores = np.where(mask, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = np.einsum("bhts,bshk->bthk", weights, v)
    kernel, bias = (v.numpy().astype(np.float64) for v in layer.output_dense.weights)
    return np.einsum("bthk,hkd->btd", out, kernel) + bias


def test_layer_contract_self_attention():
    run_layer_test(
        CachedMultiHeadAttention,
        {"num_heads": 3, "key_size": 16, "causal": True},
        {"query": np.random.default_rng(0).normal(size=(2, 6, 32)).astype("float32")},
        (2, 6, 32),
    )


def test_layer_contract_cross_attention():
    rng = np.random.default_rng(0)
    run_layer_test(
        CachedMultiHeadAttention,
        {"num_heads": 2, "key_size": 8},
        {
            "query": rng.normal(size=(2, 6, 16)).astype("float32"),
            "context": rng.normal(size=(2, 9, 16)).astype("float32"),
        },
        (2, 6, 16),
    )


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_matches_numpy(rng, causal):
    x = rng.normal(size=(2, 7, 32)).astype("float32")
    layer = CachedMultiHeadAttention(num_heads=3, key_size=16, causal=causal)  # 48 != 32
    out = layer(x)
    mask = np.tril(np.ones((7, 7), bool)) if causal else np.ones((7, 7), bool)
    np.testing.assert_allclose(out, numpy_attention(layer, x, x, mask), rtol=1e-4, atol=1e-5)
    assert layer.query_dense.kernel.shape == (32, 3, 16)


def test_cross_attention_matches_numpy_and_precomputed_keys(rng):
    query = rng.normal(size=(2, 5, 16)).astype("float32")
    context = rng.normal(size=(2, 9, 16)).astype("float32")
    layer = CachedMultiHeadAttention(num_heads=2, key_size=8, causal=True)  # no mask for cross
    out = layer(query, context=context)
    expected = numpy_attention(layer, query, context, np.ones((5, 9), bool))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    key_value = layer.project_key_value(context)
    assert key_value.shape == (2, 2, 2, 9, 8)  # [B, keys/values, H, S, K]
    np.testing.assert_allclose(layer(query, key_value=key_value), out, rtol=1e-5, atol=1e-6)


def test_cached_steps_equal_causal_pass(rng):
    x = rng.normal(size=(2, 6, 16)).astype("float32")
    layer = CachedMultiHeadAttention(num_heads=2, key_size=8, causal=True)
    full = np.asarray(layer(x))
    cache = np.zeros((2, 2, 2, 6, 8), "float32")  # [B, keys/values, H, T, K]
    for t in range(6):
        out, cache = layer(x[:, t : t + 1], cache=cache, cache_index=t)
        np.testing.assert_allclose(out[:, 0], full[:, t], rtol=1e-5, atol=1e-5)
    key_value = np.asarray(layer.project_key_value(x))
    np.testing.assert_allclose(cache, key_value, rtol=1e-6, atol=1e-6)


def test_cached_step_with_per_example_index(rng):
    x = rng.normal(size=(2, 4, 16)).astype("float32")
    layer = CachedMultiHeadAttention(num_heads=2, key_size=8, causal=True)
    full = np.asarray(layer(x))
    cache = np.asarray(layer.project_key_value(x))  # every slot already filled
    out, _ = layer(x[np.arange(2), [1, 3]][:, None], cache=cache, cache_index=np.array([1, 3]))
    np.testing.assert_allclose(out[:, 0], full[np.arange(2), [1, 3]], rtol=1e-5, atol=1e-5)
