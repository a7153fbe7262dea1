"""What accelerators need of the compiled steps: no float64 and no host op in the train,
score and sample steps; callbacks that read the device only at their intervals; and
`steps_per_execution` that trains and logs on the same steps."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dctformer_tf.dct import SparseCodec
from dctformer_tf.export.saved_model import ExportModule
from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.train.callbacks import StopAtTokenBudget, StopOnNonFinite, TensorBoardScalars
from dctformer_tf.train.sample_callback import SampleGrid
from dctformer_tf.train.trainer import DCTransformerTrainer
from tests.train.test_experiment import _train

CONFIG = ModelConfig(resolution=16, block_size=8, clip=200, d_model=16, num_heads=2,
                     key_size=8, encoder_spec=[(1, 1)], channel_spec=[(1, 1)],
                     position_spec=[(1, 1)], value_spec=[(1, 1)], conv_kernel=2,
                     conv_stride=2, chunk_size=16, chunk_overlap=8, num_classes=3)
HOST_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc", "NumpyFunction"}


def _graph_violations(concrete) -> list:
    """(op type, op name) of every float64 value and host op in a concrete function's graph,
    nested functions (loop bodies, branches) included."""
    graph_def = concrete.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes += list(function.node_def)
    found = []
    for node in nodes:
        if node.op in HOST_OPS:
            found.append((node.op, node.name))
        for key, value in node.attr.items():
            dtypes = list(value.list.type) + ([value.type] if value.type else [])
            if tf.float64.as_datatype_enum in dtypes:
                found.append((node.op, f"{node.name} ({key})"))
    return found


@pytest.fixture(scope="module")
def trainer_and_batch():
    model = DCTransformerTrainer(**CONFIG.model_kwargs())
    model.build(CONFIG.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    t, b = CONFIG.window, 2
    batch = {"partial_image": tf.zeros((b, 2, 2, 192), tf.int32),
             "inputs": tf.zeros((b, t, 3), tf.int32), "targets": tf.zeros((b, t, 3), tf.int32),
             "label": tf.zeros((b,), tf.int32), "loss_mask": tf.ones((b, t), tf.float32)}
    return model, batch


def test_the_reader_finds_float64_and_host_ops():
    def bad(x):
        y = tf.numpy_function(lambda a: a, [x], tf.float32)
        return tf.cast(tf.cast(y, tf.float64) * 2.0, tf.float32)

    concrete = tf.function(bad).get_concrete_function(tf.TensorSpec([2], tf.float32))
    kinds = {op for op, _ in _graph_violations(concrete)}
    assert "PyFunc" in kinds and "Cast" in kinds


def test_train_step_has_no_float64_and_no_host_op(trainer_and_batch):
    model, batch = trainer_and_batch
    concrete = tf.function(model.train_step).get_concrete_function(batch)
    assert _graph_violations(concrete) == []


def test_train_step_on_compact_batches_has_no_float64_and_no_host_op(trainer_and_batch):
    """What the input pipeline feeds: the step unpacks and scatters on the device."""
    from dctformer_tf.data.chunking import chunk_dataset
    from dctformer_tf.dct import SparseCodec

    model, _ = trainer_and_batch
    codec = SparseCodec(resolution=CONFIG.resolution, clip=CONFIG.clip)
    empty = np.zeros((300, 3), np.int32)
    empty[0] = (codec.eos, 0, 0)
    sequences = tf.data.Dataset.from_tensors({"triples": empty, "length": np.int32(1),
                                              "content_hw": np.zeros(2, np.int32),
                                              "label": np.int32(0)})
    batch = next(iter(chunk_dataset(sequences.repeat(), codec, CONFIG.chunk_size,
                                    CONFIG.chunk_overlap, 2, seed=0)))
    assert "partial_image" not in batch
    concrete = tf.function(model.train_step).get_concrete_function(batch)
    assert _graph_violations(concrete) == []


def test_score_and_sample_steps_have_no_float64_and_no_host_op(trainer_and_batch):
    """The score signature, and the sampler's per-chunk step (what runs on the device, once
    per chunk). The pixels of finished samples are decoded after the loop in float64, for
    bit-exactness with the numpy codec (docs/design.md §5); that decode is not a step."""
    model, _ = trainer_and_batch
    codec = SparseCodec(block_size=8, quality=75, clip=200, resolution=16)
    module = ExportModule(model, codec, CONFIG.chunk_size, CONFIG.chunk_overlap, 64)
    assert _graph_violations(module.score.get_concrete_function()) == []
    b, int32 = 2, tf.int32
    state = {"triples": tf.TensorSpec([b, 64, 3], int32), "length": tf.TensorSpec([b], int32),
             "done": tf.TensorSpec([b], tf.bool), "forced_length": tf.TensorSpec([b], int32),
             "cells": tf.TensorSpec([b, 2], int32), "label": tf.TensorSpec([b], int32),
             "min_channel": tf.TensorSpec([b], int32)}
    chunk_step = module.sampler._chunk_fn.get_concrete_function(
        state, tf.TensorSpec([], int32), tf.TensorSpec([2], int32),
        tf.TensorSpec([3], tf.float32), tf.TensorSpec([3], int32), tf.TensorSpec([3], tf.float32))
    assert _graph_violations(chunk_step) == []


class _Counted:
    """A device value whose reads (`numpy()`, `float()`, `int()`) are counted per step."""

    def __init__(self, value, reads, name):
        self.value, self.reads, self.name = value, reads, name

    def _read(self):
        self.reads.append(self.name)
        return self.value

    def numpy(self):
        return np.asarray(self._read())

    def __float__(self):
        return float(self._read())


class _StubModel:
    def __init__(self, reads):
        self.optimizer = type("Optimizer", (), {})()
        self.optimizer.learning_rate = _Counted(1e-3, reads, "learning_rate")
        self.optimizer.iterations = _Counted(0, reads, "iterations")
        self.tokens_seen = _Counted(0, reads, "tokens_seen")
        self.nonfinite = _Monitor(reads)
        self.stop_training = False


class _Monitor:
    """`NonFiniteMonitor.first_step` reads the device: counted, and every step was finite."""

    def __init__(self, reads):
        self.reads = reads

    def first_step(self):
        self.reads.append("nonfinite")


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_callbacks_read_the_device_only_where_they_log(tmp_path, steps_per_execution):
    reads = []
    model = _StubModel(reads)
    manager = type("Manager", (), {"latest_checkpoint": None})()
    run = type("Run", (), {"model": dataclasses.replace(CONFIG, num_classes=0)})()
    grid = SampleGrid(run, str(tmp_path), every_steps=6)
    grid.write_grid = lambda step: reads.append(f"grid@{step}")
    callbacks = [TensorBoardScalars(str(tmp_path), every_steps=4),
                 StopAtTokenBudget(1e9, every_steps=5), StopOnNonFinite(manager, 5), grid]
    for callback in callbacks:
        callback.set_model(model)
        callback.set_params({"steps": 12})
    callbacks[0].on_train_begin()
    per_step = {}
    for end in range(steps_per_execution - 1, 12, steps_per_execution):
        for callback in callbacks:
            callback.on_epoch_begin(0)
            before = len(reads)
            callback.on_train_batch_end(end, {"loss": 1.0})
            per_step.setdefault(end + 1, []).extend(reads[before:])
    expected = {1: {4: ["learning_rate"], 5: ["tokens_seen", "nonfinite"], 6: ["grid@6"],
                    8: ["learning_rate"], 10: ["tokens_seen", "nonfinite"],
                    12: ["learning_rate", "grid@12"]},
                3: {6: ["learning_rate", "tokens_seen", "nonfinite", "grid@6"],
                    9: ["learning_rate"], 12: ["learning_rate", "tokens_seen", "nonfinite",
                                               "grid@12"]}}[steps_per_execution]
    assert {step: r for step, r in per_step.items() if r} == expected


def test_steps_per_execution_trains_and_logs_on_step_multiples(tmp_path):
    history = _train(tmp_path, "train.total_steps = 8", "train.steps_per_epoch = 8",
                     "train.steps_per_execution = 4", "train.log_every = 2")
    assert history.model.optimizer.iterations.numpy() == 8
    events = EventAccumulator(str(tmp_path / "tensorboard" / "train"),
                              size_guidance={"tensors": 0}).Reload()
    # Logged once per execution of 4 steps, at the step that ends it.
    assert [e.step for e in events.Tensors("train/loss")] == [4, 8]
    assert os.path.exists(tmp_path / "checkpoints" / "ckpt-8.index")


def test_a_resumed_run_counts_intervals_from_its_first_step(tmp_path):
    """Resumed at epoch 1 of 12-step epochs: the first execution (step 13) crosses no
    interval of 4, the one ending at step 16 does."""
    reads = []
    callback = TensorBoardScalars(str(tmp_path), every_steps=4)
    callback.set_model(_StubModel(reads))
    callback.set_params({"steps": 12})
    callback.on_train_begin()
    callback.on_epoch_begin(1)
    callback.on_train_batch_end(0, {"loss": 1.0})
    assert (callback.step, reads) == (13, [])
    callback.on_train_batch_end(3, {"loss": 1.0})
    assert (callback.step, reads) == (16, ["learning_rate"])
