"""Prefix construction (docs/design.md §6) against independent references: the DC terms of constant
blocks written out by hand (DC = S·(x − 128), JFIF colour, the DC steps libjpeg writes), the
block means the DC band decodes to, Pillow's grayscale conversion and JPEG decode."""

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec
from dctformer_tf.sampling import conditional as cond
from dctformer_tf.sampling import masks


def jpeg_dc_steps(quality: int) -> tuple:
    """(luma, chroma) DC quantization steps of the tables libjpeg writes at `quality`."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG", quality=quality)
    tables = Image.open(buffer).quantization
    return tables[0][0], tables[1][0]  # DC is entry 0 in zigzag and natural order alike


def ycbcr(rgb) -> np.ndarray:
    """JFIF (ITU-T T.871) Y, Cb, Cr of RGB, all shifted by −128: float64 [..., 3]."""
    r, g, b = (np.asarray(rgb, np.float64)[..., k] for k in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return np.stack([y - 128.0, (b - y) / 1.772, (r - y) / 1.402], axis=-1)


def round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def mid_range_image(rng, h: int, w: int) -> np.ndarray:
    """uint8 [h, w, 3]: random luma per pixel, random chroma per 2x2 pixels (what 4:2:0
    keeps), with RGB in [68, 188]: far enough from 0 and 255 that neither the decode of the
    DC band nor samples with detail drawn on top clip."""
    y = rng.uniform(96, 160, (h, w))
    chroma = np.repeat(np.repeat(rng.uniform(-16, 16, (h // 2, w // 2, 2)), 2, 0), 2, 1)
    cb, cr = chroma[..., 0], chroma[..., 1]
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("block_size, resolution, quality", [(8, 32, 75), (16, 64, 50)])
def test_dc_prefix_equals_the_dc_terms_of_constant_blocks(block_size, resolution, quality):
    codec = SparseCodec(block_size=block_size, quality=quality, clip=1200,
                        resolution=resolution)
    s, g = block_size, resolution // block_size
    low = np.random.default_rng(0).integers(0, 256, (g, g, 3), dtype=np.uint8)
    low[0, :2] = 128  # neutral pixels: zero DC terms, absent from the sequence
    prefix, content_hw = cond.downsample_prefix(codec, low)
    assert content_hw == (resolution, resolution)

    q_luma, q_chroma = jpeg_dc_steps(quality)  # T_S[0, 0] = T_8[0, 0] for every S
    yuv = ycbcr(low)
    # Luma block (i, j) is the constant low-res pixel (i, j); chroma block (i, j) covers
    # 2x2 low-res pixels and sits at cell (2i, 2j) (docs/design.md §1.6).
    chroma = yuv.reshape(g // 2, 2, g // 2, 2, 3).mean(axis=(1, 3))
    planes = {0: s * yuv[..., 0] / q_luma}  # channel 0: Y DC (bands order: Y, Cr, Cb)
    for channel, k in ((1, 2), (2, 1)):  # channel 1: Cr DC, channel 2: Cb DC
        plane = np.zeros((g, g))
        plane[::2, ::2] = s * chroma[..., k] / q_chroma
        planes[channel] = plane
    expected = [(c, p, int(v) + codec.clip)
                for c, plane in planes.items()
                for p, v in enumerate(round_half_away(plane).ravel()) if v != 0]
    assert not [p for c, p, _ in expected if c == 0 and p < 2]  # neutral: no luma elements
    np.testing.assert_array_equal(prefix, np.array(expected, np.int32))


def test_dc_prefix_decodes_to_the_input_block_means_up_to_dc_quantization():
    """Decoded alone, the DC band is the input: luma block means (S×S) within
    Q_dc/(2S) (rounding of S·y/Q) + 0.5 (rounding to uint8); chroma means over 2S×2S
    (4:2:0) likewise, against the mean of the 2x2 input pixels."""
    codec = SparseCodec(block_size=8, quality=75, resolution=32)
    nearest = dataclasses.replace(codec, upsample="nearest")  # chroma blocks stay blocks
    low = mid_range_image(np.random.default_rng(1), 4, 4)
    prefix, (h, w) = cond.downsample_prefix(codec, low)
    decoded = ycbcr(nearest.decode(prefix, h, w))
    q_luma, q_chroma = jpeg_dc_steps(75)
    luma_means = decoded[..., 0].reshape(4, 8, 4, 8).mean(axis=(1, 3))
    chroma_means = decoded[..., 1:].reshape(2, 16, 2, 16, 2).mean(axis=(1, 3))
    target = ycbcr(low)
    assert np.abs(luma_means - target[..., 0]).max() <= q_luma / 16 + 0.5
    target_chroma = target[..., 1:].reshape(2, 2, 2, 2, 2).mean(axis=(1, 3))
    assert np.abs(chroma_means - target_chroma).max() <= q_chroma / 16 + 0.5


def test_dc_prefix_leads_the_full_encoding_and_fits_smaller_inputs():
    codec = SparseCodec(block_size=8, quality=75, resolution=32)
    low = mid_range_image(np.random.default_rng(2), 4, 4)
    full = codec.encode(cond.upscale_nearest(low, 8))
    prefix, _ = cond.downsample_prefix(codec, low)
    np.testing.assert_array_equal(prefix, full[: len(prefix)])
    assert full[len(prefix), 0] >= 3  # the next element is past the DC band

    # A 2x4 input: content 16x32 on the canvas, every element inside it.
    prefix, content_hw = cond.downsample_prefix(codec, low[:2])
    assert content_hw == (16, 32)
    masks.check_triples_valid(masks.MaskGeometry.from_codec(codec), prefix, content_hw, 8)


@pytest.mark.parametrize("size", [(5, 4), (8, 8), (32, 32), (4, 3)])
def test_wrong_low_resolution_size_names_the_expected_size(size):
    codec = SparseCodec(block_size=8, quality=75, resolution=32)
    with pytest.raises(ValueError, match=r"low\.png: .* takes a 4x4 image"):
        cond.downsample_prefix(codec, np.zeros(size + (3,), np.uint8), name="low.png")


def test_each_task_names_the_order_it_needs():
    bands = SparseCodec(block_size=8, quality=75, resolution=32)
    luma_first = dataclasses.replace(bands, order="luma_first")
    with pytest.raises(ValueError, match="upsample needs .*'bands'.* uses order 'luma_first'"):
        cond.downsample_prefix(luma_first, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="colorize needs .*'luma_first'.* uses order 'bands'"):
        cond.luma_prefix(bands, np.zeros((32, 32), np.uint8))


def test_luma_prefix_is_the_y_part_of_the_gray_image_encoding():
    codec = SparseCodec(block_size=8, quality=75, resolution=32, order="luma_first")
    colour = shapes_arrays("test", 1, size=32)[0][0]
    gray = Image.fromarray(colour).convert("L")
    prefix, content_hw = cond.luma_prefix(codec, np.array(gray))
    assert content_hw == (32, 32)
    full = codec.encode(np.array(gray.convert("RGB")))
    # Gray has Cb = Cr = 0: the whole sequence is Y channels (ids < S² under luma_first).
    assert (full[:-1, 0] < 64).all()
    np.testing.assert_array_equal(prefix, full[:-1])
    # Colour input is converted exactly as Pillow's "L" conversion does.
    np.testing.assert_array_equal(cond.luma_prefix(codec, colour)[0], prefix)
    # The prefix is the gray input as JPEG codes it: against Pillow's own JPEG round trip.
    buffer = io.BytesIO()
    gray.save(buffer, "JPEG", quality=75)
    reference = np.array(Image.open(buffer), np.float64)
    assert cond.psnr(cond.luma(codec.decode(prefix, 32, 32)), reference) >= 45
    # Larger or non-square input is placed on the canvas like any image.
    large = np.array(Image.fromarray(colour).resize((64, 32)).convert("L"))
    assert cond.luma_prefix(codec, large)[1] == (16, 32)


def test_downsample_and_gray_helpers():
    image = np.random.default_rng(3).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    expected = np.array([[[np.floor(image[2 * i:2 * i + 2, 2 * j:2 * j + 2, k].mean() + 0.5)
                           for k in range(3)] for j in range(6)] for i in range(4)])
    np.testing.assert_array_equal(cond.downsample(image, 2), expected)
    np.testing.assert_array_equal(cond.downsample(cond.upscale_nearest(image, 8), 8), image)
    with pytest.raises(ValueError, match="not a multiple of the factor 5"):
        cond.downsample(image, 5)
    pillow = np.array(Image.fromarray(image).convert("L"))
    np.testing.assert_array_equal(cond.gray_rgb(image), np.repeat(pillow[..., None], 3, 2))
    np.testing.assert_array_equal(cond.gray_rgb(pillow[..., None]), cond.gray_rgb(pillow))
