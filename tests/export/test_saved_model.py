"""SavedModel export: reloads with plain TensorFlow (no project code), `encode` equals the
numpy codec and refuses bad bytes without harm to the serving process, and `score` equals
log-likelihoods computed by hand from the Keras model."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.export.saved_model import export_saved_model
from dctformer_tf.runs import load_trained_model
from dctformer_tf.sampling import Sampler, SamplingSettings
from tests.data.test_image_io_fuzz import VARIANTS, corrupt_cases
from tests.hand_likelihood import hand_log_likelihoods
from tests.train.test_experiment import _train

LOAD_WITHOUT_PROJECT = r"""
import sys, json, numpy as np, tensorflow as tf
saved, png, out = sys.argv[1:4]
loaded = tf.saved_model.load(saved)
assert not any(name.startswith("dctformer_tf") for name in sys.modules), "project code imported"
encoded = loaded.signatures["encode"](image_bytes=tf.constant(open(png, "rb").read()))
length = int(encoded["length"])
scored = loaded.signatures["score"](triples=encoded["triples"][None], length=[length], label=[0])
sampled = loaded.signatures["sample"](num=tf.constant(3), seed=tf.constant(5),
                                     temperature=tf.constant(1.0), top_p=tf.constant(0.9))
np.savez(out, triples=encoded["triples"].numpy(), length=length,
         content_hw=encoded["content_hw"].numpy(),
         **{k: v.numpy()[0] for k, v in scored.items()},
         **{"sample_" + k: v.numpy() for k, v in sampled.items()})
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    _train(run, "train.total_steps = 2", "train.steps_per_epoch = 2")
    out = str(tmp_path_factory.mktemp("saved") / "model")
    export_saved_model(str(run), out, max_length=512)
    return str(run), out


def test_saved_model_loads_without_project_code_and_matches_keras(exported, tmp_path):
    run, saved = exported
    image = shapes_arrays("test", 1, size=32)[0][0]
    png = tmp_path / "x.png"
    Image.fromarray(image).save(png)
    out = tmp_path / "out.npz"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_PROJECT, saved, str(png), str(out)],
                            capture_output=True, text=True, timeout=300, cwd=str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(out)

    model, settings = load_trained_model(run)
    codec, config = settings.codec, settings.model
    expected = codec.encode(image)
    length = int(got["length"])
    assert length == len(expected) and length > config.chunk_size  # several chunks
    np.testing.assert_array_equal(got["triples"][:length], expected)
    np.testing.assert_array_equal(got["content_hw"], [32, 32])

    hand = hand_log_likelihoods(model, codec, config.chunk_size, config.chunk_overlap,
                                expected).sum(axis=0)
    np.testing.assert_allclose(got["log_likelihood"][:length], hand, atol=1e-5, rtol=1e-5)
    assert not got["log_likelihood"][length:].any()
    parts = got["channel"] + got["position"] + got["value"]
    np.testing.assert_allclose(parts, got["log_likelihood"], atol=1e-6)

    # `sample` of the reloaded SavedModel equals the Python sampler for the same seed.
    sampler = Sampler(model, codec, config.chunk_size, config.chunk_overlap, 512)
    python = sampler.sample(3, seed=5, settings=SamplingSettings.uniform(top_p=0.9),
                            batch_size=3)
    np.testing.assert_array_equal(got["sample_triples"], python.triples)
    np.testing.assert_array_equal(got["sample_length"], python.length)
    np.testing.assert_array_equal(got["sample_images"], np.stack(python.images))
    assert got["sample_images"].shape == (3, 32, 32, 3)


def test_loaded_model_holds_the_weights_the_optimizer_trained(exported, tmp_path):
    """The sampler, `evaluate` and `export` all load a plain model from the trainer's
    checkpoint. Every trainable weight must come back as trained: the checkpoint's copy under
    the optimizer's variable list (the trainer's own order) is the reference."""
    run, _ = exported
    model, _ = load_trained_model(run)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(run, "checkpoints")))
    for i, variable in enumerate(model.trainable_variables):
        key = f"optimizer/_trainable_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"
        np.testing.assert_array_equal(np.asarray(variable), reader.get_tensor(key),
                                      err_msg=variable.path)
    alphas = [np.asarray(w) for w in model.weights if w.name == "alpha"]
    assert alphas and all(alpha != 0 for alpha in alphas)  # trained, not the ReZero init

    # A checkpoint without some of the model's weights is refused, naming the file.
    from dctformer_tf.runs import build_run_model, read_run_file, restore_checkpoint

    partial = build_run_model(read_run_file(run))
    path = tf.train.Checkpoint(encoder=partial.encoder).save(str(tmp_path / "encoder_only"))
    with pytest.raises(ValueError, match="encoder_only.*lacks weights"):
        restore_checkpoint(tf.train.Checkpoint(model=partial), path, partial=True)


