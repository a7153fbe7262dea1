"""Building and choosing the fused encoder kernel (`fused_op.py`): a clear error where it
cannot be built, a warned fallback to the TensorFlow-ops encoder under "auto", the same
sequences from both in the tf.data pipeline. Its sequences against the reference are tested
in test_fast.py."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.pipeline import encode_dataset
from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec, fused_op, tf_fast
from tests.dct.test_fast import needs_compiler


def test_a_failing_compiler_is_named_with_its_message(monkeypatch, tmp_path):
    monkeypatch.setenv("DCTFORMER_OP_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")
    with pytest.raises(fused_op.FusedOpUnavailable, match=r"sparse_dct_op.cc with /bin/false "
                                                          r"failed \(exit 1\)"):
        fused_op.build()
    assert not list(tmp_path.glob("*.so")) and not list(tmp_path.glob("*/"))  # nothing half-built


def test_no_compiler_says_so(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    assert fused_op.compiler() is None
    with pytest.raises(fused_op.FusedOpUnavailable, match="no C.. compiler found"):
        fused_op.build()


def test_auto_falls_back_to_ops_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(fused_op, "_load", lambda: (None, "no C++ compiler found (test)"))
    fused_op._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=fused_op.__name__):
        assert fused_op.resolve("auto") == "ops"
        assert fused_op.resolve("auto") == "ops"
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "no C++ compiler found (test)" in warnings[0].getMessage()
    assert fused_op.resolve("fused") == "fused"  # asked for by name: no fallback
    codec = SparseCodec(quality=75)
    with pytest.raises(fused_op.FusedOpUnavailable, match=r"\(test\)"):
        tf_fast.encode_canvas(tf.zeros([1, 16, 16, 3], tf.uint8), codec, 10, encoder="fused")
    # "auto" still encodes, through the TensorFlow ops.
    black = tf.zeros([1, 16, 16, 3], tf.uint8)  # level-shifted luma −128: 4 DC terms
    triples, length = tf_fast.encode_canvas(black, codec, 10)
    assert length.numpy().tolist() == [5] and triples.shape == (1, 10, 3)
    fused_op._warn_once.cache_clear()


def test_unknown_encoder_is_refused():
    with pytest.raises(ValueError, match=r"encoder must be one of .* got 'fast'"):
        fused_op.resolve("fast")


@needs_compiler
def test_built_kernel_is_cached_by_source_and_compiler():
    path = fused_op.build()
    assert path.parent == fused_op.cache_dir() and path.exists()
    modified = path.stat().st_mtime_ns
    assert fused_op.build() == path and path.stat().st_mtime_ns == modified  # not rebuilt
    assert fused_op.available() and fused_op.unavailable_reason() is None


@needs_compiler
def test_pipeline_gives_the_same_examples_with_either_encoder():
    images, labels = shapes_arrays("test", 24)
    source = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    codec = SparseCodec(quality=75, resolution=images.shape[1])
    got = {}
    for encoder in ("fused", "ops"):
        batches = encode_dataset(source, codec, 1200, encode_batch_size=10,
                                 encoder=encoder).batch(24)
        got[encoder] = next(iter(batches))
    for key in ("triples", "length", "label", "content_hw"):
        np.testing.assert_array_equal(got["fused"][key], got["ops"][key], err_msg=key)
    assert got["fused"]["length"].numpy().min() > 100
