"""Building and choosing the fused encoder kernel (`fused_op.py`, `encoders.py`): a clear
error where it cannot be built, a warned fallback to the TensorFlow-ops encoder under "auto",
the encoder for each kind of canvas, the same sequences from both in the tf.data pipeline.
Its sequences against the reference are tested in test_fast.py."""

import dataclasses
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.pipeline import encode_dataset
from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec, encoders, fused_op, np_fast
from dctformer_tf.dct.encoders import choose_encoder
from tests.dct.test_fast import needs_compiler


def test_a_failing_compiler_is_named_with_its_message(monkeypatch, tmp_path):
    monkeypatch.setenv("DCTFORMER_OP_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "/bin/false")
    with pytest.raises(fused_op.FusedOpUnavailable, match=r"sparse_dct_op.cc with /bin/false "
                                                          r"failed \(exit 1\)"):
        fused_op.build()
    assert not list(tmp_path.glob("*.so")) and not list(tmp_path.glob("*/"))  # nothing half-built


@needs_compiler
def test_an_unwritable_cache_is_named(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DCTFORMER_OP_CACHE", str(blocker / "ops"))
    with pytest.raises(fused_op.FusedOpUnavailable,
                       match=r"cannot write the kernel to .*file/ops.*DCTFORMER_OP_CACHE"):
        fused_op.build()


def test_no_compiler_says_so(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", "")
    assert fused_op.compiler() is None
    with pytest.raises(fused_op.FusedOpUnavailable, match="no C.. compiler found"):
        fused_op.build()


def test_auto_falls_back_to_ops_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(fused_op, "_load", lambda: (None, "no C++ compiler found (test)"))
    encoders._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=encoders.__name__):
        assert choose_encoder("auto").name == "ops"
        assert choose_encoder("auto").name == "ops"
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "no C++ compiler found (test)" in warnings[0].getMessage()
    assert choose_encoder("fused").name == "fused"  # asked for by name: no fallback
    codec = SparseCodec(quality=75)
    black = tf.zeros([1, 16, 16, 3], tf.uint8)  # level-shifted luma −128: 4 DC terms
    with pytest.raises(fused_op.FusedOpUnavailable, match=r"\(test\)"):
        choose_encoder("fused").encode(black, codec, 10)
    # "auto" still encodes, through the TensorFlow ops.
    triples, length = choose_encoder("auto").encode(black, codec, 10)
    assert length.numpy().tolist() == [5] and triples.shape == (1, 10, 3)
    encoders._warn_once.cache_clear()


def test_unknown_encoder_is_refused():
    with pytest.raises(ValueError, match=r"encoder must be one of .* got 'fast'"):
        choose_encoder("fast")
    with pytest.raises(ValueError, match=r"numpy input path has one encoder.*'ops'"):
        choose_encoder("ops", tensorflow=False)


def test_each_kind_of_canvas_gets_its_encoder(monkeypatch):
    """Canvases of no static size go to the float64 reference whatever was asked (without
    asking for the kernel), numpy arrays to the numpy twin; the batch size follows the
    encoder (at most 64 images, at least one)."""
    monkeypatch.setattr(fused_op, "load", lambda: pytest.fail("the kernel was asked for"))
    for encoder in encoders.ENCODERS:
        assert choose_encoder(encoder, static_size=False).name == "reference"
    numpy = choose_encoder(tensorflow=False)
    assert numpy.name == "numpy" and numpy.encode is np_fast.encode_canvas
    ops = choose_encoder("ops")
    for resolution in (256, 384, 1024):  # whole canvases up to the encoder's best call size
        batch = ops.batch_size(resolution)
        assert 1 <= batch <= encoders.MAX_BATCH
        assert batch == 1 or batch * resolution**2 <= ops.call_pixels
        assert batch == encoders.MAX_BATCH or (batch + 1) * resolution**2 > ops.call_pixels
    assert choose_encoder("ops").batch_size(32) == encoders.MAX_BATCH
    assert choose_encoder(static_size=False).batch_size(64) == 1
    codec = SparseCodec(quality=75)
    any_size = tf.function(lambda x: codec.tf_encode_canvas(x, 10),
                           input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    triples, length = any_size(tf.zeros([16, 16, 3], tf.uint8))  # 4 DC terms, EOS
    assert int(length) == 5 and triples.shape == (10, 3)


@needs_compiler
def test_built_kernel_is_cached_by_source_and_compiler(monkeypatch, tmp_path):
    # The shared cache (not tmp_path): the suite builds the kernel once for all its tests.
    path = fused_op.build()
    assert path.parent == fused_op.cache_dir() and path.exists()
    modified = path.stat().st_mtime_ns
    assert fused_op.build() == path and path.stat().st_mtime_ns == modified  # not rebuilt
    assert fused_op.available() and fused_op.unavailable_reason() is None
    cxx = fused_op.compiler()
    monkeypatch.setattr(fused_op, "_compiler_version", lambda cxx: "another compiler 1.0")
    assert fused_op.library_path(cxx) != path
    monkeypatch.undo()
    edited = tmp_path / fused_op.SOURCE.name
    edited.write_bytes(fused_op.SOURCE.read_bytes() + b"// edited\n")
    monkeypatch.setattr(fused_op, "SOURCE", edited)
    assert fused_op.library_path(cxx) != path
    monkeypatch.setattr(fused_op, "cpu_flags", lambda: [])
    plain = fused_op.library_path(cxx)
    monkeypatch.setattr(fused_op, "cpu_flags", lambda: ["-mavx2", "-mfma"])
    assert fused_op.library_path(cxx) != plain  # a build for other vector units


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


GENERIC_BUILD = r"""
import sys
import numpy as np
import tensorflow as tf
from dctformer_tf.dct import SparseCodec, fused_op, np_fast
from dctformer_tf.data.photos import photo_crops
fused_op.cpu_flags = lambda: []  # no AVX2: the plain C++ loops
images = photo_crops(64, 6, seed=5)
for quality, block in ((50, 8), (90, 8), (75, 16), (90, 32)):
    codec = SparseCodec(quality=quality, block_size=block, resolution=64)
    triples, lengths = fused_op.encode_canvas(tf.constant(images), codec, 4000)
    want, want_lengths = np_fast.encode_canvas(images, codec, 4000)
    np.testing.assert_array_equal(triples, want)
    np.testing.assert_array_equal(lengths, want_lengths)
print("generic build ok", fused_op.build())
"""


@pytest.mark.slow
@needs_compiler
def test_the_build_without_vector_units_gives_the_same_sequences(tmp_path):
    """The kernel's plain C++ path for S = 8, 16, 32 (what a CPU without AVX2, or an ARM host,
    runs),
    built into its own cache in a fresh process (a process loads one build of the op)."""
    env = {**os.environ, "DCTFORMER_OP_CACHE": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", GENERIC_BUILD], capture_output=True,
                            text=True, timeout=600, env=env,
                            cwd=str(fused_op.SOURCE.parents[2]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "generic build ok" in result.stdout and str(tmp_path) in result.stdout


def test_the_gin_binding_chooses_the_encoder(monkeypatch):
    """`build_sequences.encoder` reaches the pipeline: "ops" never asks for the kernel (as a
    TPU Node's remote input host needs), and a misspelt value is refused by name."""
    import gin

    from dctformer_tf.train.experiment import sequence_source

    asked = []
    monkeypatch.setattr(fused_op, "load", lambda: asked.append("load"))
    codec = SparseCodec(quality=75, resolution=64)
    with gin.unlock_config():
        gin.parse_config(["build_sequences.max_length = 1200",
                          "build_sequences.encoder = 'ops'"])
    try:
        sequences = sequence_source()
        assert sequences.encoder == "ops"
        example = next(iter(sequences.dataset(codec, "test", num_examples=2)))
        assert int(example["length"]) > 100 and not asked
        with pytest.raises(ValueError, match="got 'fussed'"):
            dataclasses.replace(sequences, encoder="fussed").dataset(codec, "test", 2)
    finally:
        gin.clear_config()
