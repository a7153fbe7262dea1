"""The gin-configured trainer end to end on the tiny model: it trains, writes TensorBoard
scalars and the gin text, checkpoints, and resumes instead of starting over."""

import os
import subprocess
import sys
import time

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dctformer_tf.runs import DataSettings, read_run_file
from dctformer_tf.train import experiment, scoped_settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [os.path.join(ROOT, "gin", name) for name in
        ("models/tiny.gin", "data/shapes.gin", "runs/train.gin")]
TINY_BINDINGS = [
    "build_codec.resolution = 32",
    "build_sequences.num_examples = 64",
    "build_sequences.max_length = 1024",
    "train.tokens = None",
    "train.warmup_steps = 2",
    "train.log_every = 1",
    "train.verbose = 0",
]


def _train(model_dir, *bindings):
    gin.clear_config()
    gin.parse_config_files_and_bindings(
        TINY, TINY_BINDINGS + [f"train.model_dir = '{model_dir}'", *bindings]
    )
    try:
        return experiment.train()
    finally:
        gin.clear_config()


def test_tiny_run_trains_logs_and_checkpoints(tmp_path, monkeypatch):
    inputs = []  # (split, batch) of each input function train() builds its data with
    real_input = experiment.sharded_input

    def spy_input(sequences, codec, chunking, policy, split, batch_size, seed, overlong=None):
        inputs.append((split, batch_size))
        return real_input(sequences, codec, chunking, policy, split, batch_size, seed, overlong)

    monkeypatch.setattr(experiment, "sharded_input", spy_input)
    history = _train(tmp_path, "train.total_steps = 6", "train.steps_per_epoch = 3",
                     "train.sample_every = 3", "train.sample_num = 2",
                     "train.sample_max_chunks = 1", "train.bpd_eval_images = 3",
                     "train.adam_beta_2 = 0.95")
    assert inputs == [("train", 8)]  # through the sharded input function (#16)
    optimizer = history.model.optimizer
    assert (optimizer.beta_1, optimizer.beta_2) == (0.9, 0.95)  # the gin option reaches Adam
    losses = history.history["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert losses[1] < losses[0]
    assert os.path.exists(tmp_path / "checkpoints" / "ckpt-6.index")
    operative = (tmp_path / "operative_config.gin").read_text()
    assert "D_MODEL = 32" in operative and "architecture.d_model = %D_MODEL" in operative
    run = read_run_file(str(tmp_path))
    assert (run.codec.resolution, run.model.d_model, run.max_length) == (32, 32, 1024)
    assert run.data == DataSettings("shapes")

    events = EventAccumulator(str(tmp_path / "tensorboard" / "train"),
                              size_guidance={"tensors": 0}).Reload()
    tags = set(events.Tags()["tensors"])
    for name in ("loss", "channel_loss", "position_loss", "value_loss", "bits_per_token",
                 "learning_rate", "tokens_seen"):
        assert f"train/{name}" in tags, f"missing scalar train/{name} in {sorted(tags)}"
    steps = [e.step for e in events.Tensors("train/loss")]
    assert steps == list(range(1, 7))
    text = events.Tensors("gin/operative_config")[0].tensor_proto.string_val[0].decode()
    assert "BATCH_SIZE = 8" in text and "train.batch_size = %BATCH_SIZE" in text
    learning_rates = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("train/learning_rate")]
    assert learning_rates[0] < learning_rates[1]  # warming up over the first 2 steps

    samples = EventAccumulator(str(tmp_path / "tensorboard" / "samples"),
                               size_guidance={"tensors": 0}).Reload()
    grids = samples.Tensors("samples/grid")
    assert [e.step for e in grids] == [3, 6]
    width, height, png = grids[0].tensor_proto.string_val  # TF image summaries: w, h, PNG
    assert (int(width), int(height)) == (2 * 32 + 2, 32)
    assert tf.io.decode_png(png).shape == (32, 66, 3)

    # Whole-sequence held-out bpd after each epoch, its parts adding up.
    held_out = EventAccumulator(str(tmp_path / "tensorboard" / "eval"),
                                size_guidance={"tensors": 0}).Reload()

    def values(tag):
        return [float(tf.make_ndarray(e.tensor_proto)) for e in held_out.Tensors(tag)]

    assert [e.step for e in held_out.Tensors("eval/bpd")] == [3, 6]
    parts = np.add(np.add(values("eval/bpd_channel"), values("eval/bpd_position")),
                   values("eval/bpd_value"))
    np.testing.assert_allclose(parts, values("eval/bpd"), rtol=1e-5)
    assert all(0 < b < 20 for b in values("eval/bpd"))


