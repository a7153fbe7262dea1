"""The model as a generative classifier (`evaluation.generative_classifier`,
tools/generative_classifier.py): bits under every label against per-element likelihoods
computed by hand with that label, and the Bayes summary against numbers worked out here."""

import dataclasses
import importlib.util
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec
from dctformer_tf.evaluation.generative_classifier import class_bits, generative_classification
from dctformer_tf.model.dctransformer import DCTransformer
from dctformer_tf.model.random_init import open_rezero_branches
from dctformer_tf.runs import CHECKPOINT_DIR, RunSettings, write_run_file
from tests.evaluation.test_bpd import CONFIG as UNCONDITIONAL
from tests.evaluation.test_bpd import MAX_LENGTH
from tests.hand_likelihood import hand_log_likelihoods

CONFIG = dataclasses.replace(UNCONDITIONAL, num_classes=3)
TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "generative_classifier.py")


@pytest.fixture(scope="module")
def setup():
    codec = SparseCodec(block_size=8, quality=75, clip=CONFIG.clip, resolution=16)
    keras.utils.set_random_seed(0)  # the same weights whatever ran before
    model = DCTransformer(**CONFIG.model_kwargs())
    model.build(CONFIG.input_shapes())
    open_rezero_branches(model, seed=3)
    # Class embeddings far from the N(0, 0.02²) start, so the three labels score apart.
    for layer in (model.encoder, model.channel_decoder):
        table = layer.class_embedding.embeddings
        table.assign(np.random.default_rng(7).normal(0, 1.0, table.shape))
    images, labels = shapes_arrays("test", 3, size=16)
    bits = class_bits(model, codec, images, CONFIG.chunk_size, CONFIG.chunk_overlap,
                      MAX_LENGTH, batch_size=2)  # two batches
    return model, codec, images, labels, bits


def test_summary_against_hand_worked_numbers():
    bits = np.array([[10.0, 12.0, 11.0], [5.0, 4.0, 9.0], [7.0, 7.5, 3.0], [2.0, 1.0, 8.0]])
    labels = np.array([0, 1, 0, 2])
    report = generative_classification(bits, labels)
    # predicted [0, 1, 2, 1]
    assert report["accuracy"] == 0.5
    assert report["per_class_accuracy"] == [0.5, 1.0, 0.0]
    assert report["confusion"] == [[1, 0, 1], [0, 1, 0], [0, 1, 0]]
    # best wrong − true: 11 − 10, 5 − 4, 3 − 7, 1 − 8
    assert report["mean_gain_bits"] == pytest.approx((1 + 1 - 4 - 7) / 4)
    posterior = 2.0 ** -bits / (2.0 ** -bits).sum(axis=1, keepdims=True)
    true_posterior = posterior[np.arange(4), labels]
    assert report["mean_true_posterior"] == pytest.approx(true_posterior.mean())
    assert report["mean_mixture_gain_bits"] == pytest.approx(np.mean(np.log2(3 * true_posterior)))
    assert report["num_images"] == 4


def test_summary_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="labels must have shape"):
        generative_classification(np.zeros((3, 2)), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\).*\[-1, 2\]"):
        generative_classification(np.zeros((3, 2)), np.array([0, 2, -1]))


def test_a_class_without_images_has_no_accuracy():
    report = generative_classification(np.array([[1.0, 2.0, 3.0]]), np.array([0]))
    assert report["per_class_accuracy"] == [1.0, None, None]


def test_bits_under_each_label_match_hand_likelihoods(setup):
    model, codec, images, _, bits = setup
    assert bits.shape == (3, 3)
    for n in (0, 2):  # one image of each batch
        triples = codec.encode(images[n], max_length=MAX_LENGTH)
        for k in range(3):
            hand = -hand_log_likelihoods(model, codec, CONFIG.chunk_size, CONFIG.chunk_overlap,
                                         triples, label=k).sum() / np.log(2)
            assert bits[n, k] == pytest.approx(hand, rel=1e-4)
    # The labels really reach the model: each image scores differently under each of them.
    assert np.all(np.ptp(bits, axis=1) > 0.5)


def test_unconditional_model_is_rejected():
    model = DCTransformer(**UNCONDITIONAL.model_kwargs())
    with pytest.raises(ValueError, match="unconditional"):
        class_bits(model, None, np.zeros((1, 16, 16, 3), np.uint8), 24, 8, MAX_LENGTH)


def test_tool_reports_the_classification_of_the_given_checkpoint(setup, tmp_path):
    model, codec, images, labels, bits = setup
    model_dir = str(tmp_path / "run")
    os.makedirs(model_dir)
    write_run_file(model_dir, RunSettings.from_model_config(codec, CONFIG, MAX_LENGTH))
    checkpoint = tf.train.Checkpoint(model=model)
    prefix = os.path.join(model_dir, CHECKPOINT_DIR, "ckpt")
    first = checkpoint.save(prefix)  # the weights `bits` was computed with
    table = model.channel_decoder.class_embedding.embeddings
    kept = table.numpy()
    try:  # the latest checkpoint scores every image otherwise (not a permutation of the
        # labels, which could leave the summary alike)
        table.assign(np.random.default_rng(8).normal(0, 1.0, kept.shape))
        checkpoint.save(prefix)
    finally:
        table.assign(kept)
    spec = importlib.util.spec_from_file_location("generative_classifier_tool", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    reports = {}
    for name, args in (("first", ["--checkpoint", first]), ("latest", [])):
        out = str(tmp_path / f"{name}.json")
        assert tool.main(["--model_dir", model_dir, "--source", "shapes", "--num", "3",
                          "--out", out] + args) == 0
        with open(out) as f:
            reports[name] = json.load(f)
    want = generative_classification(bits, labels)
    report = reports["first"]
    assert report["confusion"] == want["confusion"]
    for key in ("accuracy", "mean_gain_bits", "mean_true_posterior"):
        assert report[key] == pytest.approx(want[key], rel=1e-5), key
    assert report["mean_bits"] == pytest.approx(bits.mean(), rel=1e-5)
    assert report["checkpoint"] == first and report["source"] == "shapes"
    # Without --checkpoint the latest is scored, and the report names it.
    assert reports["latest"]["checkpoint"] == tf.train.latest_checkpoint(
        os.path.join(model_dir, CHECKPOINT_DIR)) != first
    assert reports["latest"]["mean_bits"] != pytest.approx(bits.mean(), rel=1e-3)
