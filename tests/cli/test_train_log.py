"""`dctformer train` writing to a file or pipe (not a terminal): one line per epoch, no
carriage-return progress bars, no TensorFlow C++ log lines, the trainer's narration kept."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # a whole training subprocess; fit_verbosity is what decides it
def test_train_in_a_non_terminal_writes_lines_not_progress_bars(tmp_path):
    command = [sys.executable, "-m", "dctformer_tf.cli.main", "train",
               "--model_dir", str(tmp_path / "run")]
    for name in ("models/tiny.gin", "data/shapes.gin", "runs/train.gin"):
        command += ["--gin_file", os.path.join(ROOT, "gin", name)]
    for binding in ("build_codec.resolution = 32", "build_sequences.num_examples = 16",
                    "build_sequences.max_length = 1024", "train.tokens = None",
                    "train.total_steps = 4", "train.steps_per_epoch = 2",
                    "train.warmup_steps = 1"):
        command += ["--gin_bindings", binding]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=600, env=env)
    out = result.stdout.decode()
    assert result.returncode == 0, out[-3000:]
    assert "\r" not in out and "\b" not in out
    assert out.count("Epoch 1/2") == 1 and out.count("Epoch 2/2") == 1
    assert sum(line.startswith("2/2 - ") for line in out.splitlines()) == 2  # a line per epoch
    assert "Building dataset..." in out and "Done at step 4" in out
    for noise in ("oneDNN", "cuda", "cpu_feature_guard", "shuffle=True"):
        assert noise not in out, noise


def test_a_run_that_cannot_start_says_why_in_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    command = [sys.executable, "-m", "dctformer_tf.cli.main", "train",
               "--model_dir", str(blocker / "run")]
    for name in ("models/tiny.gin", "data/shapes.gin", "runs/train.gin"):
        command += ["--gin_file", os.path.join(ROOT, "gin", name)]
    command += ["--gin_bindings", "train.tokens = None", "--gin_bindings",
                "train.total_steps = 2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        f"dctformer train: error: model_dir '{blocker}/run' is not writable (")
    assert "In call to configurable" not in result.stderr