def test_export_cli_and_clear_error_without_checkpoint(exported, tmp_path, capsys):
    from dctformer_tf.cli.main import main

    run, _ = exported
    assert main(["export", "--model_dir", run, "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "saved_model.pb").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "run.json").write_text(json.dumps(json.load(open(os.path.join(run, "run.json")))))
    assert main(["export", "--model_dir", str(empty), "--out", str(tmp_path / "n")]) == 2
    assert "no checkpoint in" in capsys.readouterr().err



def test_bpd_is_the_score_signature_sum_over_3hw_and_parts_add_up(exported):
    from dctformer_tf.data.pipeline import encode_dataset
    from dctformer_tf.evaluation.bpd import evaluate_bpd

    run, saved = exported
    model, settings = load_trained_model(run)
    codec, config = settings.codec, settings.model
    images, labels = shapes_arrays("test", 3, size=32)
    source = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    sequences = encode_dataset(source, codec, 512)
    result = evaluate_bpd(model, codec, sequences, config.chunk_size, config.chunk_overlap,
                          batch_size=2)
    loaded = tf.saved_model.load(saved)
    total_bits = 0.0
    for image in images:
        triples = codec.encode(image, max_length=512)
        padded = np.zeros((1, 512, 3), np.int32)
        padded[0, : len(triples)] = triples
        scored = loaded.signatures["score"](triples=tf.constant(padded),
                                            length=tf.constant([len(triples)]),
                                            label=tf.constant([0]))
        total_bits += -float(scored["log_likelihood"].numpy().sum()) / np.log(2)
    assert result["bpd"] == pytest.approx(total_bits / (3 * 32 * 32 * 3), rel=1e-5)
    parts = result["bpd_channel"] + result["bpd_position"] + result["bpd_value"]
    assert parts == pytest.approx(result["bpd"], rel=1e-6)
    assert sum(result["bpd_per_chunk"]) == pytest.approx(result["bpd"], rel=1e-6)
    assert len(result["bpd_per_chunk"]) > 1 and result["num_images"] == 3
    np.testing.assert_allclose(result["bits_per_image"].sum() / (3 * 32 * 32 * 3), result["bpd"],
                               rtol=1e-6)


def test_encode_refuses_bad_bytes_and_the_loaded_model_keeps_serving(exported):
    """Garbage, empty, truncated and unsupported bytes each give an InvalidArgumentError that
    says what is wrong; cut and flipped files of every format give that or a result; and the
    same loaded object then encodes a good image exactly as before."""
    run, saved = exported
    codec = load_trained_model(run)[1].codec
    image = shapes_arrays("test", 1, size=32)[0][0]
    encoded = {}
    for image_format in ("PNG", "JPEG", "TIFF"):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, image_format)
        encoded[image_format] = buffer.getvalue()
    jpeg, png = encoded["JPEG"], encoded["PNG"]
    bad = {
        "garbage": (b"not an image at all" * 8, "Unknown image file format"),
        "empty": (b"", "Input is empty"),
        "jpeg cut in its header": (jpeg[: jpeg.index(b"\xff\xda") // 2], "JPEG"),
        "jpeg cut in its scan": (jpeg[: len(jpeg) * 3 // 4], "Invalid JPEG data"),
        "png cut in its pixels": (png[: len(png) // 2], "Invalid PNG data"),
        "tiff (TensorFlow decodes no TIFF)": (encoded["TIFF"], "Unknown image file format"),
    }
    loaded = tf.saved_model.load(saved)
    encode = loaded.signatures["encode"]
    for data, message in bad.values():
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            encode(image_bytes=tf.constant(data))

    outcomes = {"encoded": 0, "refused": 0}
    for variant in sorted(VARIANTS):
        for _, data in corrupt_cases(variant):
            try:
                result = encode(image_bytes=tf.constant(data))
            except tf.errors.InvalidArgumentError:
                outcomes["refused"] += 1
            else:
                outcomes["encoded"] += 1
                assert result["triples"].shape == (512, 3)
    assert outcomes["refused"] > 100 and outcomes["encoded"] > 100, outcomes

    result = encode(image_bytes=tf.constant(png))
    expected = codec.encode(image)
    assert int(result["length"]) == len(expected)
    np.testing.assert_array_equal(result["triples"].numpy()[: len(expected)], expected)


def test_saved_graph_holds_no_custom_op(exported):
    """`encode` is saved with the TensorFlow-ops encoder, so that the SavedModel loads where
    the fused kernel's library was never built (TF Serving, another machine)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(exported[1], "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    ops.update(node.op for function in graph.library.function for node in function.node_def)
    assert "Where" in ops and "SparseDctEncode" not in ops
