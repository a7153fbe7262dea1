"""Data (docs/design.md §2): image sources (embedded `shapes`, image folders, TFDS) and the tf.data
graph that turns images into sparse DCT sequences."""

from dctformer_tf.data.image_io import ImageLoadError, decode_image_bytes, load_image
from dctformer_tf.data.pipeline import OverlongLog, encode_dataset, encode_lengths
from dctformer_tf.data.shapes import (
    SHAPE_CLASSES,
    Scene,
    Shape,
    render_shapes,
    sample_scene,
    shapes_arrays,
)
from dctformer_tf.data.sources import (
    get_source,
    image_folder_dataset,
    shapes_dataset,
    tfds_dataset,
)

__all__ = [
    "SHAPE_CLASSES",
    "ImageLoadError",
    "OverlongLog",
    "Scene",
    "Shape",
    "decode_image_bytes",
    "encode_dataset",
    "encode_lengths",
    "get_source",
    "image_folder_dataset",
    "load_image",
    "render_shapes",
    "sample_scene",
    "shapes_arrays",
    "shapes_dataset",
    "tfds_dataset",
]
