"""Colour, chroma and block-DCT primitives against independent references, in both twins."""

import numpy as np
import pytest
import scipy.fft
import tensorflow as tf
from PIL import Image

from dctformer_tf.dct import np_ops, tf_ops
from tests.dct.images import natural, random_image


@pytest.mark.parametrize("block_size", (8, 16, 32))
def test_block_dct_equals_scipy_dctn_per_block(block_size, rng):
    s = block_size
    plane = rng.uniform(-128, 128, (2 * s, 3 * s))
    expected = np.stack(
        [
            np.stack(
                [scipy.fft.dctn(plane[i * s : (i + 1) * s, j * s : (j + 1) * s], norm="ortho").ravel()
                 for j in range(3)]
            )
            for i in range(2)
        ]
    )  # [2, 3, S²]
    np.testing.assert_allclose(np_ops.block_dct(plane, s), expected, atol=1e-4)
    np.testing.assert_allclose(tf_ops.block_dct(tf.constant(plane), s).numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("block_size", (8, 16, 32))
def test_block_idct_equals_scipy_idctn_and_inverts(block_size, rng):
    s = block_size
    coefs = rng.normal(0, 50, (2, 2, s * s))
    expected = np.block(
        [[scipy.fft.idctn(coefs[i, j].reshape(s, s), norm="ortho") for j in range(2)] for i in range(2)]
    )
    np.testing.assert_allclose(np_ops.block_idct(coefs, s), expected, atol=1e-4)
    np.testing.assert_allclose(tf_ops.block_idct(tf.constant(coefs), s).numpy(), expected, atol=1e-4)
    np.testing.assert_allclose(np_ops.block_dct(np_ops.block_idct(coefs, s), s), coefs, atol=1e-9)


@pytest.mark.parametrize("block_size", (8, 16, 32))
def test_constant_block_has_dc_s_times_level(block_size):
    plane = np.full((block_size, block_size), 200.0) - 128.0
    coefs = np_ops.block_dct(plane, block_size)[0, 0]
    assert coefs[0] == pytest.approx(block_size * (200 - 128))
    np.testing.assert_allclose(coefs[1:], 0, atol=1e-9)


def test_ycbcr_matches_pillow_within_one():
    image = natural("astronaut", 128)
    ours = np_ops.rgb_to_ycbcr(image) + 128.0
    pillow = np.asarray(Image.fromarray(image).convert("YCbCr"), np.int32)
    # Pillow works in 8-bit fixed point; compare its integers with ours rounded.
    assert np.abs(np_ops.to_uint8(ours).astype(np.int32) - pillow).max() <= 1
    ours_tf = tf_ops.rgb_to_ycbcr(tf.constant(image)).numpy() + 128.0
    np.testing.assert_allclose(ours_tf, ours, atol=1e-9)  # float sums differ in the last bit


def test_ycbcr_inverse(rng):
    rgb = rng.uniform(0, 255, (50, 3))
    np.testing.assert_allclose(np_ops.ycbcr_to_rgb(np_ops.rgb_to_ycbcr(rgb)), rgb, atol=1e-4)


def test_chroma_downsample_is_2x2_mean(rng):
    plane = rng.normal(size=(2, 6, 8))
    expected = (plane[:, 0::2, 0::2] + plane[:, 1::2, 0::2] + plane[:, 0::2, 1::2] + plane[:, 1::2, 1::2]) / 4
    np.testing.assert_allclose(np_ops.downsample_chroma(plane), expected, atol=1e-12)
    np.testing.assert_allclose(tf_ops.downsample_chroma(tf.constant(plane)).numpy(), expected, atol=1e-12)


def _libjpeg_fancy_h2v2(plane: np.ndarray) -> np.ndarray:
    """Hand-written libjpeg h2v2 fancy upsampling: 9/16 nearest, 3/16 each side, 1/16 diagonal."""
    h, w = plane.shape
    out = np.zeros((2 * h, 2 * w))
    for oy in range(2 * h):
        for ox in range(2 * w):
            iy, ix = oy // 2, ox // 2
            ny = min(max(iy + (1 if oy % 2 else -1), 0), h - 1)
            nx = min(max(ix + (1 if ox % 2 else -1), 0), w - 1)
            out[oy, ox] = (9 * plane[iy, ix] + 3 * plane[ny, ix] + 3 * plane[iy, nx] + plane[ny, nx]) / 16
    return out


def test_triangle_upsampling_is_libjpeg_fancy_and_nearest_repeats(rng):
    plane = rng.normal(size=(4, 5))
    expected = _libjpeg_fancy_h2v2(plane)
    np.testing.assert_allclose(np_ops.upsample_chroma(plane), expected, atol=1e-12)
    np.testing.assert_allclose(tf_ops.upsample_chroma(tf.constant(plane)).numpy(), expected, atol=1e-12)
    nearest = np_ops.upsample_chroma(plane, "nearest")
    np.testing.assert_array_equal(nearest[1::2, 1::2], plane)
    np.testing.assert_array_equal(tf_ops.upsample_chroma(tf.constant(plane), "nearest").numpy(), nearest)
    with pytest.raises(ValueError, match="'triangle' or 'nearest'.*'cubic'"):
        np_ops.upsample_chroma(plane, "cubic")


@pytest.mark.parametrize(
    "shape,resolution,content",
    [((100, 75), 64, (64, 48)), ((75, 100), 64, (48, 64)), ((64, 64), 64, (64, 64)),
     ((30, 200), 64, (16, 64)), ((33, 50), None, (33, 50))],
)
def test_canvas_geometry_and_neutral_padding(shape, resolution, content, rng):
    image = random_image(rng, *shape)
    pixels, hw = np_ops.canvas(image, resolution, 8)
    assert tuple(hw) == content
    side = resolution or None
    if side:
        assert pixels.shape == (side, side, 3)
    else:
        assert pixels.shape == (48, 64, 3)  # next multiples of 16
    h, w = content
    assert (pixels[h:] == 128).all() and (pixels[:, w:] == 128).all()
    tf_pixels, tf_hw = tf_ops.canvas(tf.constant(image), resolution, 8)
    np.testing.assert_array_equal(tf_pixels.numpy(), pixels)
    np.testing.assert_array_equal(tf_hw.numpy(), hw)


def test_resize_is_close_to_pillow_antialiased_bilinear():
    image = natural("coffee")  # 400 x 600
    ours = np_ops.resize(image, 200, 300).astype(np.float64)
    pillow = np.asarray(Image.fromarray(image).resize((300, 200), Image.BILINEAR), np.float64)
    assert np.abs(ours - pillow).mean() < 1.0
