"""Validity masks on hand-made cases (docs/design.md §1.8 ordering, chroma cells, content area)."""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.dct import SparseCodec
from dctformer_tf.dct.order import channel_components
from dctformer_tf.sampling import masks

CODEC = SparseCodec(block_size=8, quality=75, resolution=32)  # G = 4, C = 192
GEOMETRY = masks.MaskGeometry.from_codec(CODEC)
LUMA = int(np.flatnonzero(channel_components("bands", 8) == 0)[1])
CHROMA = int(np.flatnonzero(channel_components("bands", 8) > 0)[0])
FULL = tf.constant([[4, 4]])


def _channels(prev_c, prev_p, cells=FULL, last=False):
    return masks.channel_allowed(GEOMETRY, cells, tf.constant([prev_c]), tf.constant([prev_p]),
                                 tf.constant([last])).numpy()[0]


def _positions(channel, prev_c, prev_p, cells=FULL):
    return masks.position_allowed_after(GEOMETRY, cells, tf.constant([channel]),
                                        tf.constant([prev_c]), tf.constant([prev_p])).numpy()[0]


def test_channel_never_goes_back_and_eos_always_allowed():
    allowed = _channels(LUMA, 3)
    assert not allowed[:LUMA].any() and allowed[LUMA:].all()
    assert _channels(-1, -1).all()  # sequence start: anything


def test_same_channel_closed_when_its_positions_are_used_up():
    assert not _channels(LUMA, 15)[LUMA]  # luma: 15 is the last of 16 cells
    assert _channels(LUMA, 14)[LUMA]
    assert not _channels(CHROMA, 10)[CHROMA]  # chroma: 10 = cell (2, 2) is its last
    assert _channels(CHROMA, 8)[CHROMA]
    # In a 2x3-cell content area the last luma cell is (1, 2) = position 6.
    assert not _channels(LUMA, 6, cells=tf.constant([[2, 3]]))[LUMA]


def test_last_slot_only_eos():
    allowed = _channels(-1, -1, last=True)
    assert allowed[CODEC.eos] and allowed.sum() == 1


def test_positions_after_previous_in_same_channel_and_any_in_a_new_one():
    assert np.flatnonzero(_positions(LUMA, LUMA, 5)).tolist() == list(range(6, 16))
    assert _positions(LUMA + 1, LUMA, 5).all()


def test_chroma_only_at_even_even_cells_inside_content():
    assert np.flatnonzero(_positions(CHROMA, -1, -1)).tolist() == [0, 2, 8, 10]
    cells = tf.constant([[3, 2]])  # 3 rows, 2 cols of blocks
    assert np.flatnonzero(_positions(CHROMA, -1, -1, cells)).tolist() == [0, 8]
    assert np.flatnonzero(_positions(LUMA, -1, -1, cells)).tolist() == [0, 1, 4, 5, 8, 9]


def test_eos_writes_position_zero_value_zero():
    assert np.flatnonzero(_positions(CODEC.eos, LUMA, 3)).tolist() == [0]
    values = masks.value_allowed(GEOMETRY, tf.constant([CODEC.eos, LUMA])).numpy()
    assert np.flatnonzero(values[0]).tolist() == [0]
    assert not values[1, CODEC.clip] and values[1].sum() == CODEC.num_values - 1


def test_content_cells_round_up():
    cells = masks.content_cells(tf.constant([[32, 17], [16, 8]]), 8).numpy()
    np.testing.assert_array_equal(cells, [[4, 3], [2, 1]])


def test_check_triples_valid_accepts_real_sequences_and_names_the_bad_element(rng):
    from dctformer_tf.data.shapes import shapes_arrays

    images, _ = shapes_arrays("test", 3, size=32)
    for image in images:
        masks.check_triples_valid(GEOMETRY, CODEC.encode(image), (32, 32), 8)
    bad = CODEC.encode(images[0]).copy()
    bad[[3, 4]] = bad[[4, 3]]
    with pytest.raises(ValueError, match="element 4"):
        masks.check_triples_valid(GEOMETRY, bad, (32, 32), 8)


def test_min_channel_closes_the_prefix_channels_but_not_eos():
    allowed = masks.channel_allowed(GEOMETRY, FULL, tf.constant([0]), tf.constant([3]),
                                    tf.constant([False]), tf.constant([3])).numpy()[0]
    assert not allowed[:3].any() and allowed[3:].all()
    # Without it, channel 0 (positions left after 3) and 1, 2 stay open.
    assert _channels(0, 3)[:3].all()
