"""`dctformer evaluate` end to end on a tiny run: every metric written, parts add up, the
floors computed, the Figure 9 plot and sample grid written; bad flags give clear errors."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.cli.main import main
from dctformer_tf.dct import SparseCodec, codec_round_trip
from dctformer_tf.evaluation.features import ShapesClassifierFeatures
from dctformer_tf.evaluation.placement import ac_placement, dense_images
from dctformer_tf.evaluation.report import load_split
from dctformer_tf.evaluation.sample_metrics import image_set_metrics
from dctformer_tf.evaluation.shapes_classifier import build_shapes_classifier
from dctformer_tf.evaluation.structure import dc_smoothness, second_difference_medians
from dctformer_tf.runs import CHECKPOINT_DIR, DataSettings, RunSettings, write_run_file
from tests.conditional.conftest import TINY, build_tiny_model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("run")
    write_run_file(str(model_dir), RunSettings.from_model_config(
        SparseCodec(quality=75, resolution=32), TINY, 768, DataSettings("shapes")))
    tf.train.Checkpoint(model=build_tiny_model()).save(str(model_dir / CHECKPOINT_DIR / "ckpt"))
    keras.utils.set_random_seed(0)
    classifier = model_dir / "classifier.keras"
    build_shapes_classifier().save(classifier)  # untrained: only the plumbing is tested
    return model_dir, classifier


def test_evaluate_writes_every_metric(run, tmp_path):
    model_dir, classifier = run
    out = tmp_path / "eval"
    code = main(["evaluate", "--model_dir", str(model_dir), "--out", str(out), "--no_jit",
                 "--metrics", "bpd,compression,fid,sfid,pr,structure", "--num_images", "4",
                 "--num_samples", "6", "--batch_size", "6", "--max_chunks", "1",
                 "--feature_weights", str(classifier)])
    assert code == 0
    report = json.loads((out / "evaluation.json").read_text())
    bpd = report["bpd"]
    assert bpd["num_images"] == 4
    assert bpd["bpd_channel"] + bpd["bpd_position"] + bpd["bpd_value"] == pytest.approx(
        bpd["bpd"], rel=1e-6)
    assert sum(bpd["bpd_per_chunk"]) == pytest.approx(bpd["bpd"], rel=1e-6)
    assert report["compression"]["model_over_jpeg"] > 0
    for part in ("samples", "floor", "codec_floor"):
        for name in ("fid", "sfid", "precision", "recall"):
            assert name in report[part], (part, name)
        assert report[part]["num_real"] == 6 and report[part]["num_fake"] == 6
    assert report["floor"]["against"] == report["codec_floor"]["against"] == "train"
    # The codec floor is the train images through the run's codec against the test images.
    real, _ = load_split("shapes", "test", 6, 32)
    train, _ = load_split("shapes", "train", 6, 32)
    features = ShapesClassifierFeatures(str(classifier))
    coded = codec_round_trip(train, SparseCodec(quality=75, resolution=32))
    expected = image_set_metrics(real, coded, features, ("fid", "sfid", "pr"))
    for name in ("fid", "sfid", "precision", "recall"):
        assert report["codec_floor"][name] == pytest.approx(expected[name], rel=1e-4, abs=1e-6)
    assert report["codec_floor"]["fid"] != pytest.approx(report["floor"]["fid"], rel=1e-3)
    assert (out / "bpd_per_chunk.png").exists() and (out / "samples_grid.png").exists()
    # DC smoothness of the test images through the codec (4x4 blocks at 32²).
    data = report["structure"]["data"]
    assert data["num_images"] == report["structure"]["samples"]["num_images"] == 6
    coded_real = codec_round_trip(real, SparseCodec(quality=75, resolution=32))
    assert data["median"] == pytest.approx(np.median(dc_smoothness(coded_real, 8)))
    # The placement and DC diagnostics, for the data beside the samples.
    codec = SparseCodec(quality=75, resolution=32)
    dense = dense_images(coded_real, codec)
    assert data["ac_placement"] == pytest.approx(ac_placement(dense, codec))
    assert data["second_differences"] == pytest.approx(second_difference_medians(coded_real, 8))
    assert set(report["structure"]["samples"]["med_dc_bits"]) == {"Y", "Cb", "Cr"}
    assert set(bpd["dc_bits_per_cell"]) == {"Y", "Cb", "Cr"} and "0/Y" in bpd["bits_by_band"]
    assert report["med_dc_bits"]["Y"]["cells"] == 4 * 16


def test_evaluate_errors(run, tmp_path, capsys):
    model_dir, _ = run
    args = ["evaluate", "--model_dir", str(model_dir), "--out", str(tmp_path / "e")]
    assert main(args + ["--metrics", "fid"]) == 2
    assert "--feature_weights" in capsys.readouterr().err
    assert main(args + ["--metrics", "bpd,nll"]) == 2
    assert "unknown metrics ['nll']" in capsys.readouterr().err
