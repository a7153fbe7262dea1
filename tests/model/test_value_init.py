import numpy as np
import pytest

from dctformer_tf.model.channel_decoder import ChannelDecoder
from dctformer_tf.model.configs import build_model
from dctformer_tf.model.value_decoder import ValueDecoder
from dctformer_tf.model.value_init import SinusoidalValueInitializer, sinusoidal_value_features

SHARED = dict(d_model=16, num_heads=2, key_size=8, layer_spec=[(1, 1)])


def test_features_hold_cos_and_sin_of_the_signed_value():
    clip, dim = 10, 8
    features = sinusoidal_value_features(2 * clip + 2, clip, dim)
    periods = np.geomspace(2.0, 4.0 * (clip + 1), dim // 2)
    value = 3  # token 13
    np.testing.assert_allclose(features[clip + value, :4], np.cos(2 * np.pi * value / periods))
    np.testing.assert_allclose(features[clip + value, 4:], np.sin(2 * np.pi * value / periods))
    np.testing.assert_allclose(features[clip], [1, 1, 1, 1, 0, 0, 0, 0], atol=1e-12)


def test_feature_kernel_peaks_at_the_same_value_and_falls_off_with_distance():
    """f(v)·f(u) = Σ cos(ω (v − u)): largest at u = v, and lower for far values than near
    ones, so a hidden state holding f(u) scores values near u highest."""
    clip = 1200
    features = sinusoidal_value_features(2 * clip + 1, clip, 128)
    for u in (-300, -7, 0, 1, 40):
        scores = features @ features[clip + u]
        assert np.argmax(scores) == clip + u
        near = scores[clip + u + np.array([-2, -1, 1, 2])]
        far = scores[clip + u + np.array([-200, -100, 100, 200])]
        assert near.min() > far.max()


def test_initializer_scales_and_transposes():
    table = np.asarray(SinusoidalValueInitializer(clip=1200, stddev=0.02)((2402, 64)))
    assert table.shape == (2402, 64)
    np.testing.assert_allclose(table.std(), 0.02, rtol=0.05)
    kernel = np.asarray(SinusoidalValueInitializer(clip=1200, transpose=True)((64, 2401)))
    np.testing.assert_allclose(kernel.std(), np.sqrt(2 / (64 + 2401)), rtol=0.05)
    np.testing.assert_allclose(kernel, table[:2401].T / 0.02 * np.sqrt(2 / (64 + 2401)),
                               rtol=1e-5, atol=1e-7)


def test_decoders_start_from_the_features_and_keep_them_in_config():
    clip = 3
    channel = ChannelDecoder(num_channels=12, num_positions=25, num_values=2 * clip + 1,
                             window=6, value_init="sinusoidal", **SHARED)
    channel.build((None, 6, 3), (None, 9, 16))
    embedding = np.asarray(channel.value_embedding.embeddings)
    expected = sinusoidal_value_features(2 * clip + 2, clip, 16) * 0.02 * np.sqrt(2)
    np.testing.assert_allclose(embedding, expected, rtol=1e-5, atol=1e-7)
    assert ChannelDecoder.from_config(channel.get_config()).value_init == "sinusoidal"

    value = ValueDecoder(num_positions=25, num_values=2 * clip + 1, grid_size=5, conv_stride=2,
                         value_init="sinusoidal", **SHARED)
    value.build((None, 6, 16), (None, 6), (None, 9, 16))
    kernel = np.asarray(value.output_dense.kernel)  # [D, V]
    scores = kernel.T @ kernel  # [V, V]: the kernel columns' own similarity
    assert all(np.argmax(scores[v]) == v for v in range(2 * clip + 1))


def test_model_option_reaches_both_tables_and_rejects_unknown_names():
    kwargs = dict(resolution=32, block_size=8, clip=20, d_model=16, num_heads=2,
                  encoder_spec=[(1, 1)], channel_spec=[(1, 1)], position_spec=[(1, 1)],
                  value_spec=[(1, 1)], conv_kernel=2, conv_stride=2, chunk_size=8,
                  chunk_overlap=0, key_size=8)
    normal = build_model(**kwargs)
    smooth = build_model(value_init="sinusoidal", **kwargs)
    assert normal.count_params() == smooth.count_params()
    features = sinusoidal_value_features(42, 20, 16)
    table = np.asarray(smooth.channel_decoder.value_embedding.embeddings)
    np.testing.assert_allclose(table, features * 0.02 * np.sqrt(2), rtol=1e-5, atol=1e-7)
    assert smooth.get_config()["value_init"] == "sinusoidal"
    with pytest.raises(ValueError, match="value_init must be one of"):
        build_model(value_init="smooth", **kwargs)
