"""`dctformer upsample | colorize` end to end on a tiny run, and their clear errors (exit 2,
one line naming the problem)."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dctformer_tf.cli.main import main
from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import SparseCodec
from dctformer_tf.runs import CHECKPOINT_DIR, RunSettings, write_run_file
from dctformer_tf.sampling import conditional as cond
from tests.conditional.conftest import MAX_LENGTH, TINY
from tests.conditional.test_prefixes import mid_range_image

FAST = ["--no_jit", "--max_chunks", "1", "--num_samples", "3"]


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):
    """Two model_dirs as `dctformer train` leaves them (run.json + a checkpoint of the
    model), for the "bands" and the "luma_first" order. Training itself is exercised by
    tests/train and by the slow test below; here the weights only need to load."""
    codec = SparseCodec(block_size=8, quality=75, resolution=32)
    dirs = {}
    for order in ("bands", "luma_first"):
        model_dir = tmp_path_factory.mktemp(order)
        write_run_file(str(model_dir), RunSettings.from_model_config(
            dataclasses.replace(codec, order=order), TINY, MAX_LENGTH))
        tf.train.Checkpoint(model=tiny_model).save(str(model_dir / CHECKPOINT_DIR / "ckpt"))
        dirs[order] = str(model_dir)
    return dirs


def _png(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def test_upsample_writes_samples_figure_and_fidelity(runs, tmp_path):
    rng = np.random.default_rng(6)
    originals = [cond.upscale_nearest(mid_range_image(rng, 4, 4), 8) for _ in range(2)]
    inputs = [_png(tmp_path / f"low{i}.png", cond.downsample(o, 8))
              for i, o in enumerate(originals)]
    paths = [_png(tmp_path / f"orig{i}.png", o) for i, o in enumerate(originals)]
    out = tmp_path / "out"
    assert main(["upsample", "--model_dir", runs["bands"], *inputs, "--out", str(out),
                 "--original", paths[0], "--original", paths[1], *FAST]) == 0
    report = json.loads((out / "upsample.json").read_text())
    assert [entry["input"] for entry in report["inputs"]] == inputs
    for i, entry in enumerate(report["inputs"]):
        assert entry["content_hw"] == [32, 32] and entry["original"] == paths[i]
        assert len(entry["samples"]) == 3
        for stats in entry["samples"]:
            assert stats["dc_band_equal"]
            assert stats["luma_block_error"] <= stats["luma_block_bound"]
        samples = [np.array(Image.open(out / f"{i:03d}_sample_{n:02d}.png")) for n in range(3)]
        assert all(s.shape == (32, 32, 3) for s in samples)
        assert not np.array_equal(samples[0], samples[1])
        row = np.array(Image.open(out / f"{i:03d}_row.png"))
        assert row.shape == (32, 5 * 34 - 2, 3)  # input, 3 samples, original; 2 px gaps
        np.testing.assert_array_equal(
            row[:, :32], cond.upscale_nearest(np.array(Image.open(inputs[i])), 8))
        np.testing.assert_array_equal(row[:, -32:], originals[i])
    assert np.array(Image.open(out / "figure.png")).shape == (2 * 34 - 2, 5 * 34 - 2, 3)


def test_colorize_writes_samples_and_keeps_the_luma(runs, tmp_path):
    colour = shapes_arrays("test", 1, size=32)[0][0]
    gray = _png(tmp_path / "gray.png", np.array(Image.fromarray(colour).convert("L")))
    out = tmp_path / "out"
    assert main(["colorize", "--model_dir", runs["luma_first"], gray, "--out", str(out),
                 *FAST]) == 0
    report = json.loads((out / "colorize.json").read_text())
    (entry,) = report["inputs"]
    assert entry["prefix_length"] > 100 and report["order"] == "luma_first"
    for stats in entry["samples"]:
        assert stats["luma_equal"] and stats["luma_psnr_db"] >= 40
    row = np.array(Image.open(out / "000_row.png"))
    assert row.shape == (32, 4 * 34 - 2, 3)  # input, 3 samples
    assert (row[:, :32, 0] == row[:, :32, 2]).all()  # the input is shown gray


def test_clear_errors_exit_2_naming_the_problem(runs, tmp_path, capsys):
    low = _png(tmp_path / "low.png", np.full((4, 4, 3), 100, np.uint8))
    big = _png(tmp_path / "big.png", np.full((32, 32, 3), 100, np.uint8))
    out = str(tmp_path / "out")
    cases = [
        (["colorize", "--model_dir", runs["bands"], big],
         "colorize needs a model trained with the 'luma_first' channel order"),
        (["upsample", "--model_dir", runs["luma_first"], low],
         "upsample needs a model trained with the 'bands' channel order"),
        (["upsample", "--model_dir", runs["bands"], low, big],
         f"{big}: a low-resolution input of 32x32 pixels does not fit"),
        (["upsample", "--model_dir", runs["bands"], low, "--original", big, "--original", big],
         "--original given 2 times for 1 inputs"),
    ]
    for argv, message in cases:
        assert main([*argv, "--out", out]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not os.path.exists(out)  # nothing was written


@pytest.mark.slow
def test_upsample_and_colorize_on_runs_the_trainer_wrote(tmp_path):
    from tests.train.test_experiment import _train

    low = _png(tmp_path / "low.png", mid_range_image(np.random.default_rng(7), 4, 4))
    gray = _png(tmp_path / "gray.png", np.array(Image.fromarray(
        shapes_arrays("test", 1, size=32)[0][0]).convert("L")))
    for order, task, image in (("bands", "upsample", low), ("luma_first", "colorize", gray)):
        model_dir = tmp_path / order
        _train(model_dir, "train.total_steps = 2", "train.steps_per_epoch = 2",
               f'build_codec.order = "{order}"')
        out = tmp_path / f"{task}_out"
        assert main([task, "--model_dir", str(model_dir), image, "--out", str(out),
                     "--max_chunks", "2"]) == 0
        report = json.loads((out / f"{task}.json").read_text())
        key = "dc_band_equal" if task == "upsample" else "luma_equal"
        assert all(stats[key] for stats in report["inputs"][0]["samples"])
