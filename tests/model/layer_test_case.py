"""Shared checks for the model's Keras layers (after keras-hub's `run_layer_test`), tiny models
and helpers used across tests/model."""

import keras
import numpy as np
import tensorflow as tf

from dctformer_tf.model.dctransformer import DCTransformer


def run_layer_test(layer_cls, init_kwargs, input_data, expected_output_shape, run_training=True):
    """Config round trip, eager call, symbolic (functional) call and one `fit` step.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        input_data: dict `{call_argument: numpy array}`; the first entry is passed
            positionally, the rest as keyword arguments.
        expected_output_shape: shape of the (first) output.
        run_training: whether to fit one step on an MSE loss.
    """
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config
    for name, value in init_kwargs.items():
        if isinstance(value, int | float | str | bool):
            assert getattr(layer, name) == value, name

    names = list(input_data)

    def call(target, tensors):
        outputs = target(tensors[names[0]], **{name: tensors[name] for name in names[1:]})
        return outputs[0] if isinstance(outputs, tuple) else outputs

    eager = call(layer, input_data)
    assert tuple(eager.shape) == tuple(expected_output_shape)

    symbolic_inputs = {
        name: keras.Input(shape=value.shape[1:], dtype=str(value.dtype), name=name)
        for name, value in input_data.items()
    }
    model = keras.Model(symbolic_inputs, call(layer, symbolic_inputs))
    assert tuple(model.output.shape[1:]) == tuple(expected_output_shape[1:])
    np.testing.assert_allclose(model(input_data), eager, rtol=1e-5, atol=1e-6)

    if run_training:
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        target = np.random.default_rng(0).normal(size=expected_output_shape).astype("float32")
        history = model.fit(input_data, target, batch_size=len(target), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
    return layer


def set_random_alphas(layer, seed=0, scale=0.5):
    """Gives every ReZero `alpha` a nonzero random value, so that every branch matters."""
    rng = np.random.default_rng(seed)
    alphas = [w for w in layer.weights if w.name == "alpha"]
    assert alphas
    for alpha in alphas:
        alpha.assign(scale * rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5))


def numpy_layer_norm(x, gamma, beta, epsilon):
    """Independent layer norm over the last axis, in float64."""
    x = np.asarray(x, np.float64)
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


# A tiny model that still exercises the awkward cases: heads * key_size != d_model, an odd grid
# that the stride does not divide, and class conditioning.
TINY = dict(
    block_size=2,
    grid_size=5,
    clip=3,
    d_model=32,
    num_heads=3,
    key_size=16,
    encoder_spec=[(1, 1)],
    channel_spec=[(1, 1)],
    position_spec=[(1, 1)],
    value_spec=[(1, 2)],
    conv_kernel=4,
    conv_stride=2,
    window=12,
    num_classes=3,
)


def tiny_model(**overrides) -> DCTransformer:
    return DCTransformer(**{**TINY, **overrides})


def random_example(model: DCTransformer, batch_size=2, length=None, seed=0, dtype="int32"):
    """A random input dict; `inputs` is `targets` shifted right with the START triple."""
    rng = np.random.default_rng(seed)
    length = model.window if length is None else length
    g, c = model.grid_size, model.num_channels
    targets = np.stack(
        [
            rng.integers(0, model.num_channels + 1, (batch_size, length)),
            rng.integers(0, model.num_positions, (batch_size, length)),
            rng.integers(0, model.num_values, (batch_size, length)),
        ],
        axis=-1,
    ).astype("int32")
    start = np.broadcast_to(np.array(model.start_triple(), "int32"), (batch_size, 1, 3))
    example = {
        "partial_image": rng.integers(-model.clip, model.clip + 1, (batch_size, g, g, c)).astype(
            dtype
        ),
        "inputs": np.concatenate([start, targets[:, :-1]], axis=1),
        "targets": targets,
    }
    if model.num_classes:
        example["label"] = rng.integers(0, model.num_classes, (batch_size,)).astype("int32")
    return example


def forward_fn(model):
    """The model's inference forward pass as a tf.function (much faster than eager here)."""
    return tf.function(lambda x: model(x, training=False))
