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
    encode_batch_size: int = 32,
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
        again, and a short final batch is kept). Batches amortize the per-call cost of the
        graph; 32 was fastest at 64x64 and as fast as 8 at 256x256 (tools/bench_codec.py).
      on_overflow: "error" raises InvalidArgumentError naming the length; "skip" drops the
        sequence and prints its length to stderr.
      jit_compile: compile the fast encoder's static stages with XLA (several times faster
        on CPU); the sequences are identical either way.
      num_parallel_calls: parallel encode calls; each runs its ops on one thread, so that
        parallel calls, not threads inside an op, use the cores.
      deterministic: keep source order under parallel maps.
    Returns:
      dataset of {"triples", "length", "content_hw", "label"} (see module docstring).
    """
    if on_overflow not in ON_OVERFLOW:
        raise ValueError(f"on_overflow must be one of {ON_OVERFLOW}, got {on_overflow!r}")
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    parallel = {"num_parallel_calls": num_parallel_calls, "deterministic": deterministic}
    if codec.resolution is None:
        ds = source.map(lambda ex: _encode_one(ex, codec, max_length, on_overflow), **parallel)
    else:
        ds = _canvases(source, codec, parallel).batch(encode_batch_size)
        ds = ds.map(lambda batch: _encode_batch(batch, codec, max_length, jit_compile,
                                                on_overflow), **parallel).unbatch()
        options = tf.data.Options()
        options.threading.max_intra_op_parallelism = 1
        ds = ds.with_options(options)
    if on_overflow == "skip":
        return ds.filter(lambda ex: _keep_or_report(ex["length"], max_length))
    return ds


def _canvases(source: tf.data.Dataset, codec: SparseCodec, parallel: dict) -> tf.data.Dataset:
    """{"pixels": uint8 [R, R, 3], "content_hw", "label"} per image."""
    r = codec.resolution
    if tuple(source.element_spec["image"].shape) == (r, r, 3):
        # Already canvas-sized: placing it on the canvas is the identity.
        content = tf.constant([r, r], tf.int32)
        return source.map(lambda ex: {"pixels": ex["image"], "content_hw": content,
                                      "label": _label(ex)})

    def place(example):
        pixels, content = codec.tf_canvas(example["image"])
        return {"pixels": pixels, "content_hw": content, "label": _label(example)}

    return source.map(place, **parallel)


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
