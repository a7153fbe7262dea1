"""Encoding in numpy: the twin of `pipeline.encode_dataset` for the numpy input path
(docs/design.md §2.5), with its over-long policy.

The images go through the encoder `dct.encoders.choose_encoder` gives for numpy arrays (the
numpy fast encoder), whose sequences equal the tf.data graph's. Imports numpy and
TensorFlow-free modules only.

Letters: B images, L_max = max_length.
"""

import numpy as np

from dctformer_tf.data.shapes import shapes_arrays, split_seed_range
from dctformer_tf.dct import SequenceOverflowError, SparseCodec, np_ops
from dctformer_tf.dct.encoders import choose_encoder

ON_OVERFLOW = ("error", "skip")


def encode_images(images, codec: SparseCodec, max_length: int) -> dict:
    """Images of one size -> padded sparse sequences, as `encode_dataset` encodes them.

    Canvas-sized images go to the encoder as they are, others are placed on their canvas
    first (`np_ops.canvas`, the twin of the tf.data graph's `tf_ops.canvas`).

    Args:
      images: uint8 [B, H, W, 3].
      codec: a `SparseCodec` with a resolution.
      max_length: the sequence buffer (EOS included).
    Returns:
      {"triples": int32 [B, max_length, 3] (zero after EOS), "length": int32 [B],
       "content_hw": int32 [B, 2]}. A length over `max_length` marks an over-long sequence,
      whose triples are cut (`fitting` applies the policy).
    """
    check_codec(codec)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [B, H, W, 3], got {images.dtype} {images.shape}")
    r = codec.resolution
    if images.shape[1:3] == (r, r):
        content = np.full((len(images), 2), r, np.int32)
    else:
        placed = [np_ops.canvas(image, r, codec.block_size) for image in images]
        images = np.stack([pixels for pixels, _ in placed]).reshape(-1, r, r, 3)
        content = np.stack([hw for _, hw in placed]).reshape(-1, 2).astype(np.int32)
    triples, length = choose_encoder(tensorflow=False).encode(images, codec, max_length)
    return {"triples": triples, "length": length, "content_hw": content}


def fitting(length, names, max_length: int, on_overflow: str = "error") -> np.ndarray:
    """bool [B]: which sequences fit in `max_length`, under `encode_dataset`'s policy.

    Args:
      length: int [B]; names: B image names, for the error.
      on_overflow: "error" raises SequenceOverflowError naming every over-long image and its
        length; "skip" only reports them in the mask.
    """
    if on_overflow not in ON_OVERFLOW:
        raise ValueError(f"on_overflow must be one of {ON_OVERFLOW}, got {on_overflow!r}")
    keep = np.asarray(length) <= max_length
    if on_overflow == "error" and not keep.all():
        over = ", ".join(f"{names[i]} ({int(length[i])})" for i in np.flatnonzero(~keep))
        raise SequenceOverflowError(
            f"sparse sequence longer than max_length={max_length} (EOS included); raise "
            f"max_length, lower the quality or skip such images (on_overflow='skip'). "
            f"Images (lengths): {over}")
    return keep


def shapes_names(split: str, start: int, num: int) -> list[str]:
    """The names `sources.shapes_dataset` gives examples `start ... start + num − 1`."""
    first, end = split_seed_range(split, num, start)
    return [f"shapes/{split}/{seed}" for seed in range(first, end)]


def encode_shapes(codec: SparseCodec, max_length: int, split: str = "train",
                  num_examples: int = 1, start: int = 0, image_size: int = 64,
                  on_overflow: str = "error") -> dict:
    """`encode_dataset(get_source("shapes", split, num_examples=..., start=..., size=...),
    codec, max_length, on_overflow=...)` in numpy, stacked.

    Args:
      on_overflow: "error" raises SequenceOverflowError naming each over-long image;
        "skip" keeps its row, with "fits" False, for the caller to drop and report.
    Returns:
      {"triples": int32 [N, max_length, 3], "length": int32 [N], "content_hw": int32 [N, 2],
       "label": int32 [N], "fits": bool [N]}.
    """
    images, labels = shapes_arrays(split, num_examples, start, image_size)
    encoded = encode_images(images, codec, max_length)
    fits = fitting(encoded["length"], shapes_names(split, start, num_examples), max_length,
                   on_overflow)
    return {**encoded, "label": labels, "fits": fits}


def check_codec(codec) -> None:
    """Raises unless `codec` is a `SparseCodec` with a resolution (a static canvas)."""
    if not isinstance(codec, SparseCodec):
        raise TypeError(f"codec must be a SparseCodec, got {type(codec).__name__}")
    if codec.resolution is None:
        raise ValueError("the numpy input path needs a codec with a resolution (a static "
                         f"grid), got resolution=None in {codec}")
