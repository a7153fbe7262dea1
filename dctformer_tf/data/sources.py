"""Image sources as `tf.data` datasets of `{"image": uint8 [H, W, 3], "label": int32 [],
"name": string []}` (docs/design.md §2).

- `shapes_dataset`: the embedded `shapes` data (`data/shapes.py`), static shape [64, 64, 3].
- `image_folder_dataset`: a folder of image files, label from the first-level sub-folder.
- `tfds_dataset`: any prepared TFDS image dataset; never downloads unless asked to.
- `get_source`: one name for all three, as configs spell it.
- `Shard`: the part of a source one input pipeline reads (multi-worker training, §4).

Labels are int32 class ids; a source without labels gives 0 everywhere and no class names.
`name` says which image an example is, so that a log line can point at it (an over-long
sequence, `data.pipeline`): the file path, the TFDS record id, or "shapes/<split>/<seed>".
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import re
import threading

import numpy as np
import tensorflow as tf

from dctformer_tf.data.image_io import NEUTRAL_GREY, ImageLoadError, load_image
from dctformer_tf.data.shapes import SHAPE_CLASSES, render_shapes, split_seed_range

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
FOLDER_PREFIX = "folder:"


# ---------------------------------------------------------------------------------------------
# shards


@dataclasses.dataclass(frozen=True)
class Shard:
    """Part `index` of `count` of a source: what one input pipeline reads.

    Under a multi-worker strategy each worker (TPU host) builds its own input pipeline; each
    reading and encoding only its shard, the pipelines together read every example once per
    epoch instead of each encoding the whole source to keep 1/count of it (docs/design.md §4).
    Sources cut their first `num_examples` first, then shard what is left: a folder takes
    every `count`-th file from `index`, `shapes` and TFDS a contiguous range (`bounds`, the
    arithmetic of `tfds.even_splits`). Shard sizes differ by at most one.
    """

    index: int
    count: int

    def __post_init__(self):
        for field in ("index", "count"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"Shard.{field} must be an int, got {value!r}")
        if self.count < 1:
            raise ValueError(f"Shard.count must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"Shard.index must be in [0, {self.count}) for Shard.count = "
                             f"{self.count}, got {self.index}")

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count}"

    def bounds(self, num: int) -> tuple[int, int]:
        """`[start, stop)` of this shard's contiguous part of `num` items; the first
        `num % count` shards hold one item more."""
        base, extra = divmod(num, self.count)
        start = self.index * base + min(self.index, extra)
        return start, start + base + int(self.index < extra)

    def check_fits(self, num: int, source: str, what: str = "examples") -> None:
        """Raises ValueError when `num` items leave some shard empty.

        Every shard raises, not only the empty ones: a worker that went on alone would wait
        for the others in its first collective forever.
        """
        if num < self.count:
            raise ValueError(
                f"{source} has {num} {what}, fewer than its {self.count} shards (one per "
                f"input pipeline, i.e. per worker), so at least one shard would be empty "
                f"(this is {self}); use at most {num} workers or more data"
            )


# ---------------------------------------------------------------------------------------------
# shapes


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


# ---------------------------------------------------------------------------------------------
# image folder


@dataclasses.dataclass(frozen=True)
class FolderInfo:
    """What `scan_image_folder` found.

    `files[i]` has label `labels[i]`, an index into `class_names`. With no class sub-folders,
    `class_names` is empty and every label is 0. `skipped` lists `(path, reason)` for each
    image file left out; `ignored` lists files without an image extension (no warning: a
    README or a CSV next to the images is normal).
    """

    root: str
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    labels: tuple[int, ...]
    skipped: tuple[tuple[str, str], ...]
    ignored: tuple[str, ...]

    @property
    def num_examples(self) -> int:
        return len(self.files)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)


# What `scan_image_folder` found per root in this process, with the fingerprint it was found for.
_SCANS: dict[str, tuple[tuple, FolderInfo]] = {}
_SCANS_LOCK = threading.Lock()


def scan_image_folder(root: str | os.PathLike, num_threads: int | None = None) -> FolderInfo:
    """Lists and validates the image files under `root`, recursively.

    Image files are those with an extension in `IMAGE_EXTENSIONS` (any case); hidden files and
    folders (name starting with ".") are left out, and symbolic links to folders are not
    followed. Each first-level sub-folder holding at least one image file is a class (sorted
    names → ids 0, 1, ...); its images at any depth carry its label. With no such sub-folder,
    the images directly in `root` form one unlabelled set (label 0); with them, images directly
    in `root` belong to no class and are skipped.

    Every image file is decoded once here with `load_image`, the same code that reads it for
    training, so unreadable files (not an image, truncated or corrupt, over the pixel limit,
    unsupported mode) are found, logged one warning each and skipped before the first step,
    followed by one summary warning with their count (docs/design.md §2). The price is one
    extra decode per file at start-up, spread over `num_threads` threads (Pillow decodes
    outside the GIL): about a second per 1,000 256×256 JPEGs per core (0.9 ms each, measured
    on a 2-core CI machine). For datasets of millions of files, prepare them as TFDS datasets
    instead.

    A process scans a folder once: a trainer asks for its training and held-out splits, often
    the same folder, and a second scan would decode every file again and repeat every
    warning. Later calls with the same `root` get the first result (no warnings) while no
    image file was added, removed, resized or touched (same sizes and modification times).

    Args:
      root: the folder.
      num_threads: decoding threads; None = as many as CPU cores.

    Raises:
      FileNotFoundError: `root` is not a folder.
      ValueError: no readable image file under `root`.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} does not exist or is not a folder")
    images, ignored = _list_files(root)
    fingerprint = (tuple(ignored), tuple((rel, _file_stamp(root, rel)) for rel in images))
    with _SCANS_LOCK:
        cached = _SCANS.get(root)
        if cached is not None and cached[0] == fingerprint:
            logger.debug("Image folder %s unchanged since its scan: reusing it", root)
            return cached[1]
        info = _scan(root, images, ignored, num_threads)
        _SCANS[root] = (fingerprint, info)
        return info


