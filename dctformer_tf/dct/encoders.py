"""Which encoder turns canvases into sparse sequences, chosen in one place (docs/design.md §1.10).

`choose_encoder` is the only place that picks an encoder; the tf.data pipeline, the codec's
TensorFlow path (and through it the SavedModel) and the numpy input path all ask it. The
encoders it returns compute identical sequences, those of the float64 reference `np_ops`
(tests/dct/test_fast.py).

TensorFlow is imported only when a TensorFlow encoder is asked for: the numpy input path
imports this module on hosts that have no TensorFlow.
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from dctformer_tf.dct import np_fast

# The names `encode_dataset(encoder=...)`, `SequenceSource.encoder` and
# `SparseCodec.tf_encode_canvas(encoder=...)` accept.
ENCODERS = ("auto", "fused", "ops")
# At most this many images per encode call, whatever their size.
MAX_BATCH = 64

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoder:
    """A chosen encoder.

    Attributes:
      name: "fused", "ops", "reference" or "numpy" (see `choose_encoder`).
      encode: (pixels, codec, max_length) -> (int32 [B, max_length, 3] triples zero-padded
        after EOS, int32 [B] lengths L with EOS); pixels uint8 [B, H, W, 3] canvases, a
        tensor for the TensorFlow encoders, an array for "numpy" ("reference" also takes
        one [H, W, 3] canvas, and then drops B). L > max_length flags an over-long
        sequence, whose triples are cut; the caller applies the policy.
      call_pixels: canvas pixels per call at which it encodes fastest per image; 0: one
        canvas per call.
    """

    name: str
    encode: Callable
    call_pixels: int

    def batch_size(self, resolution: int) -> int:
        """Images of resolution x resolution per encode call (1 to `MAX_BATCH`)."""
        return int(min(MAX_BATCH, max(1, self.call_pixels // resolution**2)))


def choose_encoder(encoder: str = "auto", static_size: bool = True, tensorflow: bool = True,
                   jit_compile: bool = True) -> Encoder:
    """The encoder for `encoder` and canvases of one kind.

    The production paths, and when each runs:
      - "fused": the C++ kernel (`fused_op`, built on first use), a CPU host op. Under "auto"
        wherever it builds: the tf.data pipeline (`data.pipeline.encode_dataset`). Asked for
        by name, a kernel that cannot be built is an error.
      - "ops": the same arithmetic as TensorFlow ops (`tf_fast`). Under "auto" where the
        kernel cannot be built (after one warning naming why), and by name where no kernel
        library may be needed: the SavedModel's serving graph, an input pipeline that a
        remote host runs (TPU Node).
      - "reference": the float64 TensorFlow twin of `np_ops` (`tf_ops`), one canvas per call
        or a batch of one size. For canvases without a static size (a codec without a
        resolution), whatever `encoder` says: the fast encoders' plans are per canvas size.
      - "numpy": the numpy fast encoder (`np_fast`), with `tensorflow=False`: the
        TensorFlow-free input path of JAX-backend hosts (`data.numpy_input`).

    Args:
      encoder: "auto", "fused" or "ops" (with `tensorflow=False` only "auto").
      static_size: whether the canvases' size is static (a codec with a resolution).
      tensorflow: encode tensors (in graphs too) or, False, numpy arrays.
      jit_compile: compile the "ops" encoder's static stages with XLA (same sequences).
    Returns:
      the `Encoder`.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    if not tensorflow:
        if encoder != "auto":
            raise ValueError(f"the numpy input path has one encoder, got encoder={encoder!r}")
        return Encoder("numpy", np_fast.encode_canvas, 2**17)
    if not static_size:
        return Encoder("reference", _reference_encode, 0)
    from dctformer_tf.dct import fused_op, tf_fast

    if encoder == "auto":
        encoder = "fused" if fused_op.available() else "ops"
        if encoder == "ops":
            _warn_once(fused_op.unavailable_reason())
    if encoder == "fused":
        # The kernel splits a call's images across threads: larger calls keep them busy.
        return Encoder("fused", fused_op.encode_canvas, 2**21)
    # Small calls keep the ops' planes in cache and the parallel calls of tf.data busy; larger
    # ones amortize the graph's per-call cost.
    return Encoder("ops", functools.partial(tf_fast.encode_canvas, jit_compile=jit_compile),
                   2**19)


def _reference_encode(pixels, codec, max_length: int) -> tuple:
    from dctformer_tf.dct import tf_ops

    return tf_ops.dense_to_sparse(tf_ops.image_to_dense(pixels, codec), codec, max_length)


@functools.lru_cache(maxsize=1)
def _warn_once(reason: str) -> None:
    log.warning("the fused encoder kernel is unavailable, so the TensorFlow-ops encoder runs "
                "instead (same sequences, slower): %s", reason)
