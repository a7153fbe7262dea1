"""A tiny untrained `DCTransformer` whose samples look like images (tests/conditional)."""

import keras
import numpy as np
import pytest

from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.model.random_init import favour_long_samples, open_rezero_branches

TINY = ModelConfig(resolution=32, block_size=8, clip=1200, d_model=32, num_heads=2,
                   encoder_spec=[(1, 1)], channel_spec=[(1, 1)], position_spec=[(1, 1)],
                   value_spec=[(1, 1)], conv_kernel=2, conv_stride=2, chunk_size=24,
                   chunk_overlap=8)
MAX_LENGTH = 256


def build_tiny_model(config: ModelConfig = TINY):
    """As `tiny_model` of tests/sampling/test_sampler.py (random ReZero alphas, channel
    logits sloping down so that samples span chunks), plus value logits falling with |v|:
    an untrained value head draws uniformly over ±clip quantization steps and saturates every
    pixel, and clipping at 0 and 255 is outside what a forced prefix can guarantee."""
    from dctformer_tf.model import DCTransformer

    keras.utils.set_random_seed(0)
    model = DCTransformer(**config.model_kwargs())
    model.build(config.input_shapes())
    open_rezero_branches(model, seed=1)
    favour_long_samples(model)
    bias = model.value_decoder.output_dense.bias
    bias.assign(bias.numpy() - 2.0 * np.abs(np.arange(bias.shape[0]) - config.clip))
    return model


@pytest.fixture(scope="session")
def tiny_model():
    return build_tiny_model()
