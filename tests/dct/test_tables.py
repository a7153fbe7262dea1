"""Quantization tables against the tables libjpeg writes, and the zigzag scan."""

import io

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.dct import quantization_table, zigzag_order

QUALITIES = (1, 10, 23, 35, 50, 75, 90, 100)


def _jpeg_bytes(quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 140, 200)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _dqt_tables(jpeg: bytes) -> dict:
    """Parse the DQT segments of a JPEG file: {table id: 64 entries in zigzag (file) order}."""
    tables, i = {}, 2
    while i < len(jpeg):
        marker, length = jpeg[i + 1], int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if marker == 0xDB:
            segment, j = jpeg[i + 4 : i + 2 + length], 0
            while j < len(segment):
                precision, table_id = segment[j] >> 4, segment[j] & 15
                assert precision == 0, "8-bit tables expected"
                tables[table_id] = list(segment[j + 1 : j + 65])
                j += 65
        if marker == 0xDA:
            break
        i += 2 + length
    return tables


@pytest.mark.parametrize("quality", QUALITIES)
def test_tables_equal_libjpeg_dqt_segments(quality):
    """Independent reference: the bytes libjpeg writes, zigzag order undone by hand."""
    dqt = _dqt_tables(_jpeg_bytes(quality))
    scan = zigzag_order(8)
    for table_id, chroma in ((0, False), (1, True)):
        natural = np.zeros((8, 8), np.int32)
        natural[scan[:, 0], scan[:, 1]] = dqt[table_id]
        np.testing.assert_array_equal(quantization_table(quality, 8, chroma), natural)


@pytest.mark.parametrize("quality", QUALITIES)
def test_tables_equal_pillow_quantization_attribute(quality):
    # Pillow >= 8.3 returns Image.quantization in natural order (it un-zigzags the DQT).
    tables = Image.open(io.BytesIO(_jpeg_bytes(quality))).quantization
    np.testing.assert_array_equal(quantization_table(quality).ravel(), tables[0])
    np.testing.assert_array_equal(quantization_table(quality, chroma=True).ravel(), tables[1])


def test_spec_test_vectors():
    np.testing.assert_array_equal(quantization_table(50)[0], [16, 11, 10, 16, 24, 40, 51, 61])
    np.testing.assert_array_equal(quantization_table(75)[0], [8, 6, 5, 8, 12, 20, 26, 31])
    np.testing.assert_array_equal(quantization_table(90)[0], [3, 2, 2, 3, 5, 8, 10, 12])
    np.testing.assert_array_equal(quantization_table(100), np.ones((8, 8)))
    np.testing.assert_array_equal(
        quantization_table(75, chroma=True)[0], [9, 9, 12, 24, 50, 50, 50, 50]
    )


@pytest.mark.parametrize("block_size", (16, 32))
@pytest.mark.parametrize("chroma", (False, True))
def test_larger_blocks_are_nearest_neighbour_resize(block_size, chroma):
    base = quantization_table(35, 8, chroma)
    big = quantization_table(35, block_size, chroma)
    assert big.shape == (block_size, block_size)
    factor = block_size // 8
    np.testing.assert_array_equal(big, np.kron(base, np.ones((factor, factor), np.int32)))


def test_zigzag_matches_libjpeg_natural_order():
    # jpeg_natural_order[k] = natural index of zigzag position k (libjpeg jutils.c), first 16.
    natural_order = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5]
    scan = zigzag_order(8)
    np.testing.assert_array_equal(scan[:16, 0] * 8 + scan[:16, 1], natural_order)
    assert sorted(map(tuple, scan.tolist())) == [(r, c) for r in range(8) for c in range(8)]


@pytest.mark.parametrize("quality", (0, 101, -5, 2.5, "75"))
def test_quality_out_of_range_is_an_error(quality):
    with pytest.raises((ValueError, TypeError), match="quality"):
        quantization_table(quality)


@pytest.mark.parametrize("block_size", (4, 12, 64))
def test_unsupported_block_size_is_an_error(block_size):
    with pytest.raises(ValueError, match=f"block_size must be one of .* got {block_size}"):
        quantization_table(75, block_size)
