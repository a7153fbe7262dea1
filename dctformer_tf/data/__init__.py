"""Data (docs/design.md §2): image sources (embedded `shapes`, image folders, TFDS), the tf.data
graph that turns images into sparse DCT sequences, and the backend-neutral pieces that the
train step and the numpy input path share (`layout`, `expansion`, `numpy_input`).

May import `dct` only (`runs` reads the run's `DataSettings` from `source_settings`); never
`model` or anything above it, never gin.

The names below are loaded on first use (PEP 562), so that importing a TensorFlow-free module
of this package (`dctformer_tf.data.expansion`, say, under `KERAS_BACKEND=jax`) does not import
TensorFlow through this file.
"""

import importlib

_EXPORTS = {
    "ImageLoadError": "image_io",
    "decode_image_bytes": "image_io",
    "load_image": "image_io",
    "OverlongLog": "pipeline",
    "encode_dataset": "pipeline",
    "encode_lengths": "pipeline",
    "SHAPE_CLASSES": "shapes",
    "Scene": "shapes",
    "Shape": "shapes",
    "render_shapes": "shapes",
    "sample_scene": "shapes",
    "shapes_arrays": "shapes",
    "Shard": "shard",
    "get_source": "sources",
    "shapes_dataset": "sources",
    "image_folder_dataset": "folder_source",
    "scan_image_folder": "folder_source",
    "tfds_dataset": "tfds_source",
    "tfds_source": "tfds_source",
}

__all__ = [
    "ImageLoadError",
    "OverlongLog",
    "SHAPE_CLASSES",
    "Scene",
    "Shape",
    "Shard",
    "decode_image_bytes",
    "encode_dataset",
    "encode_lengths",
    "get_source",
    "image_folder_dataset",
    "load_image",
    "render_shapes",
    "sample_scene",
    "scan_image_folder",
    "shapes_arrays",
    "shapes_dataset",
    "tfds_dataset",
    "tfds_source",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
