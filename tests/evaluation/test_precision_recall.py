"""Improved precision/recall on manifolds whose answers are known by hand, and against a
brute-force scipy `cdist` reference."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from dctformer_tf.evaluation.precision_recall import knn_radii_squared, precision_recall


def _embed(points_1d, rng, d=8):
    """1-D points placed on a random line in R^d (distances preserved)."""
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    return rng.normal(size=d) + np.asarray(points_1d, np.float64)[:, None] * direction


def _reference(real, fake, k):
    """Brute force from the definition, with scipy distances."""
    def radii(x):
        d = cdist(x, x)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself
    cross = cdist(fake, real)  # [Nf, Nr]
    precision = np.mean((cross <= radii(real)[None, :]).any(axis=1))
    recall = np.mean((cross <= radii(fake)[:, None]).any(axis=0))
    return precision, recall


def test_identical_sets_give_one_and_one(rng):
    x = rng.normal(size=(50, 6))
    assert precision_recall(x, x.copy()) == {"precision": 1.0, "recall": 1.0}


def test_far_apart_sets_give_zero_and_zero(rng):
    real = rng.normal(size=(40, 6))
    fake = rng.normal(size=(30, 6)) + 100.0
    assert precision_recall(real, fake) == {"precision": 0.0, "recall": 0.0}


def test_subset_on_a_line_gives_hand_derived_values(rng):
    # Real: 0, 1, ..., 9; k = 3 radii: 3 at both ends, 2 inside (two neighbours at 1, two at 2).
    # Fake: 0, 1, 2, 3.2, all inside the real balls (3.2 is 0.2 from 3), so precision = 1.
    # Fake radii: 0 -> 3.2, 1 -> 2.2, 2 -> 2, 3.2 -> 3.2; the union of the fake balls is
    # [-3.2, 6.4], which holds the reals 0..6: recall = 7 / 10.
    real = _embed(np.arange(10), rng)
    line = real[0], (real[1] - real[0])
    fake = line[0] + np.array([0.0, 1.0, 2.0, 3.2])[:, None] * line[1]
    np.testing.assert_allclose(np.sqrt(knn_radii_squared(fake, 3)), [3.2, 2.2, 2.0, 3.2])
    assert precision_recall(real, fake, k=3) == pytest.approx({"precision": 1.0, "recall": 0.7})
    # Swapping the roles swaps the answers.
    assert precision_recall(fake, real, k=3) == pytest.approx({"precision": 0.7, "recall": 1.0})


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_batched_distances_match_brute_force(rng, batch_size):
    real = rng.normal(size=(60, 5))
    fake = 0.8 * rng.normal(size=(45, 5)) + 0.5
    want = _reference(real, fake, k=3)
    got = precision_recall(real, fake, k=3, batch_size=batch_size)
    assert 0 < want[0] < 1 and 0 < want[1] < 1  # a case where both can be wrong
    assert (got["precision"], got["recall"]) == pytest.approx(want)


def test_k_must_leave_neighbours():
    with pytest.raises(ValueError, match="k = 3 needs 1 <= k < N"):
        precision_recall(np.zeros((3, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="dimensions"):
        precision_recall(np.zeros((5, 2)), np.zeros((5, 3)))
