"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019), k = 3 (docs/design.md §7).

Each feature set stands for a manifold: the union of balls around its samples, each ball's
radius being the distance from the sample to its k-th nearest neighbour in the same set
(the sample itself not counted). Then

  precision = fraction of generated samples inside the real manifold (fidelity),
  recall    = fraction of real samples inside the generated manifold (coverage).

A point on a ball's boundary is inside, as in the reference implementation. Distances are
computed in row batches, so 10k × 10k sets take `batch_size × N` floats at a time instead of
N²: [1000, 10000] float64 is 80 MB.
"""

import numpy as np


def precision_recall(real_features, fake_features, k: int = 3,
                     batch_size: int = 1000) -> dict:
    """Improved precision and recall of generated features against real ones.

    Args:
      real_features: float [Nr, D].
      fake_features: float [Nf, D] (generated samples).
      k: neighbourhood size; each set needs more than k samples.
      batch_size: rows of each pairwise-distance block (memory only, not the result).
    Returns:
      {"precision": float, "recall": float}
    """
    real = _check_features(real_features, "real_features", k)
    fake = _check_features(fake_features, "fake_features", k)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"precision_recall: real features have {real.shape[1]} dimensions, "
            f"fake features {fake.shape[1]}"
        )
    real_radii2 = knn_radii_squared(real, k, batch_size)  # [Nr]
    fake_radii2 = knn_radii_squared(fake, k, batch_size)  # [Nf]
    fake_inside = np.zeros(len(fake), bool)  # fake sample inside the real manifold
    real_inside = np.zeros(len(real), bool)  # real sample inside the fake manifold
    # One pass over the fake-real distances answers both questions.
    for start in range(0, len(fake), batch_size):
        rows = slice(start, start + batch_size)
        d2 = squared_distances(fake[rows], real)  # [b, Nr]
        fake_inside[rows] = (d2 <= real_radii2[None, :]).any(axis=1)
        real_inside |= (d2 <= fake_radii2[rows, None]).any(axis=0)
    return {"precision": float(fake_inside.mean()), "recall": float(real_inside.mean())}


def knn_radii_squared(features: np.ndarray, k: int, batch_size: int = 1000) -> np.ndarray:
    """Squared distance from each sample to its k-th nearest other sample: float64 [N].

    Args:
      features: float [N, D], N > k.
    """
    features = _check_features(features, "features", k)
    radii2 = np.empty(len(features))
    for start in range(0, len(features), batch_size):
        d2 = squared_distances(features[start:start + batch_size], features)  # [b, N]
        # Index k of the sorted row: index 0 is the sample itself (distance 0), so this is
        # the k-th neighbour among the others.
        radii2[start:start + batch_size] = np.partition(d2, k, axis=1)[:, k]
    return radii2


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances float64 [Na, D], [Nb, D] -> [Na, Nb].

    |a|² + |b|² − 2 a·b as one matrix product; clipped at 0, where rounding leaves the
    distance of a point to itself slightly negative.
    """
    d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def _check_features(features, name: str, k: int) -> np.ndarray:
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"precision_recall: {name} must be [N, D], got shape {features.shape}")
    if not 1 <= k < features.shape[0]:
        raise ValueError(
            f"precision_recall: k = {k} needs 1 <= k < N, and {name} has N = {features.shape[0]}"
        )
    return features
