"""What a run does when things go wrong: a broken latest checkpoint, a kill during frequent
saves, a diverging loss, an unwritable model_dir; and that the same seed repeats itself."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.training_input import SequenceSource
from dctformer_tf.evaluation.bpd import evaluate_bpd
from dctformer_tf.runs import load_trained_model
from dctformer_tf.train.callbacks import TrainingDiverged
from tests.train.test_experiment import ROOT, TINY, TINY_BINDINGS, _train


def _data_file(model_dir, step):
    return os.path.join(model_dir, "checkpoints", f"ckpt-{step}.data-00000-of-00001")


@pytest.mark.parametrize("damage", ["truncate", pytest.param("corrupt", marks=pytest.mark.slow)])
def test_a_broken_latest_checkpoint_resumes_from_the_one_before(tmp_path, caplog, damage):
    _train(tmp_path, "train.total_steps = 4", "train.steps_per_epoch = 2")
    path = _data_file(tmp_path, 4)
    data = bytearray(open(path, "rb").read())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        rng = np.random.default_rng(0)
        for i in rng.choice(len(data), size=64, replace=False):
            data[i] ^= 0xFF
    open(path, "wb").write(bytes(data))
    caplog.set_level("INFO", logger="dctformer_tf.train")
    history = _train(tmp_path, "train.total_steps = 6", "train.steps_per_epoch = 2")
    skipped = [r.getMessage() for r in caplog.records
               if r.levelname == "WARNING" and r.name == "dctformer_tf.train"]
    assert len(skipped) == 1 and "ckpt-4" in skipped[0] and "does not restore" in skipped[0]
    assert "Resuming at step 2 (epoch 1)" in caplog.text
    assert len(history.history["loss"]) == 2  # epochs 2 and 3 ran again
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-6")


def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    _train(tmp_path, "train.total_steps = 2", "train.steps_per_epoch = 2")
    with pytest.raises(TrainingDiverged) as raised:
        _train(tmp_path, "train.total_steps = 12", "train.steps_per_epoch = 2",
               "train.learning_rate = 1e35", "train.warmup_steps = 0")
    message = str(raised.value)
    step = int(re.match(r"step (\d+): ", message).group(1))
    assert step > 2 and "not finite" in message
    assert message.count("ckpt-2") == 1  # names the last good checkpoint
    # No checkpoint of the diverged weights: ckpt-2 is still the latest, and it scores.
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")
    model, run = load_trained_model(str(tmp_path))
    sequences = SequenceSource(run.data, run.max_length).dataset(run.codec, "test", 2)
    result = evaluate_bpd(model, run.codec, sequences, run.chunking.chunk_size,
                          run.chunking.overlap)
    assert np.isfinite(result["bpd"]) and result["bpd"] > 0


def test_an_unwritable_model_dir_fails_before_any_data_is_read(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    reads = []
    monkeypatch.setattr(SequenceSource, "dataset",
                        lambda *args, **kwargs: reads.append(args))
    with pytest.raises(OSError, match=f"model_dir '{blocker}/run' is not writable"):
        _train(blocker / "run", "train.total_steps = 2")
    assert reads == []


def test_an_empty_data_source_is_named(tmp_path):
    with pytest.raises(ValueError, match="data source 'shapes' split 'train' yields no images"):
        _train(tmp_path, "train.total_steps = 2", "build_sequences.num_examples = 0")


DETERMINISM = r"""
import sys, json, gin
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
import tensorflow as tf
from dctformer_tf.train import experiment
files, bindings, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
runs = []
for name in ("a", "b"):
    gin.clear_config()
    gin.parse_config_files_and_bindings(files, bindings + [f"train.model_dir = '{out}/{name}'"])
    experiment.train()
    events = EventAccumulator(f"{out}/{name}/tensorboard/train",
                              size_guidance={"tensors": 0}).Reload()
    runs.append([float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("train/loss")])
