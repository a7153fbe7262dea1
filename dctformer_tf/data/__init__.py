"""Data (docs/design.md §2): image sources (embedded `shapes`, image folders, TFDS) and the tf.data
graph that turns images into sparse DCT sequences."""

from dctformer_tf.data.image_io import ImageLoadError, decode_image_bytes, load_image
from dctformer_tf.data.pipeline import encode_dataset
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
    "Scene",
    "Shape",
    "decode_image_bytes",
    "encode_dataset",
    "get_source",
    "image_folder_dataset",
    "load_image",
    "render_shapes",
    "sample_scene",
    "shapes_arrays",
    "shapes_dataset",
    "tfds_dataset",
]