def _file_stamp(root: str, rel: str) -> tuple[int, int] | None:
    """(size, modification time in ns) of a file, or None if it cannot be stat'ed."""
    try:
        stat = os.stat(os.path.join(root, rel))
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _scan(root: str, images: list[str], ignored: list[str], num_threads: int | None) -> FolderInfo:
    """`scan_image_folder` past the listing: labels, one decode per file, warnings."""
    class_names = tuple(sorted({rel.split(os.sep)[0] for rel in images if os.sep in rel}))
    class_ids = {name: i for i, name in enumerate(class_names)}

    candidates, labels, skipped = [], [], []
    for rel in images:
        path = os.path.join(root, rel)
        if not class_names:
            candidates.append(path)
            labels.append(0)
        elif os.sep in rel:
            candidates.append(path)
            labels.append(class_ids[rel.split(os.sep)[0]])
        else:
            skipped.append((path, "directly in the root folder, outside every class sub-folder"))

    with concurrent.futures.ThreadPoolExecutor(num_threads or os.cpu_count()) as pool:
        problems = list(pool.map(_load_problem, candidates))
    files, kept_labels = [], []
    for path, label, problem in zip(candidates, labels, problems, strict=True):
        if problem is None:
            files.append(path)
            kept_labels.append(label)
        else:
            skipped.append((path, problem))
    skipped.sort()

    for path, reason in skipped:
        logger.warning("Skipping image file %s: %s", path, reason)
    if skipped:
        logger.warning("Skipped %d of %d image files under %s", len(skipped), len(images), root)
    if not files:
        raise ValueError(
            f"image folder {root!r} holds no readable image file (extensions "
            f"{', '.join(IMAGE_EXTENSIONS)}; {len(skipped)} skipped, {len(ignored)} ignored)"
        )
    return FolderInfo(
        root=root,
        class_names=class_names,
        files=tuple(files),
        labels=tuple(kept_labels),
        skipped=tuple(skipped),
        ignored=tuple(ignored),
    )


