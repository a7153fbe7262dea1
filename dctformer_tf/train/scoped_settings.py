"""Process-wide settings a training run changes for its duration, each restored to the
caller's value when the run returns or raises (a notebook that trains and then builds another
model gets its own settings back)."""

import contextlib

import keras
import tensorflow as tf


@contextlib.contextmanager
def op_determinism():
    """TensorFlow's op determinism on inside the block, as the caller had it after."""
    # The public API can turn it on only; reading and turning it off are in the module that
    # `tf.config.experimental.enable_op_determinism` itself comes from.
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_on:
            tf_config.disable_op_determinism()


@contextlib.contextmanager
def dtype_policy(name: str | None):
    """Keras' global dtype policy set to `name` (None: unchanged) for the block, and the
    previous one restored after it, also when the block raises."""
    previous = keras.config.dtype_policy()
    if name is not None:
        keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
