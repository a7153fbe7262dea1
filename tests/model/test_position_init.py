import numpy as np
import pytest

from dctformer_tf.model.channel_decoder import ChannelDecoder
from dctformer_tf.model.configs import build_model
from dctformer_tf.model.position_decoder import PositionDecoder
from dctformer_tf.model.position_init import (
    SinusoidalPositionInitializer,
    sinusoidal_position_features,
)
from dctformer_tf.model.value_decoder import ValueDecoder

SHARED = dict(d_model=16, num_heads=2, key_size=8, layer_spec=[(1, 1)])


def test_features_are_cos_and_sin_of_the_row_then_the_column():
    grid, dim = 6, 16
    features = sinusoidal_position_features(grid**2 + 1, grid, dim)
    periods = np.geomspace(2.0, 4.0 * grid, dim // 4)
    row, col = 4, 1
    p = row * grid + col
    np.testing.assert_allclose(features[p, :4], np.cos(2 * np.pi * row / periods))
    np.testing.assert_allclose(features[p, 4:8], np.sin(2 * np.pi * row / periods))
    np.testing.assert_allclose(features[p, 8:12], np.cos(2 * np.pi * col / periods))
    np.testing.assert_allclose(features[p, 12:], np.sin(2 * np.pi * col / periods))
    assert not features[grid**2].any()  # the START id is past the grid


def test_feature_kernel_peaks_at_the_cell_and_falls_off_in_both_grid_directions():
    """f(p)·f(q) = Σ cos(ω Δrow) + Σ cos(ω Δcol): largest at q = p, higher for the grid
    neighbours of p than for cells far from it in either direction."""
    grid = 24
    features = sinusoidal_position_features(grid**2, grid, 64)
    cell = lambda r, c: r * grid + c  # noqa: E731
    for r, c in ((0, 0), (5, 17), (12, 12), (23, 3)):
        scores = features @ features[cell(r, c)]
        assert np.argmax(scores) == cell(r, c)
        near = [scores[cell(r + dr, c + dc)] for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
                if 0 <= r + dr < grid and 0 <= c + dc < grid]
        far = [scores[cell((r + 12) % grid, c)], scores[cell(r, (c + 12) % grid)]]
        assert min(near) > max(far)


def test_initializer_scales_transposes_and_draws_the_extra_rows():
    table = np.asarray(SinusoidalPositionInitializer(grid_size=16, stddev=0.02)((257, 64)))
    np.testing.assert_allclose(table[:256].std(), 0.02, rtol=0.05)
    np.testing.assert_allclose(table[:256], sinusoidal_position_features(256, 16, 64) * 0.02
                               * np.sqrt(2), rtol=1e-5, atol=1e-7)
    assert 0.005 < table[256].std() < 0.04  # START: random, not zero
    kernel = np.asarray(SinusoidalPositionInitializer(grid_size=16, transpose=True)((64, 256)))
    np.testing.assert_allclose(kernel, table[:256].T / 0.02 * np.sqrt(2 / (64 + 256)),
                               rtol=1e-5, atol=1e-7)


def test_the_three_position_tables_start_from_the_features_and_keep_them_in_config():
    grid = 5
    expected = sinusoidal_position_features(grid**2, grid, 16) * 0.02 * np.sqrt(2)
    channel = ChannelDecoder(num_channels=12, num_positions=grid**2, num_values=7, window=6,
                             position_init="sinusoidal_2d", grid_size=grid, **SHARED)
    channel.build((None, 6, 3), (None, 9, 16))
    table = np.asarray(channel.position_embedding.embeddings)  # [P + 1, D]
    np.testing.assert_allclose(table[:grid**2], expected, rtol=1e-5, atol=1e-7)
    assert ChannelDecoder.from_config(channel.get_config()).position_init == "sinusoidal_2d"

    value = ValueDecoder(num_positions=grid**2, num_values=7, grid_size=grid, conv_stride=2,
                         position_init="sinusoidal_2d", **SHARED)
    value.build((None, 6, 16), (None, 6), (None, 9, 16))
    np.testing.assert_allclose(np.asarray(value.target_position_embedding.embeddings), expected,
                               rtol=1e-5, atol=1e-7)

    position = PositionDecoder(num_channels=12, num_positions=grid**2,
                               position_init="sinusoidal_2d", grid_size=grid, **SHARED)
    position.build((None, 6, 16), (None, 6), (None, 9, 16))
    kernel = np.asarray(position.output_dense.kernel)  # [D, P]
    scores = kernel.T @ kernel
    assert all(np.argmax(scores[p]) == p for p in range(grid**2))
    assert PositionDecoder.from_config(position.get_config()).position_init == "sinusoidal_2d"


def test_model_option_keeps_the_parameters_and_rejects_unknown_names():
    kwargs = dict(resolution=32, block_size=8, clip=20, d_model=16, num_heads=2,
                  encoder_spec=[(1, 1)], channel_spec=[(1, 1)], position_spec=[(1, 1)],
                  value_spec=[(1, 1)], conv_kernel=2, conv_stride=2, chunk_size=8,
                  chunk_overlap=0, key_size=8)
    normal = build_model(**kwargs)
    smooth = build_model(position_init="sinusoidal_2d", **kwargs)
    assert normal.count_params() == smooth.count_params()
    strip = lambda model: [w.path.split("/", 1)[1] for w in model.weights]  # noqa: E731
    assert strip(normal) == strip(smooth)
    features = sinusoidal_position_features(16, 4, 16) * 0.02 * np.sqrt(2)
    table = np.asarray(smooth.value_decoder.target_position_embedding.embeddings)
    np.testing.assert_allclose(table, features, rtol=1e-5, atol=1e-7)
    assert smooth.get_config()["position_init"] == "sinusoidal_2d"
    with pytest.raises(ValueError, match="position_init must be one of"):
        build_model(position_init="2d", **kwargs)


def test_the_2d_start_needs_the_grid():
    with pytest.raises(ValueError, match="needs the grid_size"):
        PositionDecoder(num_channels=12, num_positions=25, position_init="sinusoidal_2d",
                        **SHARED)
