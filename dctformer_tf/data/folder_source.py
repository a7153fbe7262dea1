"""A folder of image files as a source (docs/design.md §2): `scan_image_folder` lists and
validates the files once per process, `image_folder_dataset` reads them as
`{"image": uint8 [H, W, 3], "label": int32 [], "name": string []}`, the label from the
first-level sub-folder and the name the file's path.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import threading

import numpy as np
import tensorflow as tf

from dctformer_tf.data.image_io import ImageLoadError, load_image
from dctformer_tf.data.shard import Shard

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# How a source name asks for a folder (`sources.get_source`), whatever the path looks like.
FOLDER_PREFIX = "folder:"


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
    outside the GIL); it grows with the number of files (docs/benchmarks.md, input
    pipeline), so datasets of millions of files are better prepared as TFDS datasets.

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
