"""Every gin run file parses with its documented companions and configures what it says."""

import os

import gin
import pytest

from dctformer_tf.train import experiment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES = ["models/small.gin", "data/shapes.gin", "runs/train.gin", "runs/quickstart.gin"]


def _parse(files, bindings=()):
    gin.clear_config()
    gin.parse_config_files_and_bindings([os.path.join(ROOT, "gin", f) for f in files],
                                        ["train.model_dir = '/tmp/x'", *bindings])


@pytest.mark.parametrize("run, order, num_classes, loss_from", [
    ("class_conditional_shapes", "bands", 3, 0),
    ("upsample_shapes", "bands", 0, 0),
    ("colorize_shapes", "luma_first", 0, 64),
])
def test_shapes_task_runs(run, order, num_classes, loss_from):
    try:
        _parse(SHAPES + [f"runs/{run}.gin"])
        run, _ = experiment.build_run_settings()
        codec, config = run.codec, run.model
        assert (codec.order, codec.resolution, config.num_classes) == (order, 32, num_classes)
        bound = "build_chunks.loss_from_channel" in gin.config_str()
        assert (gin.query_parameter("build_chunks.loss_from_channel") if bound else 0) \
            == loss_from
    finally:
        gin.clear_config()


@pytest.mark.parametrize("model, data, run, order, num_classes", [
    ("imagenet", "imagenet", "imagenet_class_conditional", "bands", 1000),
    ("imagenet", "imagenet", "imagenet_upsample", "bands", 0),
    ("openimages", "openimages", "openimages_colorize", "luma_first", 0),
])
def test_table3_task_runs(model, data, run, order, num_classes):
    try:
        _parse([f"models/{model}.gin", f"data/{data}.gin", "runs/train.gin", f"runs/{run}.gin"])
        run, _ = experiment.build_run_settings()
        codec, config = run.codec, run.model
        assert (codec.order, config.num_classes) == (order, num_classes)
    finally:
        gin.clear_config()


@pytest.mark.parametrize("extra", [[], ["runs/class_conditional_shapes.gin"],
                                   ["runs/upsample_shapes.gin"], ["runs/colorize_shapes.gin"]])
def test_shapes_runs_never_clip(extra):
    """The CPU runs shrink the value vocabulary (CLIP) for speed; it must stay at or above
    the largest value any image can reach at their quality, so the sequences (and the demo's
    comparison with JPEG) are exactly JPEG's coefficients."""
    try:
        _parse(SHAPES + extra)
        codec = experiment.build_codec()
        assert codec.clip >= codec.max_magnitude, (codec.clip, codec.max_magnitude)
    finally:
        gin.clear_config()


@pytest.mark.parametrize("name", ["lsun", "ffhq", "imagenet", "openimages", "plant_leaves",
                                  "retinopathy", "clevr"])
def test_table3_data_files_state_the_lengths_they_assume(name):
    """Each Table 3 data file documents the length distribution behind its max_length (the
    `dctformer lengths` percentiles) and records the mean as the macro ASSUMED_MEAN_LENGTH,
    which gin accepts although no binding reads it."""
    with open(os.path.join(ROOT, "gin", "data", f"{name}.gin")) as f:
        text = f.read()
    for word in ("dctformer lengths", "p50", "p90", "p99", "over max_length"):
        assert word in text, (name, word)
    try:
        _parse([f"models/{name}.gin", f"data/{name}.gin", "runs/train.gin"])
        mean = gin.query_parameter("%ASSUMED_MEAN_LENGTH")
        assert isinstance(mean, int)
        assert 0 < mean < gin.query_parameter("build_sequences.max_length")
    finally:
        gin.clear_config()
