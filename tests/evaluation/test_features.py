"""Feature extractors: InceptionV3's sFID features are `mixed6`'s first 7 channels and its
FID features the average pool of the last block, read from weights in a local file; a
missing or unreadable file names the gin parameter; the shapes classifier's features come
from the layers its docstring names."""

import gin
import keras
import numpy as np
import pytest

from dctformer_tf.evaluation import features as features_lib
from dctformer_tf.evaluation.features import (
    InceptionFeatures,
    ShapesClassifierFeatures,
    inception_features,
)
from dctformer_tf.evaluation.shapes_classifier import build_shapes_classifier

EXPECTED_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    """A randomly initialised InceptionV3 without top, and its weights file."""
    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(weights=None, include_top=False,
                                           input_shape=(299, 299, 3))
    path = str(tmp_path_factory.mktemp("inception") / "inception_random.weights.h5")
    model.save_weights(path)
    return model, path


def test_sfid_features_are_mixed6_first_7_channels_and_fid_the_last_pool(inception, rng):
    model, path = inception
    extractor = InceptionFeatures(path, batch_size=2)  # a fresh model: weights come from path
    images = rng.integers(0, 256, (2, 299, 299, 3), dtype=np.uint8)
    got = extractor(images)
    assert got["spatial"].shape == (2, 17 * 17 * 7) and got["pool"].shape == (2, 2048)

    x = keras.applications.inception_v3.preprocess_input(images.astype(np.float32))
    reference = keras.Model(model.input, [model.get_layer("mixed6").output, model.output])
    mixed6, last = (np.asarray(t) for t in reference(x))  # [2, 17, 17, 768], [2, 8, 8, 2048]
    scale = np.abs(mixed6[..., :7]).max()
    np.testing.assert_allclose(got["spatial"], mixed6[..., :7].reshape(2, -1),
                               atol=1e-4 * scale)
    np.testing.assert_allclose(got["pool"], last.mean(axis=(1, 2)),
                               atol=1e-4 * np.abs(last).max())
    # Other channels, or channels-first flattening, would not match.
    assert not np.allclose(got["spatial"], mixed6[..., 7:14].reshape(2, -1), atol=1e-3 * scale)
    assert not np.allclose(got["spatial"],
                           mixed6[..., :7].transpose(0, 3, 1, 2).reshape(2, -1),
                           atol=1e-3 * scale)


def test_missing_weights_name_the_gin_key_and_the_expected_file(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        inception_features()
    assert "inception_features.weights_path" in str(error.value)
    assert EXPECTED_FILE in str(error.value)
    missing = str(tmp_path / "nowhere.h5")
    gin.clear_config()
    try:
        gin.parse_config(f"inception_features.weights_path = {missing!r}")
        with pytest.raises(FileNotFoundError, match="nowhere.h5"):
            inception_features()  # the path arrives through gin
    finally:
        gin.clear_config()


def test_unreadable_weights_name_the_file_and_the_gin_key(tmp_path):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(b"not an HDF5 file")
    with pytest.raises(ValueError) as error:
        InceptionFeatures(str(path))
    assert "broken.weights.h5" in str(error.value)
    assert "inception_features.weights_path" in str(error.value)


def test_shapes_classifier_features_read_the_named_layers(tmp_path, rng):
    keras.utils.set_random_seed(1)
    model = build_shapes_classifier()
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    extractor = ShapesClassifierFeatures(path, batch_size=3)
    images = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    got = extractor(images)
    channels = features_lib.SHAPES_SPATIAL_CHANNELS
    reference = keras.Model(model.input, [model.get_layer("pool").output,
                                          model.get_layer("block2_pool").output])
    pool, spatial = (np.asarray(t) for t in reference(images.astype(np.float32)))
    np.testing.assert_allclose(got["pool"], pool, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["spatial"], spatial[..., :channels].reshape(5, -1),
                               rtol=1e-5, atol=1e-6)
    assert got["spatial"].shape == (5, spatial.shape[1] * spatial.shape[2] * channels)
    # Other image sizes are resized to the classifier's input.
    small = extractor(rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    assert small["pool"].shape == (2, pool.shape[1])


def test_extractor_rejects_non_uint8_images():
    extractor = ShapesClassifierFeatures(build_shapes_classifier())
    with pytest.raises(ValueError, match=r"uint8 \[N, H, W, 3\]"):
        extractor(np.zeros((2, 64, 64, 3), np.float32))
