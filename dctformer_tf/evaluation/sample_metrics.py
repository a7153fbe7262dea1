"""Sample-quality metrics of a generated image set against a real one (docs/design.md §7):
FID on the extractor's "pool" features, sFID on its "spatial" features, and improved
precision/recall (k = 3) on "pool"."""

import numpy as np

from dctformer_tf.evaluation.features import FeatureExtractor
from dctformer_tf.evaluation.frechet import fid_from_features
from dctformer_tf.evaluation.precision_recall import precision_recall

METRICS = ("fid", "sfid", "pr")


def image_set_metrics(real_images: np.ndarray, fake_images: np.ndarray,
                      extractor: FeatureExtractor, metrics=METRICS, k: int = 3) -> dict:
    """FID, sFID and precision/recall of `fake_images` against `real_images`.

    Args:
      real_images, fake_images: uint8 [N, H, W, 3] (the two sets may differ in N and size).
      extractor: maps images to {"pool": [N, Dp], "spatial": [N, Ds]}.
      metrics: any of "fid", "sfid", "pr".
      k: precision/recall neighbourhood size.
    Returns:
      {"fid": float, "sfid": float, "precision": float, "recall": float} for the metrics
      asked, plus "num_real", "num_fake" and "features" (the extractor's name).
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"image_set_metrics: unknown metrics {unknown}; choose from {METRICS}")
    real, fake = extractor(real_images), extractor(fake_images)
    result = {"num_real": len(real_images), "num_fake": len(fake_images),
              "features": extractor.name}
    if "fid" in metrics:
        result["fid"] = fid_from_features(real["pool"], fake["pool"])
    if "sfid" in metrics:
        result["sfid"] = fid_from_features(real["spatial"], fake["spatial"])
    if "pr" in metrics:
        result.update(precision_recall(real["pool"], fake["pool"], k=k))
    return result
