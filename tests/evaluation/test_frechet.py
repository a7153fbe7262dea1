"""Fréchet distance against closed forms for Gaussians and against the scipy `sqrtm`
formula of the reference FID code."""

import numpy as np
import pytest
import scipy.linalg

from dctformer_tf.evaluation.frechet import feature_statistics, fid_from_features, frechet_distance


def _random_spd(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d + 3))
    return a @ a.T / a.shape[1]


def _scipy_reference(mu1, sigma1, mu2, sigma2):
    """The pytorch-fid / TTUR formula: tr sqrtm(Σ1 Σ2) of the non-symmetric product."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
                 - 2 * np.trace(covmean))


def test_shifted_mean_gives_squared_norm(rng):
    d = 16
    mu = rng.normal(size=d)
    eye = np.eye(d)
    assert frechet_distance(np.zeros(d), eye, mu, eye) == pytest.approx(mu @ mu, rel=1e-10)


@pytest.mark.parametrize("sigma", [0.5, 2.0, 3.0])
def test_scaled_identity_covariance_gives_d_times_sigma_minus_one_squared(sigma):
    d = 10
    got = frechet_distance(np.zeros(d), sigma**2 * np.eye(d), np.zeros(d), np.eye(d))
    assert got == pytest.approx(d * (sigma - 1) ** 2, rel=1e-10)


def test_matches_scipy_sqrtm_on_random_spd_matrices(rng):
    for d in (3, 20, 64):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        want = _scipy_reference(mu1, s1, mu2, s2)
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-8, abs=1e-8)


def test_singular_commuting_covariances_match_the_closed_form():
    # Diagonal covariances commute: d² = Σ_i (√a_i − √b_i)², zeros included.
    a = np.array([4.0, 0.0, 1.0, 0.0, 9.0])
    b = np.array([1.0, 0.0, 0.0, 0.0, 9.0])
    want = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(np.zeros(5), np.diag(a), np.zeros(5), np.diag(b)) == pytest.approx(
        want, abs=1e-12)


def test_rank_deficient_sample_covariances_stay_real_and_non_negative(rng):
    # Fewer samples than dimensions, as FID on a few hundred samples of 2048-d features:
    # fid_from_features takes its sample path, frechet_distance the D×D eigendecompositions.
    a, b = rng.normal(size=(20, 64)), rng.normal(loc=0.3, size=(25, 64))
    got = fid_from_features(a, b)
    assert np.isfinite(got) and got > 0
    by_covariances = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert got == pytest.approx(by_covariances, rel=1e-9)
    assert got == pytest.approx(fid_from_features(b, a), rel=1e-9)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-9 * np.trace(np.cov(a.T)))
    assert frechet_distance(*feature_statistics(a), *feature_statistics(a)) == pytest.approx(
        0.0, abs=1e-9 * np.trace(np.cov(a.T)))


def test_more_samples_than_dimensions_match_scipy(rng):
    a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    b = 0.5 + rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6))
    want = _scipy_reference(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert fid_from_features(a, b) == pytest.approx(want, rel=1e-8)


def test_symmetric_and_zero_for_identical_statistics(rng):
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        frechet_distance(mu2, s2, mu1, s1), rel=1e-10)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-10)


def test_features_of_two_gaussians_estimate_the_closed_form(rng):
    d, n = 4, 40000
    mu = np.array([1.0, -2.0, 0.5, 0.0])
    a = rng.normal(size=(n, d))
    b = mu + 2.0 * rng.normal(size=(n, d))
    want = mu @ mu + d * (2.0 - 1.0) ** 2
    assert fid_from_features(a, b) == pytest.approx(want, rel=0.03)


def test_statistics_are_numpy_mean_and_unbiased_covariance(rng):
    x = rng.normal(size=(7, 3))
    mu, sigma = feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0))
    centred = x - x.mean(0)
    np.testing.assert_allclose(sigma, centred.T @ centred / 6)


def test_bad_shapes_name_the_argument():
    with pytest.raises(ValueError, match="sigma2 has shape"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="features_a has 3 dimensions, features_b 4"):
        fid_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
