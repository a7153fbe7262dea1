"""The `tf.data` encoding graph: source images -> canvas -> sparse DCT sequences.

    {"image": uint8 [H, W, 3], "label": int32, "name": string}
      -> canvas (per image: sizes differ; skipped    uint8 [R, R, 3], content (h, w)
         when the source is already R x R)
      -> batched, encoded by the fast encoder        int32 [b, max_length, 3], lengths [b]
         (`dct.encoders.choose_encoder`: the
         fused kernel where it builds), overflow
         checked
      -> unbatched examples

Each example is {"triples": int32 [max_length, 3] (zero-padded after EOS), "length": int32
(EOS included), "content_hw": int32 [2], "label": int32}. With a resolution every shape is
static, which the chunking stage and XLA need. Without one, canvases differ in size and each
image goes through the float64 twin of the reference encoder on its own.

The image's `name` (`data.sources`) travels through the graph only to name an over-long
sequence (docs/design.md §1.8): in the error, or in the warning and the `OverlongLog` of a
skip. It is not in the output: strings cannot go to a TPU. `encode_lengths` is the same
graph for lengths only, over-long ones included (`evaluation.lengths`).
"""

import logging
import sys
import threading

import numpy as np
import tensorflow as tf

from dctformer_tf.dct import SparseCodec
from dctformer_tf.dct.encoders import Encoder, choose_encoder

ON_OVERFLOW = ("error", "skip")
OUTPUT_KEYS = ("triples", "length", "content_hw", "label")

log = logging.getLogger(__name__)


class OverlongLog:
    """The images `encode_dataset(on_overflow="skip")` dropped for being over `max_length`.

    A host-side record, filled from inside the `tf.data` graph by a `tf.numpy_function`
    callback in the (rare) skip branch. So the input pipeline must run in the process that
    holds this object: true on TPU VMs and GPU/CPU hosts, where `tf.data` runs in the
    training process; not for pipelines run by the tf.data service or a remote TPU host.
    Thread-safe (parallel maps call it from several threads).

    Each image is logged once, as a warning naming it and its length, however often the
    pipeline meets it again (an uncached dataset repeated over epochs re-encodes it).

    Where the pipeline does not run in this process (the hosts of a multi-host TPU pod, whose
    pipelines one client builds), construct it with `host=False`: each host then prints the
    skipped image's name and length with `tf.print`, in the graph, and nothing is counted.

    Args:
      warn: log each dropped image (False: count only, e.g. a pass that only measures).
      host: record through the Python callback (True) or print in the graph (False).

    Attributes:
      lengths: dict name -> sequence length (EOS included), in the order first met.
      skips: how many times an over-long image was dropped, repeats included.
    """

    def __init__(self, warn: bool = True, host: bool = True):
        self.lengths: dict[str, int] = {}
        self.skips = 0
        self.warn = warn
        self.host = host
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """How many distinct images were dropped."""
        return len(self.lengths)

    @property
    def names(self) -> tuple[str, ...]:
        """The dropped images' names, in the order first met."""
        return tuple(self.lengths)

    def record(self, name: str, length: int, max_length: int) -> None:
        """Counts one drop of `name`; logs it the first time."""
        with self._lock:
            self.skips += 1
            if name in self.lengths:
                return
            self.lengths[name] = length
        if not self.warn:
            return
        log.warning("Skipping image %s: its sparse sequence has %d elements (EOS included), "
                    "more than max_length=%d", name, length, max_length)


