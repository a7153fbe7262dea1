"""`MonitoredAdam` (train/nonfinite.py): it records the first step whose gradients are not
finite and keeps it; and checkpoints written with plain Adam, which lack that record, still
resume (the record starts at "none")."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.runs import restore_checkpoint
from dctformer_tf.train.nonfinite import MonitoredAdam
from dctformer_tf.train.trainer import DCTransformerTrainer

CONFIG = ModelConfig(resolution=32, block_size=8, clip=200, d_model=16, num_heads=2,
                     key_size=8, encoder_spec=[(1, 1)], channel_spec=[(1, 1)],
                     position_spec=[(1, 1)], value_spec=[(1, 1)], conv_kernel=2,
                     conv_stride=1, chunk_size=24, chunk_overlap=8)


def _trainer(optimizer):
    model = DCTransformerTrainer(**CONFIG.model_kwargs())
    model.build(CONFIG.input_shapes())
    model.compile(optimizer=optimizer)
    model.optimizer.build(model.trainable_variables)
    return model


def test_the_first_non_finite_step_is_recorded_and_kept():
    weights = [keras.Variable(np.ones(3, np.float32)), keras.Variable(np.ones(2, np.float32))]
    optimizer = MonitoredAdam(0.1)
    finite = [np.full(3, 0.5, np.float32), np.full(2, 0.5, np.float32)]
    optimizer.apply(finite, weights)
    assert optimizer.first_step() is None
    optimizer.apply([finite[0], np.array([np.nan, 0], np.float32)], weights)  # step 2
    assert optimizer.first_step() == 2
    optimizer.apply([np.array([np.inf, 0, 0], np.float32), finite[1]], weights)  # step 3
    assert optimizer.first_step() == 2  # the first one is kept


def test_a_checkpoint_of_plain_adam_resumes_under_monitored_adam(tmp_path):
    old = _trainer(keras.optimizers.Adam(1e-3))
    old.optimizer.iterations.assign(7)
    path = tf.train.Checkpoint(model=old, optimizer=old.optimizer).save(
        os.path.join(tmp_path, "ckpt"))
    new = _trainer(MonitoredAdam(1e-3))
    restore_checkpoint(tf.train.Checkpoint(model=new, optimizer=new.optimizer), path)
    assert int(new.optimizer.iterations.numpy()) == 7 and new.optimizer.first_step() is None
    for a, b in zip(old.weights, new.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_checkpoint_lacking_a_model_weight_still_fails(tmp_path):
    """The allowance is for the record alone: a missing weight is still an error."""
    old = _trainer(keras.optimizers.Adam(1e-3))
    path = tf.train.Checkpoint(optimizer=old.optimizer).save(os.path.join(tmp_path, "ckpt"))
    new = _trainer(MonitoredAdam(1e-3))
    with pytest.raises(ValueError, match="lacks weights the model has"):
        restore_checkpoint(tf.train.Checkpoint(model=new, optimizer=new.optimizer), path)
