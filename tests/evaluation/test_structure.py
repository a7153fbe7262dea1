"""DC smoothness (evaluation/structure.py): a bilinear gradient is smooth everywhere, a flat
shape on it only breaks the cells at its edges, block noise is smooth nowhere, and the
`shapes` test images (codec round trips) score far above block noise with their own texture."""

import numpy as np
import pytest

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec, codec_round_trip
from dctformer_tf.evaluation.structure import block_means, dc_smoothness, smoothness_summary


def _gradient(size: int = 64) -> np.ndarray:
    """uint8 [1, size, size, 3]: a bilinear colour gradient, constant within each 8x8 block
    (so that the block means are exactly bilinear, with no rounding)."""
    cells = np.arange(size) // 8 * 8 + 3.5
    y, x = np.meshgrid(cells, cells, indexing="ij")
    rgb = np.stack([40 + x, 60 + y, 30 + 0.5 * x + 0.25 * y + x * y / 128], axis=-1)
    return np.round(rgb).astype(np.uint8)[None]


def test_block_means_are_the_ycbcr_means_of_each_block():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    means = block_means(images, 8)
    assert means.shape == (2, 2, 3, 3)
    block = images[1, 8:16, 16:24].reshape(-1, 3).astype(np.float64)
    y = (0.299 * block[:, 0] + 0.587 * block[:, 1] + 0.114 * block[:, 2]).mean()
    assert means[1, 1, 2, 0] == pytest.approx(y - 128)
    with pytest.raises(ValueError, match="not a multiple of the block size 8"):
        block_means(images[:, :12], 8)


def test_gradient_is_smooth_a_flat_square_breaks_only_its_edges_noise_is_rough():
    gradient = _gradient()
    assert dc_smoothness(gradient, 8)[0] == 1.0
    square = gradient.copy()
    square[0, 16:40, 16:40] = (200, 30, 90)  # blocks 2-4 of 8, flat
    # Interior cells 1..6: those within one cell of the square's edge rows/columns break.
    score = dc_smoothness(square, 8)[0]
    assert 0.0 < score < 1.0
    rng = np.random.default_rng(1)
    noise = np.repeat(np.repeat(rng.integers(0, 256, (4, 8, 8, 3)), 8, 1), 8, 2)
    assert dc_smoothness(noise.astype(np.uint8), 8).max() == 0.0


def test_shapes_images_score_far_above_block_noise():
    codec = SparseCodec(quality=75, resolution=64)
    images = codec_round_trip(shapes_arrays("test", 60, size=64)[0], codec)
    data = smoothness_summary(images, 8)
    assert data["median"] >= 0.15 and data["num_images"] == 60
    rng = np.random.default_rng(2)
    # Block noise with the data's own within-block texture: each block's pixels shifted
    # by a random offset (as samples that match texture but not structure).
    offsets = np.repeat(np.repeat(rng.integers(-40, 41, (60, 8, 8, 1)), 8, 1), 8, 2)
    shuffled = np.clip(images.astype(int) + offsets, 0, 255).astype(np.uint8)
    assert smoothness_summary(shuffled, 8)["median"] <= 0.05
