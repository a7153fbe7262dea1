"""Pluggable feature networks for FID, sFID and precision/recall (docs/design.md §7).

An extractor maps uint8 images [N, H, W, 3] to a dict of float feature arrays, in batches:
  "pool":    [N, Dp] global features (FID, precision/recall),
  "spatial": [N, Ds] flattened mid-level spatial features (sFID).

Two extractors:
- `InceptionFeatures`: Keras' InceptionV3 with weights from a local file (nothing downloads
  here), built through the gin-configurable factory `inception_features`. "pool" is the
  2048-d average pool of the last block; "spatial" is `mixed6`'s first 7 channels,
  17×17×7 = 2023 features (paper App. E). The reference FID/sFID code runs the 2015
  TF graph (whose `mixed_6/conv` sFID reads) with its own weights; Keras' InceptionV3 and
  its weights differ, so these numbers compare with each other, not with published ones.
- `ShapesClassifierFeatures`: the small `shapes` CNN of `shapes_classifier`, so the metrics
  mean something offline on the embedded dataset.
"""

import os
import zipfile

import gin
import h5py
import keras
import numpy as np
import tensorflow as tf

from dctformer_tf.evaluation import shapes_classifier

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_SIZE = 299
INCEPTION_SPATIAL_LAYER = "mixed6"
INCEPTION_SPATIAL_CHANNELS = 7
SHAPES_SPATIAL_CHANNELS = 32


class FeatureExtractor:
    """Base class: batches uint8 images through `_features`, concatenates the results.

    Subclasses set `name` and implement `_features(images uint8 [b, H, W, 3]) -> dict of
    float arrays [b, ...]`.

    Args:
      batch_size: int. Images per forward pass (memory only, not the result).
    """

    name = "features"

    def __init__(self, batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"{type(self).__name__}: batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    def __call__(self, images) -> dict[str, np.ndarray]:
        """uint8 [N, H, W, 3] -> {"pool": float32 [N, Dp], "spatial": float32 [N, Ds]}."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{self.name}: images must be uint8 [N, H, W, 3], got {images.dtype} "
                f"{images.shape}"
            )
        if not len(images):
            raise ValueError(f"{self.name}: no images")
        parts = [self._features(images[i:i + self.batch_size])
                 for i in range(0, len(images), self.batch_size)]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _features(self, images: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError


class InceptionFeatures(FeatureExtractor):
    """InceptionV3 pool and `mixed6` features, weights read from `weights_path`.

    Images are resized to 299×299 (bilinear, no antialiasing) and scaled to [-1, 1], as the
    reference FID implementations feed Inception.

    Args:
      weights_path: str. Keras InceptionV3 weights without the top (`INCEPTION_WEIGHTS_FILE`
        from Keras applications, or any file `model.load_weights` reads: `.weights.h5`,
        `.keras`).
      batch_size: int. Images per forward pass.
    """

    name = "inception"

    def __init__(self, weights_path: str | None, batch_size: int = 32):
        super().__init__(batch_size)
        self.weights_path = weights_path
        base = _load_inception(weights_path)
        spatial = base.get_layer(INCEPTION_SPATIAL_LAYER).output  # [B, 17, 17, 768]
        self.model = keras.Model(base.input, [base.output, spatial], name="inception_features")
        self._forward = tf.function(self._forward_graph, reduce_retracing=True)

    def _forward_graph(self, images):
        x = tf.image.resize(tf.cast(images, tf.float32), (INCEPTION_SIZE, INCEPTION_SIZE),
                            method="bilinear")
        last, spatial = self.model(x / 127.5 - 1.0, training=False)  # [B, 8, 8, 2048], mixed6
        pool = tf.reduce_mean(last, axis=[1, 2])  # [B, 2048]
        spatial = spatial[..., :INCEPTION_SPATIAL_CHANNELS]  # [B, 17, 17, 7]
        return pool, tf.reshape(spatial, [tf.shape(spatial)[0], -1])  # -> [B, 2023]

    def _features(self, images):
        pool, spatial = self._forward(images)
        return {"pool": pool.numpy(), "spatial": spatial.numpy()}


def _load_inception(weights_path: str | None) -> keras.Model:
    """InceptionV3 without top, weights from `weights_path`; errors name the gin parameter."""
    where = "`inception_features.weights_path`"
    if not weights_path or not os.path.isfile(weights_path):
        state = "is not set" if not weights_path else f"= {weights_path!r} is not a file"
        raise FileNotFoundError(
            f"Inception weights: gin parameter {where} {state}; point it at a local copy of "
            f"Keras' {INCEPTION_WEIGHTS_FILE} (InceptionV3 without top; nothing is downloaded "
            f"here)"
        )
    bad = (f"Inception weights: cannot load {weights_path!r} (gin parameter {where}; expected "
           f"Keras' {INCEPTION_WEIGHTS_FILE} or a `.weights.h5` of InceptionV3 without top)")
    # A file of the wrong kind fails here, before the slow InceptionV3 build.
    if weights_path.endswith(".keras"):
        if not zipfile.is_zipfile(weights_path):
            raise ValueError(f"{bad}: not a .keras (zip) file")
    elif not h5py.is_hdf5(weights_path):
        raise ValueError(f"{bad}: not an HDF5 file")
    base = keras.applications.InceptionV3(weights=None, include_top=False, pooling=None,
                                          input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    try:
        base.load_weights(weights_path)
    except Exception as error:  # h5py and Keras raise many types for a mismatched file
        raise ValueError(f"{bad}: {error}") from error
    return base


@gin.configurable("inception_features")
def inception_features(weights_path: str | None = None, batch_size: int = 32) -> InceptionFeatures:
    """The Inception extractor; gin binds `inception_features.weights_path`."""
    return InceptionFeatures(weights_path, batch_size)


class ShapesClassifierFeatures(FeatureExtractor):
    """Features of the `shapes` classifier: a meaningful offline stand-in for Inception.

    "pool": the 256-d penultimate features (global average and max of the last conv).
    "spatial": the first `SHAPES_SPATIAL_CHANNELS` channels of the mid-level `SPATIAL_LAYER`
    map, 8×8×32 = 2048 features, the same kind of slice sFID takes of Inception. Images of
    another size than the classifier's 64×64 are resized (bilinear).

    Args:
      model: a classifier from `shapes_classifier`, or the path of its `.keras` file.
      batch_size: int. Images per forward pass.
    """

    name = "shapes_classifier"

    def __init__(self, model: keras.Model | str, batch_size: int = 256):
        super().__init__(batch_size)
        if isinstance(model, str):
            model = shapes_classifier.load_shapes_classifier(model)
        self.classifier = model
        self.model = keras.Model(
            model.inputs,
            [model.get_layer(shapes_classifier.POOL_LAYER).output,
             model.get_layer(shapes_classifier.SPATIAL_LAYER).output],
            name="shapes_features",
        )
        self.image_size = model.input_shape[1]

    def _features(self, images):
        x = tf.cast(images, tf.float32)
        if images.shape[1:3] != (self.image_size, self.image_size):
            x = tf.image.resize(x, (self.image_size, self.image_size), method="bilinear")
        pool, spatial = self.model(x, training=False)
        spatial = np.asarray(spatial)[..., :SHAPES_SPATIAL_CHANNELS]  # [B, 8, 8, 32]
        return {"pool": np.asarray(pool), "spatial": spatial.reshape(len(images), -1)}