print(json.dumps(runs))
"""


@pytest.mark.slow
def test_same_seed_same_first_20_losses_with_op_determinism(tmp_path):
    # Op determinism is process-wide and permanent: the two runs get a process of their own.
    bindings = TINY_BINDINGS + ["train.total_steps = 20", "train.steps_per_epoch = 20",
                                "train.deterministic = True", "train.seed = 3"]
    result = subprocess.run([sys.executable, "-c", DETERMINISM, json.dumps(TINY),
                             json.dumps(bindings), str(tmp_path)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(first) == 20 and all(np.isfinite(first))
    assert first == second
    assert len(set(first)) > 10  # the losses move: the comparison is not of constants


@pytest.mark.slow
def test_sigkill_during_frequent_saves_never_loses_more_than_one_interval(tmp_path):
    """Ten kills at random moments of a run that checkpoints every step; each restart
    resumes from a checkpoint no older than the last one published before the kill."""
    command = [sys.executable, "-m", "dctformer_tf.cli.main", "train", "--model_dir",
               str(tmp_path)]
    for path in TINY:
        command += ["--gin_file", path]
    for binding in TINY_BINDINGS + ["train.total_steps = 10000", "train.steps_per_epoch = 1",
                                    "train.keep_checkpoints = 2"]:
        command += ["--gin_bindings", binding]
    rng = random.Random(0)
    state = tmp_path / "checkpoints" / "checkpoint"
    published, resumed = 0, []
    for _ in range(10):
        log_path = tmp_path / "log.txt"
        with open(log_path, "w") as log_file:
            process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
            deadline = time.time() + 300
            while not (state.exists() and _latest_step(tmp_path) > published):
                assert process.poll() is None, log_path.read_text()[-3000:]
                assert time.time() < deadline, "no new checkpoint"
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
            before = _latest_step(tmp_path)
            process.send_signal(signal.SIGKILL)
            process.wait()
        text = log_path.read_text()
        if resumed or published:
            match = re.search(r"Resuming at step (\d+)", text)
            assert match, text[-3000:]
            resumed.append(int(match.group(1)))
            assert resumed[-1] >= published  # never older than what was published
        published = max(before, _latest_step(tmp_path))
    assert len(resumed) == 9


def _latest_step(model_dir) -> int:
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def test_too_little_disk_for_two_checkpoints_is_named(tmp_path, monkeypatch):
    import collections
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OSError, match=f"model_dir '{tmp_path}': 0.00 GB free, two checkpoints "
                                      "of this model need about 0.01 GB"):
        _train(tmp_path, "train.total_steps = 2")
    assert not os.path.exists(tmp_path / "checkpoints" / "checkpoint")


@pytest.mark.slow  # a whole training subprocess, for one warning that must not appear
def test_the_data_check_leaves_a_cached_dataset_whole(tmp_path):
    """The pre-flight data check reads one image outside the cache: reading a cached dataset
    partly would make TensorFlow discard the cache, and say so in a C++ warning (hidden in
    this test process, so the run gets one of its own with TensorFlow's logs on)."""
    command = [sys.executable, "-m", "dctformer_tf.cli.main", "--verbose", "train",
               "--model_dir", str(tmp_path)]
    for path in TINY:
        command += ["--gin_file", path]
    for binding in TINY_BINDINGS + ["train.total_steps = 2", "train.steps_per_epoch = 2",
                                    "build_sequences.cache = True"]:
        command += ["--gin_bindings", binding]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done at step 2" in result.stderr  # the run's own lines came through
    assert "did not fully read the dataset being cached" not in result.stderr


@pytest.mark.slow  # the default tier covers each half: a damaged latest checkpoint skipped on
# resuming, and a diverging run naming its last good checkpoint
def test_after_a_skipped_checkpoint_the_divergence_names_the_one_restored(tmp_path):
    _train(tmp_path, "train.total_steps = 4", "train.steps_per_epoch = 2")
    path = _data_file(tmp_path, 4)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(TrainingDiverged) as raised:
        _train(tmp_path, "train.total_steps = 12", "train.steps_per_epoch = 2",
               "train.learning_rate = 1e35", "train.warmup_steps = 0")
    message = str(raised.value)
    assert "The last good checkpoint is" in message
    assert message.count("ckpt-2") == 1 and "ckpt-4" not in message


@pytest.mark.parametrize("caller_had_it", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_deterministic_training_leaves_op_determinism_as_the_caller_had_it(tmp_path,
                                                                           caller_had_it):
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()
    if caller_had_it:
        tf.config.experimental.enable_op_determinism()
    try:
        _train(tmp_path, "train.total_steps = 2", "train.steps_per_epoch = 2",
               "train.deterministic = True")
        assert tf_config.is_op_determinism_enabled() == caller_had_it
    finally:
        tf_config.disable_op_determinism()
