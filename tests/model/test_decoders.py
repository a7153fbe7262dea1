import numpy as np

from dctformer_tf.model.channel_decoder import ChannelDecoder, start_triple
from dctformer_tf.model.position_decoder import PositionDecoder
from dctformer_tf.model.value_decoder import ValueDecoder
from tests.model.layer_test_case import run_layer_test

SHARED = dict(d_model=16, num_heads=2, key_size=8, layer_spec=[(1, 1)], dropout=0.1)


def test_start_triple_lies_past_the_target_vocabularies():
    assert start_triple(num_channels=192, num_positions=2304, num_values=2401) == (193, 2304, 2401)


def test_channel_decoder_contract(rng):
    inputs = np.stack(
        [rng.integers(0, 14, (2, 6)), rng.integers(0, 26, (2, 6)), rng.integers(0, 8, (2, 6))], -1
    ).astype("int32")
    inputs[:, 0] = start_triple(12, 25, 7)
    layer = run_layer_test(
        ChannelDecoder,
        dict(num_channels=12, num_positions=25, num_values=7, window=6, num_classes=3, **SHARED),
        {
            "inputs": inputs,
            "encoder_output": rng.normal(size=(2, 9, 16)).astype("float32"),
            "label": np.array([0, 2], "int32"),
        },
        (2, 6, 13),
    )
    assert layer.channel_embedding.input_dim == 14  # C channels + EOS + START
    assert layer.position_embedding.input_dim == 26
    assert layer.value_embedding.input_dim == 8


def test_position_decoder_contract(rng):
    run_layer_test(
        PositionDecoder,
        dict(num_channels=12, num_positions=25, **SHARED),
        {
            "channel_hidden": rng.normal(size=(2, 6, 16)).astype("float32"),
            "target_channel": rng.integers(0, 13, (2, 6)).astype("int32"),
            "encoder_output": rng.normal(size=(2, 9, 16)).astype("float32"),
        },
        (2, 6, 25),
    )


def test_value_decoder_contract(rng):
    run_layer_test(
        ValueDecoder,
        dict(num_positions=25, num_values=7, grid_size=5, conv_stride=2, **SHARED),
        {
            "position_hidden": rng.normal(size=(2, 6, 16)).astype("float32"),
            "target_position": rng.integers(0, 25, (2, 6)).astype("int32"),
            "encoder_output": rng.normal(size=(2, 9, 16)).astype("float32"),
        },
        (2, 6, 7),
    )
