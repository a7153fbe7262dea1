"""The `tf.data` encoding graph: source images -> canvas -> sparse DCT sequences.

    {"image": uint8 [H, W, 3], "label": int32}
      -> canvas (per image: sizes differ; skipped    uint8 [R, R, 3], content (h, w)
         when the source is already R x R)
      -> batched, encoded by the fast encoder        int32 [b, max_length, 3], lengths [b]
         (`dct/tf_fast.py`), overflow checked
      -> unbatched examples

Each example is {"triples": int32 [max_length, 3] (zero-padded after EOS), "length": int32
(EOS included), "content_hw": int32 [2], "label": int32}. With a resolution every shape is
static, which the chunking stage and XLA need. Without one, canvases differ in size and each
image goes through the float64 reference encoder (`dct/tf_ops.py`) on its own.
"""

import sys

import tensorflow as tf

from dctformer_tf.dct import SparseCodec, tf_fast, tf_ops

ON_OVERFLOW = ("error", "skip")


def encode_dataset(
    source: tf.data.Dataset,
    codec: SparseCodec,
    max_length: int,
    encode_batch_size: int | None = None,
    on_overflow: str = "error",
    jit_compile: bool = True,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    deterministic: bool = True,
) -> tf.data.Dataset:
    """Encode a dataset of images into padded sparse sequences.

    Args:
      source: dataset of {"image": uint8 [H, W, 3], "label": int32}.
      codec: the `SparseCodec`; with `resolution=None` images are encoded one at a time
        (their canvases differ in size), otherwise in batches by the fast encoder.
      max_length: static sequence length (EOS included).
      encode_batch_size: images per encode call (throughput only; the output is unbatched
        again, and a short final batch is kept). None: about 2^19 canvas pixels per call (64
        images at 64x64, 8 at 256x256), the fastest in tools/bench_codec.py: batches amortize
        the graph's per-call cost, small ones keep the working set in cache and the parallel
        calls busy.
      on_overflow: "error" raises InvalidArgumentError naming the length; "skip" drops the
        sequence and prints its length to stderr.
      jit_compile: compile the fast encoder's static stages with XLA (several times faster
        on CPU); the sequences are identical either way.
      num_parallel_calls: parallel canvas and encode calls.
      deterministic: keep source order under parallel maps.
    Returns:
      dataset of {"triples", "length", "content_hw", "label"} (see module docstring).
    """
    if on_overflow not in ON_OVERFLOW:
        raise ValueError(f"on_overflow must be one of {ON_OVERFLOW}, got {on_overflow!r}")
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    parallel = {"num_parallel_calls": num_parallel_calls, "deterministic": deterministic}
    if encode_batch_size is None and codec.resolution is not None:
        encode_batch_size = int(min(64, max(1, 2**19 // codec.resolution**2)))
    if codec.resolution is None:
        ds = source.map(lambda ex: _encode_one(ex, codec, max_length, on_overflow), **parallel)
    else:
        ds = _canvas_batches(source, codec, encode_batch_size, parallel)
        ds = ds.map(lambda batch: _encode_batch(batch, codec, max_length, jit_compile,
                                                on_overflow), **parallel).unbatch()
    if on_overflow == "skip":
        return ds.filter(lambda ex: _keep_or_report(ex["length"], max_length))
    return ds


def _canvas_batches(source: tf.data.Dataset, codec: SparseCodec, batch_size: int,
                    parallel: dict) -> tf.data.Dataset:
    """{"pixels": uint8 [b, R, R, 3], "content_hw": int32 [b, 2], "label": int32 [b]}."""
    r = codec.resolution
    specs = tf.nest.flatten(source.element_spec)
    if (tuple(source.element_spec["image"].shape) == (r, r, 3)
            and all(spec.shape.is_fully_defined() for spec in specs)):
        # Already canvas-sized: placing on the canvas is the identity, so the images are
        # batched as they come, without a per-image step.
        def as_canvases(batch):
            size = tf.shape(batch["image"])[0]
            label = batch.get("label", tf.zeros([size], tf.int32))
            return {"pixels": batch["image"], "content_hw": tf.fill([size, 2], r),
                    "label": tf.cast(label, tf.int32)}

        return source.batch(batch_size).map(as_canvases)

    def place(example):
        pixels, content = codec.tf_canvas(example["image"])
        return {"pixels": pixels, "content_hw": content, "label": _label(example)}

    return source.map(place, **parallel).batch(batch_size)


def _encode_batch(batch: dict, codec: SparseCodec, max_length: int, jit_compile: bool,
                  on_overflow: str) -> dict:
    """{"pixels": uint8 [b, R, R, 3], ...} -> {"triples": int32 [b, max_length, 3], ...}."""
    triples, length = tf_fast.encode_canvas(batch["pixels"], codec, max_length, jit_compile)
    if on_overflow == "error":
        length = codec.tf_check_length(length, max_length)
    return {"triples": triples, "length": length, "content_hw": batch["content_hw"],
            "label": batch["label"]}


def _encode_one(example: dict, codec: SparseCodec, max_length: int, on_overflow: str) -> dict:
    """One image of any size through the float64 reference encoder (no resolution)."""
    pixels, content = codec.tf_canvas(example["image"])
    dense = tf_ops.image_to_dense(pixels, codec)
    triples, length = tf_ops.dense_to_sparse(dense, codec, max_length, xla_compatible=False)
    if on_overflow == "error":
        length = codec.tf_check_length(length, max_length)
    return {"triples": triples, "length": length, "content_hw": content,
            "label": _label(example)}


def _label(example) -> tf.Tensor:
    if "label" in example:
        return tf.cast(example["label"], tf.int32)
    return tf.constant(0, tf.int32)


def _keep_or_report(length, max_length: int) -> tf.Tensor:
    keep = length <= max_length

    def report():
        tf.print("skipping a sparse sequence of length", length, "> max_length =", max_length,
                 output_stream=sys.stderr)
        return keep

    return tf.cond(keep, lambda: keep, report)