def test_rerun_resumes_from_the_last_checkpoint(tmp_path, caplog):
    _train(tmp_path, "train.total_steps = 3", "train.steps_per_epoch = 3")
    caplog.set_level("INFO", logger="dctformer_tf.train")
    history = _train(tmp_path, "train.total_steps = 6", "train.steps_per_epoch = 3")
    assert "Resuming at step 3 (epoch 1)" in caplog.text
    assert len(history.history["loss"]) == 1  # only the second epoch ran
    assert os.path.exists(tmp_path / "checkpoints" / "ckpt-6.index")


def test_run_length_needs_exactly_one_of_steps_and_tokens(tmp_path):
    with pytest.raises(ValueError, match="exactly one of total_steps and tokens"):
        _train(tmp_path, "train.total_steps = 3", "train.tokens = 1000")


def test_mixed_precision_policy_is_the_callers_again_after_train(tmp_path):
    """`train.mixed_precision` sets Keras' global policy only for the run: a failed run (here
    an unknown strategy, found after the policy is set) leaves the caller's policy."""
    keras.config.set_dtype_policy("float32")
    with pytest.raises(ValueError, match="bogus"):
        _train(tmp_path, "train.total_steps = 3", "train.mixed_precision = True",
               "train.strategy = 'bogus'")
    assert keras.config.dtype_policy().name == "float32"


def test_dtype_policy_block_sets_and_restores_the_policy():
    keras.config.set_dtype_policy("float32")
    with scoped_settings.dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        with scoped_settings.dtype_policy(None):  # None leaves the policy as it is
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(RuntimeError), scoped_settings.dtype_policy("mixed_bfloat16"):
        raise RuntimeError
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(tmp_path):
    """SIGKILL after the first checkpoint; the same command resumes from it and finishes."""
    command = [sys.executable, "-m", "dctformer_tf.cli.main", "train", "--model_dir", str(tmp_path)]
    for path in TINY:
        command += ["--gin_file", path]
    for binding in TINY_BINDINGS + ["train.total_steps = 40", "train.steps_per_epoch = 4"]:
        command += ["--gin_bindings", binding]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not (tmp_path / "checkpoints" / "checkpoint").exists():
        assert time.time() < deadline and first.poll() is None, "no checkpoint was written"
        time.sleep(0.2)
    first.kill()
    first.wait()
    saved = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    saved_step = int(saved.rsplit("-", 1)[1])
    assert 0 < saved_step < 40
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"Resuming at step {saved_step}" in second.stderr
    assert "Done at step 40" in second.stderr


def _free_ports(n):
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_run_of_two_local_processes(tmp_path):
    """MultiWorkerMirroredStrategy: two worker processes on loopback train a few steps."""
    import json

    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    command = [sys.executable, "-m", "dctformer_tf.cli.main", "train", "--model_dir",
               str(tmp_path), "--strategy", "multi_worker"]
    for path in TINY:
        command += ["--gin_file", path]
    for binding in TINY_BINDINGS + ["train.total_steps = 4", "train.steps_per_epoch = 2"]:
        command += ["--gin_bindings", binding]
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    for w, out in zip(workers, outputs, strict=True):
        assert w.returncode == 0, out[-3000:]
    assert all("Done at step 4" in out for out in outputs)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-4")
    assert (tmp_path / "worker_1_scratch").is_dir()


@pytest.mark.parametrize("binding", ["architecture.resolution = 64", "architecture.clip = 255",
                                     "architecture.chunk_size = 32",
                                     "build_chunks.chunk_size = 32"])
def test_codec_and_chunking_settings_are_bound_in_one_place_only(tmp_path, binding):
    """A second binding of a codec or chunking setting (the model's or the data's own copy)
    is a gin error: there is no copy that could disagree."""
    with pytest.raises(ValueError, match="No configurable matching|doesn't have a parameter|"
                       "come from the codec and the chunking|no setting"):
        _train(tmp_path, "train.total_steps = 3", binding)
    assert not os.listdir(tmp_path)  # refused before anything was written


@pytest.mark.parametrize("terminal, verbose, expected", [(True, "auto", 1), (False, "auto", 2),
                                                        (True, 0, 0), (False, "1", 1)])
def test_fit_verbosity_is_a_progress_bar_only_on_a_terminal(monkeypatch, terminal, verbose,
                                                             expected):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    assert experiment.fit_verbosity(verbose) == expected