def image_folder_dataset(
    root: str | os.PathLike,
    shuffle_files: bool = False,
    seed: int = 0,
    num_examples: int | None = None,
    shard: Shard | None = None,
) -> tuple[tf.data.Dataset, FolderInfo]:
    """A folder of image files as a dataset (layout and validation: `scan_image_folder`).

    Args:
      root: the folder.
      shuffle_files: reshuffle the file order every epoch (the whole list: it is only names).
      seed: seed of that shuffle.
      num_examples: only the first N files (sorted paths); None = all.
      shard: only this shard's files of those, `files[index::count]`: names are free to
        deal out, and striding mixes the class sub-folders into every shard.

    Returns:
      The dataset of `{"image": uint8 [H, W, 3], "label": int32 [], "name": string []}` (the
      file's path), whose images keep their own sizes (static shape [None, None, 3]); and
      the `FolderInfo`.
    """
    info = scan_image_folder(root)
    paths, labels = _folder_shard(info, num_examples, shard)
    files = tf.data.Dataset.from_tensor_slices((paths, np.asarray(labels, dtype=np.int32)))
    if shuffle_files:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = files.map(
        lambda path, label: {"image": load_image_tf(path), "label": label, "name": path},
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset, info


def _folder_shard(
    info: FolderInfo, num_examples: int | None, shard: Shard | None
) -> tuple[list[str], list[int]]:
    """The paths and labels a folder dataset reads: the first `num_examples`, then `shard`'s."""
    paths, labels = list(info.files[:num_examples]), list(info.labels[:num_examples])
    if shard is None:
        return paths, labels
    shard.check_fits(len(paths), f"image folder {info.root!r} (num_examples={num_examples})",
                     "image files")
    return paths[shard.index :: shard.count], labels[shard.index :: shard.count]


def load_image_tf(path: tf.Tensor) -> tf.Tensor:
    """`image_io.load_image` as a TF op: path string [] → uint8 [H, W, 3] (shape [None, None, 3]).

    A file that fails to load raises (inside `tf.data`, as an error naming the file); folder
    sources only pass files `scan_image_folder` has already loaded once.
    """

    def load(path_value: bytes | np.ndarray) -> np.ndarray:
        # numpy_function hands a string over as bytes, or as a 0-d object array when eager.
        return load_image(np.asarray(path_value).item())

    image = tf.numpy_function(load, [path], tf.uint8, stateful=False)
    image.set_shape([None, None, 3])
    return image


def _list_files(root: str) -> tuple[list[str], list[str]]:
    """Paths relative to `root`, sorted: (image files, other files); hidden entries left out."""
    images, others = [], []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(directory, name), root)
            is_image = os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            (images if is_image else others).append(rel)
    return images, others


def _load_problem(path: str) -> str | None:
    """Why `path` cannot be loaded, or None if it can."""
    try:
        load_image(path)
    except ImageLoadError as e:
        return str(e).removeprefix(f"{path}: ")
    return None


# ---------------------------------------------------------------------------------------------
# TFDS


def tfds_dataset(
    name: str,
    split: str,
    data_dir: str | None = None,
    download: bool = False,
    image_key: str = "image",
    label_key: str | None = "label",
    shuffle_files: bool = False,
    num_examples: int | None = None,
    shard: Shard | None = None,
) -> tf.data.Dataset:
    """A TFDS image dataset as `{"image": uint8 [H, W, 3], "label": int32 [], "name": string []}`,
    the name being the record's TFDS id ("<dataset>-<split>.tfrecord-<shard>__<index>").

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

    Raises:
      ValueError: unknown dataset name, no such image feature, a label that is not a scalar,
        or a shard that would be empty.
      FileNotFoundError: not prepared in `data_dir` and `download` is False.
    """
    return _tfds_source(name, split, data_dir, download, image_key, label_key, shuffle_files,
                        num_examples, shard)[0]


def _tfds_source(
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
    """`tfds_dataset` and the class names (empty when the labels have none)."""
    # Imported here: tensorflow_datasets takes a second to import and only this source needs it.
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


# ---------------------------------------------------------------------------------------------
# by name


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
    - anything else → `tfds_dataset(name, split, **kwargs)`.

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
    return _tfds_source(name, split, **kwargs)
