"""TFDS image datasets as a source (docs/design.md §2): any prepared TFDS dataset with an image
feature, read as `{"image": uint8 [H, W, 3], "label": int32 [], "name": string []}`. Nothing
here downloads unless asked to.
"""

from __future__ import annotations

import logging
import os
import re

import tensorflow as tf

from dctformer_tf.data.folder_source import FOLDER_PREFIX
from dctformer_tf.data.image_io import NEUTRAL_GREY
from dctformer_tf.data.shard import Shard

logger = logging.getLogger(__name__)


def tfds_source(
    name: str,
    split: str,
    data_dir: str | None = None,
    download: bool = False,
    image_key: str = "image",
    label_key: str | None = "label",
    shuffle_files: bool = False,
    num_examples: int | None = None,
    shard: Shard | None = None,
) -> tuple[tf.data.Dataset, tuple[str, ...]]:
    """A TFDS image dataset as `{"image": uint8 [H, W, 3], "label": int32 [], "name": string []}`,
    the name being the record's TFDS id ("<dataset>-<split>.tfrecord-<shard>__<index>"), and
    its class names.

    Greyscale images are tiled to 3 channels, RGBA is composited on grey 128 and 16-bit images
    are scaled to 8 bits (`to_rgb_uint8_tf`). A dataset without the feature `label_key` (or
    with `label_key=None`) gets label 0.

    Args:
      name: TFDS name, with config and version if wanted ("lsun/bedroom", "mnist:3.*.*").
      split: TFDS split expression ("train", "validation[:10%]", ...).
      data_dir: where the prepared dataset lives; None = TFDS's default (~/tensorflow_datasets).
      download: download and prepare the dataset if it is not prepared yet. Off by default:
        offline, a TFDS download hangs for minutes before failing.
      image_key: the image feature.
      label_key: the label feature, or None.
      shuffle_files: let TFDS shuffle the order of its record files.
      num_examples: only the first N examples of `split`; None = all.
      shard: only this shard's part of those (`tfds.even_splits`), read from its own
        records: the other shards' examples are never read.

    Returns:
      The dataset, and the class names of `label_key` (label i is `class_names[i]`; empty
      when the labels have none).

    Raises:
      ValueError: unknown dataset name, no such image feature, a label that is not a scalar,
        or a shard that would be empty.
      FileNotFoundError: not prepared in `data_dir` and `download` is False.
    """
    # Imported here: only this source needs tensorflow_datasets, a slow import.
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise ValueError(
            f"unknown TFDS dataset {name!r} (see `tfds.list_builders()`; a local folder needs "
            f"the prefix {FOLDER_PREFIX!r})"
        ) from None
    if not builder.is_prepared():
        if not download:
            raise FileNotFoundError(_not_prepared_message(name, builder))
        builder.download_and_prepare()

    features = builder.info.features
    if image_key not in features:
        raise ValueError(
            f"TFDS dataset {name!r} has no feature {image_key!r}; its features are "
            f"{sorted(features.keys())}"
        )
    has_label = label_key is not None and label_key in features
    if label_key is not None and not has_label:
        logger.info("TFDS dataset %r has no feature %r: every label is 0", name, label_key)
    if has_label and features[label_key].shape != ():
        raise ValueError(
            f"TFDS dataset {name!r}: feature {label_key!r} has shape {features[label_key].shape}, "
            "not a single class id; pass label_key=None for no labels"
        )
    class_names = tuple(getattr(features[label_key], "names", ())) if has_label else ()

    def standardize(example: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        label = tf.cast(example[label_key], tf.int32) if has_label else tf.constant(0, tf.int32)
        return {"image": to_rgb_uint8_tf(example[image_key]), "label": label,
                "name": example["tfds_id"]}

    read_split = _tfds_shard_split(name, split, builder.info.splits, num_examples, shard)
    # add_tfds_id: each record's id, the image's name in log lines.
    dataset = builder.as_dataset(split=read_split, shuffle_files=shuffle_files,
                                 read_config=tfds.ReadConfig(add_tfds_id=True))
    if shard is None and num_examples is not None:
        dataset = dataset.take(num_examples)
    return dataset.map(standardize, num_parallel_calls=tf.data.AUTOTUNE), class_names


def tfds_dataset(name: str, split: str, **kwargs) -> tf.data.Dataset:
    """`tfds_source(name, split, **kwargs)` without the class names."""
    return tfds_source(name, split, **kwargs)[0]


def _tfds_shard_split(name: str, split: str, splits, num_examples: int | None,
                      shard: Shard | None):
    """The TFDS split that reads `shard`'s part of the first `num_examples` of `split`.

    Unsharded, `split` itself (the caller takes the first examples). Sharded, the cut goes
    into the split as `split[:N]` before `tfds.even_splits`, so that every shard slices the
    same N examples; TFDS cannot slice a split expression again ("train[:10%][:N]").

    Args:
      splits: the builder's `tfds.core.SplitDict` (example counts of split expressions).
    """
    if shard is None:
        return split
    import tensorflow_datasets as tfds

    total = splits[split].num_examples
    if num_examples is not None and num_examples < total:
        if not re.fullmatch(r"\w+", split):
            raise ValueError(
                f"TFDS dataset {name!r}: cannot cut the split expression {split!r} to its "
                f"first {num_examples} examples before sharding it ({shard}); put the cut "
                "into the split expression and leave num_examples unset"
            )
        split, total = f"{split}[:{num_examples}]", num_examples
    shard.check_fits(total, f"TFDS dataset {name!r} split {split!r}")
    return tfds.even_splits(split, shard.count)[shard.index]


def to_rgb_uint8_tf(image: tf.Tensor) -> tf.Tensor:
    """TF twin of `image_io.to_rgb_uint8` for decoded arrays.

    Args:
      image: uint8 or uint16 [H, W, C] with static C ∈ {1, 3, 4} (grey, RGB, RGBA).

    Returns:
      uint8 [H, W, 3]: grey tiled; RGBA composited on grey 128 as `round(a·rgb + (1 − a)·128)`;
      16-bit values scaled by `round(v / 257)` first.
    """
    channels = image.shape[-1]
    if channels not in (1, 3, 4):
        raise ValueError(f"expected an image with 1, 3 or 4 channels, got shape {image.shape}")
    if image.dtype == tf.uint16:
        image = tf.cast((2 * tf.cast(image, tf.int32) + 257) // 514, tf.uint8)  # round(v / 257)
    elif image.dtype != tf.uint8:
        raise ValueError(f"expected a uint8 or uint16 image, got {image.dtype.name}")
    if channels == 1:
        return tf.tile(image, [1, 1, 3])
    if channels == 4:
        rgba = tf.cast(image, tf.int32)
        rgb, alpha = rgba[..., :3], rgba[..., 3:]
        return tf.cast((rgb * alpha + NEUTRAL_GREY * (255 - alpha) + 127) // 255, tf.uint8)
    return image


def _not_prepared_message(name: str, builder) -> str:
    root = os.fspath(builder.data_dir_root)
    message = (
        f"TFDS dataset {name!r} is not prepared in data_dir={root!r} (looked for "
        f"{builder.data_dir}), and download=False. Prepare it once where the network is "
        f"reachable: `tfds build {name} --data_dir={root}` or tfds_dataset(..., download=True), "
        "then pass that data_dir."
    )
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        message += (
            f" This dataset needs files you download by hand first, placed in "
            f"{os.path.join(root, 'downloads', 'manual')}; see its TFDS catalogue page."
        )
    return message
