"""Where the AC terms sit and the MED predictor's DC bits (`evaluation/placement.py`) on
hand-built dense DCT images, and the median second difference of block means on hand-built
images, against values worked out by hand and scipy's Spearman correlation."""

import numpy as np
import pytest
from scipy import stats

from dctformer_tf.dct import SparseCodec
from dctformer_tf.dct.order import channel_bands, channel_components
from dctformer_tf.evaluation.placement import (
    ac_placement,
    edge_strength,
    med_dc_bits,
    med_prediction,
    spearman,
)
from dctformer_tf.evaluation.structure import second_difference_medians

CODEC = SparseCodec(block_size=8, quality=75, clip=1200, resolution=32)  # G = 4, C = 192
BANDS = channel_bands("bands", 8)
COMPONENTS = channel_components("bands", 8)
Y_DC = int(np.flatnonzero((COMPONENTS == 0) & (BANDS == 0))[0])
Y_BAND2 = int(np.flatnonzero((COMPONENTS == 0) & (BANDS == 2))[0])
Y_BAND1 = int(np.flatnonzero((COMPONENTS == 0) & (BANDS == 1))[0])


def _step_image(ac_blocks, ac_channel=Y_BAND2) -> np.ndarray:
    """One 4x4-block dense image: Y DC 0 in columns 0-1 and 10·(row + 1) in columns 2-3 (an
    edge between columns 1 and 2, strongest in the bottom rows); `ac_channel` set to 3 in
    the (row, column) blocks of `ac_blocks`."""
    dense = np.zeros((4, 4, 192), np.int32)
    dense[:, 2:, Y_DC] = 10 * np.arange(1, 5)[:, None]
    for row, column in ac_blocks:
        dense[row, column, ac_channel] = 3
    return dense


STRONGEST = [(2, 1), (2, 2), (3, 1), (3, 2)]  # the quarter of blocks with the strongest edges
FLAT = [(row, column) for row in range(4) for column in (0, 3)]  # no edge at all


def test_edge_strength_is_the_largest_difference_to_a_neighbour():
    dc = np.array([[[0, 0, 5, 5], [0, 0, 5, 5], [0, 0, 5, 9], [0, 0, 5, 5]]], float)
    want = np.array([[[0, 5, 5, 0], [0, 5, 5, 0], [0, 5, 5, 4], [0, 5, 5, 4]]], float)
    want[0, 1, 3] = 4  # (1, 3) sees 9 below it
    np.testing.assert_array_equal(edge_strength(dc), want)


def test_spearman_equals_scipys_with_ties():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 200), rng.integers(0, 7, 200)
    y = y + x  # correlated, with many ties
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert spearman(np.ones(5), np.arange(5)) == 0.0


def test_ac_at_the_edge_scores_one_and_ac_away_from_it_zero():
    at_edge = ac_placement(_step_image(STRONGEST)[None], CODEC)
    assert at_edge["ac_share_at_edges"] == 1.0 and at_edge["blocks_with_ac"] == 0.25
    assert at_edge["spearman"] > 0.5
    away = ac_placement(_step_image(FLAT)[None], CODEC)
    assert away["ac_share_at_edges"] == 0.0 and away["blocks_with_ac"] == 0.5
    assert away["spearman"] < -0.5
    # Band 1 is not counted as AC here (min_band 2): no AC at all.
    low = ac_placement(_step_image(STRONGEST, Y_BAND1)[None], CODEC)
    assert low["blocks_with_ac"] == 0.0 and low["ac_share_at_edges"] == 0.0


def test_with_no_edges_the_quarter_holds_a_quarter_of_the_ac():
    """Ties: a flat image's top quarter is still a quarter of its blocks, not all of them."""
    dense = np.zeros((1, 4, 4, 192), np.int32)
    dense[..., Y_BAND2] = 2  # AC everywhere, edges nowhere
    result = ac_placement(dense, CODEC)
    assert result["ac_share_at_edges"] == 0.25 and result["blocks_with_ac"] == 1.0


def test_med_prediction_by_hand():
    grid = np.array([[4, 6], [5, 9]])
    # (0,0): a=b=c=0 -> 0. (0,1): a=4, b=0, c=0 -> c <= min -> max(a, b) = 4.
    # (1,0): a=0, b=4, c=0 -> 4. (1,1): a=5, b=6, c=4 -> c <= min -> max = 6.
    np.testing.assert_array_equal(med_prediction(grid), [[0, 4], [4, 6]])
    # A plane rising down and falling across puts c between a and b: a + b - c, exact.
    plane = np.add.outer(np.arange(4), -2 * np.arange(4))
    assert (med_prediction(plane)[1:, 1:] == plane[1:, 1:]).all()
    # Rising both ways, c is below both neighbours: the larger one, not the plane.
    rising = np.add.outer(np.arange(4), 2 * np.arange(4))
    assert (med_prediction(rising)[1:, 1:] == np.maximum(rising[1:, :-1], rising[:-1, 1:])).all()


def test_med_dc_bits_is_the_entropy_of_the_residuals():
    dense = np.zeros((2, 4, 4, 192), np.int32)
    dense[:, :, :, Y_DC] = 7  # flat: residual 7 at the corner, 0 elsewhere (2 of 32 cells)
    bits = med_dc_bits(dense, CODEC)
    p = np.array([2, 30]) / 32
    assert bits["Y"]["bits_per_cell"] == pytest.approx(-(p * np.log2(p)).sum())
    assert bits["Y"]["cells"] == 32 and bits["Cb"]["cells"] == 8
    assert bits["Cb"]["bits_per_cell"] == 0.0  # all zero: one symbol


def test_second_differences_of_a_gradient_are_zero_and_of_noise_are_not():
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    gradient = np.stack([rows * 4, cols * 4, 100 + rows * 2], axis=-1).astype(np.uint8)
    assert all(v == pytest.approx(0, abs=1e-9)
               for v in second_difference_medians(gradient[None], 8).values())
    blocks = np.kron(np.array([[0, 40, 0, 40]] * 4), np.ones((8, 8)))  # grey columns
    stripes = np.repeat(blocks[..., None], 3, axis=-1).astype(np.uint8)
    medians = second_difference_medians(stripes[None], 8)
    # Across: |0 - 80 + 0| = 80 or 80; down: 0. Median of 8 eighties and 8 zeros: 40 (Y).
    assert medians["Y"] == pytest.approx(40.0, abs=0.5)
    assert medians["Cb"] == pytest.approx(0.0, abs=0.5)
