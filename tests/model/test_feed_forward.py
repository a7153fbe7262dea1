import numpy as np
from scipy.special import erf

from dctformer_tf.model.feed_forward import FeedForward
from tests.model.layer_test_case import run_layer_test


def test_layer_contract():
    layer = run_layer_test(
        FeedForward,
        {"expansion": 4},
        {"inputs": np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")},
        (2, 5, 8),
    )
    assert layer.hidden_dense.units == 32


def test_matches_numpy_reference(rng):
    x = rng.normal(size=(3, 4, 8)).astype("float32")
    layer = FeedForward(expansion=3)
    out = layer(x)
    w1, b1 = (v.numpy() for v in layer.hidden_dense.weights)
    w2, b2 = (v.numpy() for v in layer.output_dense.weights)
    assert w1.shape == (8, 24) and w2.shape == (24, 8)
    hidden = x.astype(np.float64) @ w1 + b1
    expected = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0))) @ w2 + b2
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
