"""Checks that need a GPU or TPU (`pytest -m accelerator`; skipped without one, see
tests/conftest.py). `tools/accelerator_check.sh` runs them first on a lent accelerator.

They compare the accelerator against the CPU on the same weights and batch, so a kernel or
XLA difference on the device shows as a number, not as a vague failure later in a run."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.dct import SparseCodec
from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.model.random_init import favour_long_samples, open_rezero_branches
from dctformer_tf.sampling import Sampler, SamplingSettings
from dctformer_tf.train.trainer import DCTransformerTrainer

pytestmark = pytest.mark.accelerator

CONFIG = ModelConfig(resolution=32, block_size=8, clip=255, d_model=64, num_heads=4,
                     key_size=16, encoder_spec=[(1, 1)], channel_spec=[(1, 1)],
                     position_spec=[(1, 1)], value_spec=[(1, 1)], conv_kernel=2,
                     conv_stride=2, chunk_size=96, chunk_overlap=32)


def _device() -> str:
    gpus = tf.config.list_logical_devices("GPU")
    tpus = tf.config.list_logical_devices("TPU")
    return (gpus or tpus)[0].name


def _batch(seed=0, batch=8):
    rng = np.random.default_rng(seed)
    t = CONFIG.window
    targets = np.stack([rng.integers(0, 193, (batch, t)), rng.integers(0, 16, (batch, t)),
                        rng.integers(0, 511, (batch, t))], axis=-1).astype(np.int32)
    inputs = np.concatenate([np.tile([[[193, 16, 511]]], (batch, 1, 1)), targets[:, :-1]], 1)
    return {"partial_image": rng.integers(-3, 4, (batch, 4, 4, 192)).astype(np.int32),
            "inputs": inputs.astype(np.int32), "targets": targets,
            "loss_mask": np.ones((batch, t), np.float32)}


def _trainer(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = DCTransformerTrainer(**CONFIG.model_kwargs())
    model.build(CONFIG.input_shapes())
    open_rezero_branches(model, seed=seed)
    return model


def _losses(device: str, jit_compile: bool, weights, steps: int = 3) -> list:
    """Per-step losses of `steps` Adam steps from `weights` on one fixed batch."""
    with tf.device(device):
        model = _trainer()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
        data = tf.data.Dataset.from_tensors(_batch())
        return [model.fit(data, epochs=1, verbose=0, shuffle=False).history["loss"][0]
                for _ in range(steps)]


def test_xla_train_steps_on_the_device_match_the_cpu():
    weights = _trainer().get_weights()
    cpu = _losses("/CPU:0", jit_compile=False, weights=weights)
    device = _losses(_device(), jit_compile=True, weights=weights)
    assert cpu[-1] < cpu[0]  # the steps train: the comparison is of moving numbers
    np.testing.assert_allclose(device, cpu, rtol=2e-3)


def test_cached_sampling_on_the_device_equals_the_reference_loop():
    codec = SparseCodec(block_size=8, quality=75, clip=255, resolution=32)
    with tf.device(_device()):
        model = _trainer(seed=1)
        favour_long_samples(model)
        settings = SamplingSettings.uniform(top_p=0.95)
        results = [Sampler(model, codec, CONFIG.chunk_size, CONFIG.chunk_overlap, 256,
                           cache=cache, jit_compile=True).sample(4, 0, settings, batch_size=4)
                   for cache in (True, False)]
    np.testing.assert_array_equal(results[0].triples, results[1].triples)
    assert results[0].length.max() > CONFIG.chunk_size  # more than one chunk was drawn
