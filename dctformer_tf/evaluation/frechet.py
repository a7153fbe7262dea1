"""Fréchet distance between Gaussians fitted to feature sets: FID and sFID (docs/design.md §7).

    d² = |μ1 − μ2|² + tr Σ1 + tr Σ2 − 2 tr (Σ1^½ Σ2 Σ1^½)^½

The cross term uses `tr sqrt(Σ1 Σ2) = tr sqrt(Σ1^½ Σ2 Σ1^½)`: the right-hand matrix is
symmetric positive semi-definite, so both square roots come from symmetric eigendecompositions
with real, non-negative eigenvalues. That stays exact for the singular covariances that small
sample sets give (fewer samples than the 2048 feature dimensions), where the usual
`scipy.linalg.sqrtm(Σ1 Σ2)` of a non-symmetric product returns complex noise and needs an
`eps·I` offset.
"""

import numpy as np


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
      mu1, mu2: float [D] means.
      sigma1, sigma2: float [D, D] symmetric positive semi-definite covariances.
    Returns:
      The distance as a Python float, computed in float64.
    """
    mu1, mu2 = (np.asarray(m, np.float64) for m in (mu1, mu2))
    sigma1, sigma2 = (np.asarray(s, np.float64) for s in (sigma1, sigma2))
    if mu1.ndim != 1:
        raise ValueError(f"frechet_distance: mu1 must be a vector [D], got shape {mu1.shape}")
    d = mu1.shape[0]
    for name, value, shape in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)),
                               ("sigma2", sigma2, (d, d))):
        if value.shape != shape:
            raise ValueError(
                f"frechet_distance: {name} has shape {value.shape}, expected {shape} "
                f"(mu1 has {d} dimensions)"
            )
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1  # [D, D], symmetric PSD up to rounding
    cross = np.sqrt(_psd_eigenvalues(middle)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * cross)


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ddof = 1) covariance of a feature set, as the reference FID code.

    Args:
      features: float [N, D] with N >= 2.
    Returns:
      mu float64 [D], sigma float64 [D, D].
    """
    features = _check_features(features, "feature_statistics: features")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid_from_features(features_a, features_b) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets [Na, D], [Nb, D].

    With fewer samples than dimensions in both sets (a few hundred samples of 2048-d
    features), the same number comes from the samples themselves (`_frechet_from_samples`):
    an SVD of an [Nb, Na] matrix instead of eigendecompositions of [D, D] ones.
    """
    a = _check_features(features_a, "fid_from_features: features_a")
    b = _check_features(features_b, "fid_from_features: features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"fid_from_features: features_a has {a.shape[1]} dimensions, features_b {b.shape[1]}"
        )
    if max(len(a), len(b)) < a.shape[1]:
        return _frechet_from_samples(a, b)
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


def _frechet_from_samples(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance of `fid_from_features` without any D×D matrix.

    With A = (a − ā)/√(Na − 1) [Na, D], Σa = AᵀA and tr Σa = ‖A‖²_F (likewise B for b).
    The cross term's matrix Σa^½ Σb Σa^½ = (B Σa^½)ᵀ(B Σa^½), and B Σa^½ has the Gram
    matrix B Σa Bᵀ = (B Aᵀ)(B Aᵀ)ᵀ: so tr (Σa^½ Σb Σa^½)^½ is the sum of the singular
    values of the [Nb, Na] matrix B Aᵀ.
    """
    centred_a = (a - a.mean(axis=0)) / np.sqrt(len(a) - 1)  # [Na, D]
    centred_b = (b - b.mean(axis=0)) / np.sqrt(len(b) - 1)  # [Nb, D]
    cross = np.linalg.svd(centred_b @ centred_a.T, compute_uv=False).sum()
    diff = a.mean(axis=0) - b.mean(axis=0)
    return float(diff @ diff + np.sum(centred_a**2) + np.sum(centred_b**2) - 2.0 * cross)


def _check_features(features, name: str) -> np.ndarray:
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"{name} must be [N, D] with N >= 2, got shape {features.shape}")
    return features


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root V diag(√λ) Vᵀ of a symmetric PSD matrix [D, D]."""
    eigenvalues, eigenvectors = _psd_eigh(matrix)
    return (eigenvectors * np.sqrt(eigenvalues)) @ eigenvectors.T


def _psd_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    return _psd_eigh(matrix, vectors=False)[0]


def _psd_eigh(matrix: np.ndarray, vectors: bool = True) -> tuple:
    """Eigenvalues (and vectors) of a symmetric PSD matrix, rounding noise set to 0.

    On a singular matrix the zero eigenvalues come out as ±D·ε·λ_max noise, and their
    square roots (~1e-7 each) would add up to visible error; below the tolerance that
    `np.linalg.matrix_rank` uses, they are 0.
    """
    symmetric = (matrix + matrix.T) / 2
    if vectors:
        eigenvalues, eigenvectors = np.linalg.eigh(symmetric)
    else:
        eigenvalues, eigenvectors = np.linalg.eigvalsh(symmetric), None
    tolerance = eigenvalues.max(initial=0.0) * len(matrix) * np.finfo(np.float64).eps
    return np.where(eigenvalues > tolerance, eigenvalues, 0.0), eigenvectors
