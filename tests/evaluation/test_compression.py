"""The compression report: JPEG bits are the scan data of Pillow's JPEG of the content the
sequence stands for, read here with an independent marker walk; ratios follow."""

import io

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec
from dctformer_tf.evaluation.compression import compression_report


def _scan_bits(pixels, quality):
    """8 × bytes between the end of the SOS header and EOI of a single-scan baseline JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=2, optimize=True)
    data = buffer.getvalue()
    sos = data.index(b"\xff\xda")
    header = int.from_bytes(data[sos + 2:sos + 4], "big")
    assert data[-2:] == b"\xff\xd9"
    return 8 * (len(data) - 2 - (sos + 2 + header))


def test_report_against_pillow_scan_sizes():
    images, _ = shapes_arrays("test", 3, size=32)
    codec = SparseCodec(block_size=8, quality=60, resolution=32)
    model_bits = np.array([1000.0, 2000.0, 3000.0])
    report = compression_report(model_bits, images, codec)
    jpeg = np.array([_scan_bits(image, 60) for image in images], np.float64)
    per_image = report["per_image"]
    np.testing.assert_array_equal(per_image["jpeg_bits"], jpeg)
    np.testing.assert_allclose(per_image["ratio"], model_bits / jpeg)
    np.testing.assert_allclose(per_image["jpeg_bpd"], jpeg / (3 * 32 * 32))
    assert report["model_over_jpeg"] == pytest.approx(6000.0 / jpeg.sum())
    assert report["mean_ratio"] == pytest.approx(np.mean(model_bits / jpeg))
    assert report["jpeg_entropy_coded_bits_per_image"] == pytest.approx(jpeg.mean())
    assert report["model_bpd"] == pytest.approx(6000.0 / (3 * 3 * 32 * 32))


def test_jpeg_is_of_the_resized_content_at_the_codec_quality():
    images, _ = shapes_arrays("test", 2, size=64)
    codec = SparseCodec(block_size=8, quality=90, resolution=32)  # the codec halves the images
    report = compression_report([1.0, 1.0], images, codec)
    want = [_scan_bits(codec.content_pixels(image), 90) for image in images]
    np.testing.assert_array_equal(report["per_image"]["jpeg_bits"], want)
    np.testing.assert_allclose(report["per_image"]["jpeg_bpd"], np.array(want) / (3 * 32 * 32))


def test_one_model_value_per_image():
    images, _ = shapes_arrays("test", 2, size=16)
    with pytest.raises(ValueError, match="one value for each of the 2 images"):
        compression_report([1.0], images, SparseCodec(resolution=16))


def test_clipped_values_are_counted_against_the_unclipped_codec():
    images, _ = shapes_arrays("test", 3, size=32)
    wide = SparseCodec(quality=75, resolution=32, clip=255)  # >= max_magnitude (189)
    assert compression_report([1.0] * 3, images, wide)["clipped_values"] == 0
    narrow = SparseCodec(quality=75, resolution=32, clip=3)
    dense = np.stack([SparseCodec(quality=75, resolution=32, clip=4096).encode_dense(image)[0]
                      for image in images])
    want = int(np.count_nonzero(np.abs(dense) > 3))
    assert want > 0
    assert compression_report([1.0] * 3, images, narrow)["clipped_values"] == want
