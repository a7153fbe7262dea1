"""Image sources as `tf.data` datasets of `{"image": uint8 [H, W, 3], "label": int32 [],
"name": string []}` (docs/design.md §2).

- `shapes_dataset`: the embedded `shapes` data (`data/shapes.py`), static shape [64, 64, 3].
- `image_folder_dataset` (`data/folder_source.py`): a folder of image files, label from the
  first-level sub-folder.
- `tfds_dataset`, `tfds_source` (`data/tfds_source.py`): any prepared TFDS image dataset;
  never downloads unless asked to.
- `get_source`: one name for all three, as configs spell it.
- `Shard` (`data/shard.py`): the part of a source one input pipeline reads (multi-worker
  training, §4).

Labels are int32 class ids; a source without labels gives 0 everywhere and no class names.
`name` says which image an example is, so that a log line can point at it (an over-long
sequence, `data.pipeline`): the file path, the TFDS record id, or "shapes/<split>/<seed>".
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from dctformer_tf.data.folder_source import FOLDER_PREFIX, image_folder_dataset
from dctformer_tf.data.shapes import SHAPE_CLASSES, render_shapes, split_seed_range
from dctformer_tf.data.shard import Shard
from dctformer_tf.data.tfds_source import tfds_dataset, tfds_source

__all__ = [
    "Shard",
    "get_source",
    "image_folder_dataset",
    "shapes_dataset",
    "shapes_example",
    "tfds_dataset",
    "tfds_source",
]


def shapes_dataset(
    split: str = "train",
    num_examples: int | None = None,
    start: int = 0,
    size: int = 64,
    shard: Shard | None = None,
) -> tf.data.Dataset:
    """The embedded `shapes` data: examples `start ... start + num_examples − 1` of `split`.

    Args:
      split: "train" or "test" (disjoint seed ranges, `shapes.SPLIT_SEEDS`).
      num_examples: how many; None = the rest of the split (1,000,000 for "train").
      start: index of the first example within the split.
      size: image side in pixels.
      shard: only this shard's contiguous part of those examples (`Shard.bounds`).

    Returns:
      A finite, deterministic dataset of `{"image": uint8 [size, size, 3], "label": int32 [],
      "name": string []}` with label ids into `shapes.SHAPE_CLASSES` and names
      "shapes/<split>/<seed>".
    """
    first, end = split_seed_range(split, num_examples, start)
    if shard is not None:
        shard.check_fits(end - first, f"shapes split {split!r} (num_examples={num_examples})")
        lo, hi = shard.bounds(end - first)
        first, end = first + lo, first + hi
    seeds = tf.data.Dataset.range(first, end)

    def example(seed: tf.Tensor) -> dict[str, tf.Tensor]:
        name = tf.strings.join([f"shapes/{split}/", tf.strings.as_string(seed)])
        return {**shapes_example(seed, size), "name": name}

    return seeds.map(example, num_parallel_calls=tf.data.AUTOTUNE)


def shapes_example(seed: tf.Tensor, size: int = 64) -> dict[str, tf.Tensor]:
    """The `shapes` example of `seed` (int64 []): image uint8 [size, size, 3], label int32 []."""

    def render(seed_value: np.int64) -> tuple[np.ndarray, np.int32]:
        image, label = render_shapes(int(seed_value), size)
        return image, np.int32(label)

    image, label = tf.numpy_function(render, [seed], [tf.uint8, tf.int32], stateful=False)
    image.set_shape([size, size, 3])
    label.set_shape([])
    return {"image": image, "label": label}


def get_source(
    name: str, split: str = "train", shard: Shard | None = None, **kwargs
) -> tuple[tf.data.Dataset, tuple[str, ...]]:
    """The source a config names, as (dataset, class names).

    Every source takes `num_examples` (only the first N examples of the split) and `shard`
    (only that shard's part of those, `Shard`); None reads them all.

    - "shapes" → `shapes_dataset(split, **kwargs)`.
    - "folder:PATH", or an existing folder, or a string that looks like a path ("/…", "./…",
      "../…", "~…") → `image_folder_dataset`. The sub-folder `PATH/<split>` is used when it
      exists (the usual `train/`, `test/` layout); otherwise PATH itself, whatever the split.
    - anything else → `tfds_source(name, split, **kwargs)`.

    Returns:
      The dataset of `{"image": uint8 [H, W, 3], "label": int32 [], "name": string []}` and
      the class names (label i is `class_names[i]`; empty for unlabelled sources, whose
      labels are all 0).

    Raises:
      ValueError: empty name; unknown TFDS name; fewer examples than `shard.count` (a shard
        would be empty).
      FileNotFoundError: a folder that does not exist; a TFDS dataset that is not prepared.
      TypeError: keyword arguments the chosen source does not take.
    """
    if not name or not name.strip():
        raise ValueError("empty source name; expected 'shapes', 'folder:PATH' or a TFDS name")
    kwargs["shard"] = shard
    if name == "shapes":
        return shapes_dataset(split, **kwargs), SHAPE_CLASSES
    if name.startswith(FOLDER_PREFIX) or os.path.isdir(name) or name.startswith(("/", ".", "~")):
        root = os.path.expanduser(name.removeprefix(FOLDER_PREFIX))
        if not os.path.isdir(root):
            raise FileNotFoundError(f"source {name!r}: folder {root!r} does not exist")
        if split and os.path.isdir(os.path.join(root, split)):
            root = os.path.join(root, split)
        dataset, info = image_folder_dataset(root, **kwargs)
        return dataset, info.class_names
    return tfds_source(name, split, **kwargs)
