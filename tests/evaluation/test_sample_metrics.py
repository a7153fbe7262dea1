"""image_set_metrics: FID reads "pool", sFID reads "spatial", precision/recall reads "pool"
(checked with a stub extractor whose two feature sets differ); with the shapes classifier's
features (random weights), a second real set is closer to the first than a set of noise."""

import numpy as np
import pytest

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.evaluation.features import FeatureExtractor, ShapesClassifierFeatures
from dctformer_tf.evaluation.sample_metrics import image_set_metrics
from dctformer_tf.evaluation.shapes_classifier import build_shapes_classifier


class MeanColourFeatures(FeatureExtractor):
    """"pool": per-channel means [N, 3]; "spatial": 2×2-cell channel means [N, 12]."""

    name = "mean_colour"

    def _features(self, images):
        x = images.astype(np.float64)
        n, h, w, _ = x.shape
        cells = x.reshape(n, 2, h // 2, 2, w // 2, 3).mean(axis=(2, 4))  # [N, 2, 2, 3]
        return {"pool": x.mean(axis=(1, 2)), "spatial": cells.reshape(n, -1)}


def _gaussian_fd(a, b):
    """Independent Fréchet distance for the test: scipy's sqrtm formula."""
    import scipy.linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2)
                 - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real))


def test_each_metric_reads_its_feature_set(rng):
    real = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    fake = np.clip(real[:24].astype(int) + rng.integers(-40, 80, (24, 8, 8, 3)), 0, 255)
    fake = fake.astype(np.uint8)
    extractor = MeanColourFeatures(batch_size=7)
    got = image_set_metrics(real, fake, extractor)
    f_real, f_fake = extractor(real), extractor(fake)
    assert got["fid"] == pytest.approx(_gaussian_fd(f_real["pool"], f_fake["pool"]), rel=1e-6)
    assert got["sfid"] == pytest.approx(_gaussian_fd(f_real["spatial"], f_fake["spatial"]),
                                        rel=1e-6)
    assert got["fid"] != pytest.approx(got["sfid"], rel=1e-3)
    assert (got["num_real"], got["num_fake"], got["features"]) == (30, 24, "mean_colour")
    assert 0.0 <= got["precision"] <= 1.0 and 0.0 <= got["recall"] <= 1.0
    only_fid = image_set_metrics(real, fake, extractor, metrics=("fid",))
    assert "sfid" not in only_fid and "precision" not in only_fid
    with pytest.raises(ValueError, match="unknown metrics"):
        image_set_metrics(real, fake, extractor, metrics=("is",))


def test_shapes_features_tell_real_from_noise(rng):
    extractor = ShapesClassifierFeatures(build_shapes_classifier())
    real_a, _ = shapes_arrays("test", 40)
    real_b, _ = shapes_arrays("test", 40, start=40)
    noise = rng.integers(0, 256, real_a.shape, dtype=np.uint8)
    same = image_set_metrics(real_a, real_b, extractor)
    other = image_set_metrics(real_a, noise, extractor)
    assert same["fid"] < other["fid"] and same["sfid"] < other["sfid"]
    # Noise features bunch together in tiny balls that cover no real image; precision is no
    # use here, as a few wide real balls can cover the whole bunch.
    assert same["recall"] > 0.5 > other["recall"]