def encode_dataset(
    source: tf.data.Dataset,
    codec: SparseCodec,
    max_length: int,
    encode_batch_size: int | None = None,
    on_overflow: str = "error",
    jit_compile: bool = True,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    deterministic: bool = True,
    overlong: OverlongLog | None = None,
    encoder: str = "auto",
) -> tf.data.Dataset:
    """Encode a dataset of images into padded sparse sequences.

    Args:
      source: dataset of {"image": uint8 [H, W, 3], "label": int32, "name": string}; an
        example without a "name" is named by its index in `source` ("example 17"), without
        a "label" it gets label 0.
      codec: the `SparseCodec`; with `resolution=None` images are encoded one at a time
        (their canvases differ in size), otherwise in batches by the fast encoder.
      max_length: static sequence length (EOS included).
      encode_batch_size: images per encode call (throughput only; the output is unbatched
        again, and a short final batch is kept). None: the encoder's own
        (`Encoder.batch_size`, at most 64 images).
      on_overflow: "error" raises InvalidArgumentError naming the image(s) and length(s);
        "skip" drops the sequence, logs a warning naming the image and its length (once per
        image) and records it in `overlong`.
      jit_compile: compile the TensorFlow-ops encoder's static stages with XLA; the
        sequences are identical either way.
      num_parallel_calls: parallel canvas and encode calls.
      deterministic: keep source order under parallel maps.
      overlong: where "skip" records the dropped images (see `OverlongLog` for where the
        pipeline must run); None: a private one, so the warnings are still logged.
      encoder: the fast encoder's form (`dct.encoders.choose_encoder`): "fused" (the C++
        kernel, built on first use), "ops" (TensorFlow ops), "auto" (the kernel where it
        builds).
    Returns:
      dataset of {"triples", "length", "content_hw", "label"} (see module docstring).
    """
    if on_overflow not in ON_OVERFLOW:
        raise ValueError(f"on_overflow must be one of {ON_OVERFLOW}, got {on_overflow!r}")
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    if on_overflow == "skip":
        overlong = OverlongLog() if overlong is None else overlong
    ds = _encode(source, codec, max_length, encode_batch_size, on_overflow == "error",
                 jit_compile, num_parallel_calls, deterministic, encoder)
    if codec.resolution is None:  # one example per element
        if on_overflow == "skip":
            ds = ds.filter(lambda ex: _keep_or_report(ex, max_length, overlong))
        return ds.map(lambda ex: {key: ex[key] for key in OUTPUT_KEYS})
    # Batches: the length policy and the output keys are applied per batch, so that the only
    # per-example step left is the unbatch (per-example maps cost more than a 64x64 encode).
    if on_overflow == "skip":
        ds = ds.map(lambda batch: _keep_fitting(batch, max_length, overlong))
    return ds.map(lambda batch: {key: batch[key] for key in OUTPUT_KEYS}).unbatch()


def encode_lengths(
    source: tf.data.Dataset,
    codec: SparseCodec,
    encode_batch_size: int | None = None,
    jit_compile: bool = True,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    deterministic: bool = True,
    encoder: str = "auto",
) -> tf.data.Dataset:
    """The sequence lengths `encode_dataset` finds, without a length limit.

    The same graph (canvas, fast encoder or reference encoder, same batching); the encoders
    count every non-zero coefficient whatever their output buffer holds, so a buffer of one
    triple gives the true lengths of every image, over-long ones included, without padding
    each to the longest.

    Args:
      source, codec, encode_batch_size, jit_compile, num_parallel_calls, deterministic,
        encoder: as `encode_dataset`.
    Returns:
      dataset of {"name": string [], "length": int32 [] (EOS included)}.
    """
    ds = _encode(source, codec, 1, encode_batch_size, False, jit_compile, num_parallel_calls,
                 deterministic, encoder)
    ds = ds.map(lambda ex: {"name": ex["name"], "length": ex["length"]})
    return ds if codec.resolution is None else ds.unbatch()


def _encode(source: tf.data.Dataset, codec: SparseCodec, max_length: int,
            encode_batch_size: int | None, check: bool, jit_compile: bool,
            num_parallel_calls: int, deterministic: bool, encoder: str) -> tf.data.Dataset:
    """The encoding graph: {"triples", "length", "content_hw", "label", "name"}, per image
    without a resolution, per encode batch (a leading axis) with one. `check` raises on a
    sequence over `max_length`, otherwise its length says so."""
    parallel = {"num_parallel_calls": num_parallel_calls, "deterministic": deterministic}
    chosen = choose_encoder(encoder, static_size=codec.resolution is not None,
                            jit_compile=jit_compile)
    if codec.resolution is None:
        return _with_names(source).map(
            lambda ex: _encode_one(ex, codec, max_length, check, chosen), **parallel)
    if encode_batch_size is None:
        encode_batch_size = chosen.batch_size(codec.resolution)
    ds = _canvas_batches(source, codec, encode_batch_size, parallel)
    return ds.map(lambda batch: _encode_batch(batch, codec, max_length, check, chosen),
                  **parallel)


def _with_names(source: tf.data.Dataset) -> tf.data.Dataset:
    """`source` with a "name" in every example: its own, else "example <index>"."""
    if "name" in source.element_spec:
        return source

    def named(index, example):
        return {**example, "name": tf.strings.join(["example ", tf.strings.as_string(index)])}

    return source.enumerate().map(named)


