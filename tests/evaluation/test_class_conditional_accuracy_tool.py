"""tools/class_conditional_accuracy.py on a tiny 3-class run: the accuracy and counts it
reports are those of the classifier on the samples of the checkpoint it was given, and its
ceilings those on real test images, clean and through the run's codec."""

import dataclasses
import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec, codec_round_trip
from dctformer_tf.evaluation.shapes_classifier import build_shapes_classifier, classify
from dctformer_tf.runs import CHECKPOINT_DIR, RunSettings, write_run_file
from dctformer_tf.sampling import Sampler, SamplingSettings
from tests.conditional.conftest import MAX_LENGTH, TINY, build_tiny_model

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools",
                    "class_conditional_accuracy.py")


def _tool():
    spec = importlib.util.spec_from_file_location("class_conditional_accuracy", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # a study tool (docs/results.md), not a path of the library
def test_reports_the_classifier_on_the_given_checkpoints_samples(tmp_path):
    import tensorflow as tf

    config = dataclasses.replace(TINY, num_classes=3)
    model = build_tiny_model(config)
    model_dir = str(tmp_path / "run")
    os.makedirs(model_dir)
    write_run_file(model_dir, RunSettings.from_model_config(
        SparseCodec(block_size=8, quality=75, resolution=32), config, MAX_LENGTH))
    checkpoint = tf.train.Checkpoint(model=model)
    first = checkpoint.save(os.path.join(model_dir, CHECKPOINT_DIR, "ckpt"))
    bias = model.value_decoder.output_dense.bias  # the latest checkpoint draws other values
    bias.assign(np.roll(bias.numpy(), 40))
    checkpoint.save(os.path.join(model_dir, CHECKPOINT_DIR, "ckpt"))
    classifier_path = str(tmp_path / "classifier.keras")
    build_shapes_classifier(image_size=32).save(classifier_path)

    fast = ["--classifier", classifier_path, "--num_per_class", "3", "--batch_size", "3",
            "--max_chunks", "1", "--no_jit", "--seed", "5", "--num_real", "30",
            "--model_dir", model_dir]
    tool = _tool()
    assert tool.main(fast + ["--checkpoint", first, "--out", str(tmp_path / "first")]) == 0
    assert tool.main(fast + ["--out", str(tmp_path / "latest")]) == 0

    with open(tmp_path / "first" / "class_accuracy.json") as f:
        report = json.load(f)
    assert report["checkpoint"] == first
    sampler = Sampler.from_model_dir(model_dir, first, jit_compile=False)
    classifier = tool.load_shapes_classifier(classifier_path)
    for k, name in enumerate(("circle", "square", "triangle")):
        result = sampler.sample(3, 5 + k, SamplingSettings.uniform(), batch_size=3,
                                max_chunks=1, label=k)
        predicted = classify(classifier, np.stack(result.images))
        assert report["samples"][name]["predicted_counts"] == np.bincount(
            predicted, minlength=3).tolist()
        assert report["samples"][name]["accuracy"] == np.mean(predicted == k)
        assert report["samples"][name]["mean_length"] == result.length.mean()
    real, labels = shapes_arrays("test", 30, size=32)
    for images, key in ((real, "real_test_accuracy"),
                        (codec_round_trip(real, sampler.codec), "real_coded_test_accuracy")):
        predicted = classify(classifier, images)
        assert report[key] == {name: np.mean(predicted[labels == k] == k)
                               for k, name in enumerate(("circle", "square", "triangle"))}
    with open(tmp_path / "latest" / "class_accuracy.json") as f:
        latest = json.load(f)["checkpoint"]  # named, not null, without --checkpoint
    assert latest == tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR)) != first
    grids = [np.asarray(Image.open(tmp_path / run / "samples_by_class.png"))
             for run in ("first", "latest")]
    assert grids[0].shape == grids[1].shape and not np.array_equal(*grids)
