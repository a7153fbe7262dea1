"""Shared pytest set-up: quiet TF logs, split the CPU into two logical devices for
distribution tests (must happen before TF initialises its devices), deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
except RuntimeError:  # devices already initialised by an earlier import; tests needing 2 skip
    pass


def pytest_collection_modifyitems(config, items):
    has_accel = bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
    skip = pytest.mark.skip(reason="needs a GPU or TPU")
    for item in items:
        if "accelerator" in item.keywords and not has_accel:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def two_cpu_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Several MirroredStrategy instances in one process reuse collective instance keys, and
    their all-reduces then abort with "Shape mismatch in the collective instance": tests
    that run collectives share this one instead of making their own.
    """
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < 2:
        pytest.skip("needs two logical CPUs (tests/conftest.py splits the CPU)")
    return tf.distribute.MirroredStrategy([d.name for d in cpus[:2]])