def _canvas_batches(source: tf.data.Dataset, codec: SparseCodec, batch_size: int,
                    parallel: dict) -> tf.data.Dataset:
    """{"pixels": uint8 [b, R, R, 3], "content_hw": int32 [b, 2], "label": int32 [b],
    "name": string [b]}."""
    r = codec.resolution
    specs = tf.nest.flatten(source.element_spec)
    if (tuple(source.element_spec["image"].shape) == (r, r, 3)
            and all(spec.shape.is_fully_defined() for spec in specs)):
        # Already canvas-sized: placing on the canvas is the identity, so the images are
        # batched as they come, without a per-image step (names too are made per batch).
        def as_canvases(first, batch):
            size = tf.shape(batch["image"])[0]
            label = batch.get("label", tf.zeros([size], tf.int32))
            name = batch.get("name")
            if name is None:
                index = first * batch_size + tf.range(size, dtype=tf.int64)
                name = tf.strings.join(["example ", tf.strings.as_string(index)])
            return {"pixels": batch["image"], "content_hw": tf.fill([size, 2], r),
                    "label": tf.cast(label, tf.int32), "name": name}

        return source.batch(batch_size).enumerate().map(as_canvases)

    source = _with_names(source)

    def place(example):
        pixels, content = codec.tf_canvas(example["image"])
        return {"pixels": pixels, "content_hw": content, "label": _label(example),
                "name": example["name"]}

    return source.map(place, **parallel).batch(batch_size)


def _encode_batch(batch: dict, codec: SparseCodec, max_length: int, check: bool,
                  encoder: Encoder) -> dict:
    """{"pixels": uint8 [b, R, R, 3], ...} -> {"triples": int32 [b, max_length, 3], ...}."""
    triples, length = encoder.encode(batch["pixels"], codec, max_length)
    if check:
        length = _check_lengths(length, batch["name"], max_length)
    return {"triples": triples, "length": length, "content_hw": batch["content_hw"],
            "label": batch["label"], "name": batch["name"]}


def _encode_one(example: dict, codec: SparseCodec, max_length: int, check: bool,
                encoder: Encoder) -> dict:
    """One image of any size on its own canvas (no resolution), by `encoder`."""
    pixels, content = codec.tf_canvas(example["image"])
    triples, length = encoder.encode(pixels, codec, max_length)
    if check:
        length = _check_lengths(length, example["name"], max_length)
    return {"triples": triples, "length": length, "content_hw": content,
            "label": _label(example), "name": example["name"]}


def _label(example) -> tf.Tensor:
    if "label" in example:
        return tf.cast(example["label"], tf.int32)
    return tf.constant(0, tf.int32)


def _check_lengths(length: tf.Tensor, name: tf.Tensor, max_length: int) -> tf.Tensor:
    """`length` (int32 [b] or []) once every one is within `max_length`; otherwise raises
    InvalidArgumentError naming the over-long images (`name`, string, same shape) and their
    lengths."""
    over = tf.reshape(length > max_length, [-1])
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(over)),
        [f"sparse sequence longer than max_length={max_length} (EOS included); raise "
         "max_length, lower the quality or skip such images (on_overflow: skip). Images:",
         tf.boolean_mask(tf.reshape(name, [-1]), over), "lengths:",
         tf.boolean_mask(tf.reshape(length, [-1]), over)],
        summarize=8)
    with tf.control_dependencies([check]):  # in graphs the assert must gate the output
        return tf.identity(length)


def _keep_fitting(batch: dict, max_length: int, overlong: OverlongLog) -> dict:
    """An encoded batch without its over-long sequences, each recorded in `overlong`."""
    keep = batch["length"] <= max_length  # [b]

    def drop():
        kept = tf.map_fn(lambda ex: _keep_or_report(ex, max_length, overlong),
                         {"name": batch["name"], "length": batch["length"]},
                         fn_output_signature=tf.bool)
        return {key: tf.boolean_mask(value, kept) for key, value in batch.items()}

    # The rare branch only: masking copies the batch.
    return tf.cond(tf.reduce_all(keep), lambda: batch, drop)


def _keep_or_report(example: dict, max_length: int, overlong: OverlongLog) -> tf.Tensor:
    """bool []: whether the example fits; an over-long one is recorded in `overlong`."""
    keep = example["length"] <= max_length

    def report(name: np.ndarray, length: np.ndarray) -> np.bool_:
        # numpy_function hands a string over as bytes, or as a 0-d object array when eager.
        name = np.asarray(name).item()
        name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        overlong.record(name, int(length), max_length)
        return np.bool_(False)

    def drop():
        if not overlong.host:
            tf.print("Skipping image", example["name"], ": its sparse sequence has",
                     example["length"], "elements (EOS included), more than max_length =",
                     max_length, output_stream=sys.stderr)
            return tf.constant(False)
        dropped = tf.numpy_function(report, [example["name"], example["length"]], tf.bool,
                                    stateful=True)
        return tf.ensure_shape(dropped, [])

    return tf.cond(keep, lambda: keep, drop)
