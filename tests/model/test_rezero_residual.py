import numpy as np
import pytest
from scipy.special import erf

from dctformer_tf.model.cached_multi_head_attention import CachedMultiHeadAttention
from dctformer_tf.model.feed_forward import FeedForward
from dctformer_tf.model.rezero_residual import ReZeroResidual
from tests.model.layer_test_case import numpy_layer_norm, run_layer_test


@pytest.mark.parametrize("remat", [False, True])
def test_layer_contract(remat):
    run_layer_test(
        ReZeroResidual,
        {"sublayer": FeedForward(), "dropout": 0.1, "layer_norm_epsilon": 1e-5, "remat": remat},
        {"inputs": np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")},
        (2, 5, 8),
    )


def test_zero_alpha_is_identity(rng):
    x = rng.normal(size=(2, 5, 16)).astype("float32") * 3.0
    residual = ReZeroResidual(FeedForward())
    np.testing.assert_array_equal(residual(x), x)


def test_matches_numpy_reference(rng):
    x = rng.normal(size=(2, 5, 16)).astype("float32") * 3.0 + 1.0
    residual = ReZeroResidual(FeedForward(), layer_norm_epsilon=1e-5)
    residual.build(x.shape)
    norm = residual.layer_norm
    norm.gamma.assign(rng.normal(size=16).astype("float32"))
    norm.beta.assign(rng.normal(size=16).astype("float32"))
    residual.alpha.assign(0.7)

    gamma, beta = norm.gamma.numpy(), norm.beta.numpy()
    np.testing.assert_allclose(norm(x), numpy_layer_norm(x, gamma, beta, 1e-5), atol=1e-5)

    feed_forward = residual.sublayer
    w1, b1 = (v.numpy() for v in feed_forward.hidden_dense.weights)
    w2, b2 = (v.numpy() for v in feed_forward.output_dense.weights)
    hidden = numpy_layer_norm(x, gamma, beta, 1e-5) @ w1 + b1
    hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))  # exact GELU
    expected = x + 0.7 * (hidden @ w2 + b2)
    np.testing.assert_allclose(residual(x), expected, rtol=1e-4, atol=1e-4)


def test_passes_state_of_a_cached_branch(rng):
    x = rng.normal(size=(2, 1, 16)).astype("float32")
    cache = np.zeros((2, 2, 2, 4, 8), "float32")  # [B, keys/values, H, T, K]
    residual = ReZeroResidual(CachedMultiHeadAttention(2, key_size=8, causal=True))
    residual.build(x.shape)
    outputs, new_cache = residual(x, cache=cache, cache_index=0)
    np.testing.assert_array_equal(outputs, x)  # alpha = 0
    assert new_cache.shape == cache.shape
    assert np.abs(np.asarray(new_cache)[:, :, :, 0]).sum() > 0
    np.testing.assert_array_equal(np.asarray(new_cache)[:, :, :, 1:], 0.0)


@pytest.mark.parametrize("training", [False, True])
def test_dropout_only_on_branch(rng, training):
    x = rng.normal(size=(4, 6, 16)).astype("float32")
    residual = ReZeroResidual(FeedForward(), dropout=0.5)
    residual.build(x.shape)
    np.testing.assert_array_equal(residual(x, training=training), x)  # alpha = 0
    residual.alpha.assign(1.0)
    branch = np.asarray(residual(x, training=training)) - x  # alpha · f(LayerNorm(x))
    dropped = np.isclose(branch, 0.0, atol=1e-7).mean()
    if training:
        assert 0.35 < dropped < 0.65, f"dropout 0.5 on the branch zeroed {dropped:.0%}"
    else:
        assert dropped < 0.05
        np.testing.assert_array_equal(residual(x, training=False), residual(x, training=False))
