import keras
import numpy as np
import pytest

from dctformer_tf.model.partial_image_encoder import (
    PartialImageEncoder,
    encoder_cell_index,
    encoder_grid_size,
    encoder_padding,
)
from dctformer_tf.model.value_decoder import gather_encoder_cells
from tests.model.layer_test_case import run_layer_test, set_random_alphas

# (G, kernel, stride): small grids, strides that do not divide G, and Table 3 geometries
# (LSUN 48/4/2, FFHQ 64/6/3, ImageNet 48/8/4, OpenImages 80/6/3, CLEVR 60/6/3).
GEOMETRIES = [(5, 4, 2), (4, 3, 3), (7, 3, 3), (8, 2, 2), (9, 8, 4), (5, 5, 5)]
TABLE3_GEOMETRIES = [(48, 4, 2), (64, 6, 3), (48, 8, 4), (80, 6, 3), (60, 6, 3), (64, 4, 2)]


def tiny_encoder(grid_size=5, conv_kernel=4, conv_stride=2, **overrides):
    kwargs = dict(
        grid_size=grid_size,
        block_size=1,
        clip=3,
        d_model=16,
        num_heads=2,
        layer_spec=[(1, 1)],
        conv_kernel=conv_kernel,
        conv_stride=conv_stride,
        key_size=8,
    )
    return PartialImageEncoder(**{**kwargs, **overrides})


def reference_cells(grid_size, stride):
    """Hand-written: cell p -> (row, col) -> token (row // s, col // s) on a ceil(G/s) grid."""
    side = -(-grid_size // stride)
    cells = []
    for p in range(grid_size * grid_size):
        row, col = p // grid_size, p % grid_size
        cells.append((row // stride) * side + col // stride)
    return np.array(cells)


def test_layer_contract():
    encoder = run_layer_test(
        PartialImageEncoder,
        dict(
            grid_size=5,
            block_size=2,
            clip=3,
            d_model=16,
            num_heads=2,
            layer_spec=[(1, 1)],
            conv_kernel=4,
            conv_stride=2,
            key_size=8,
            num_classes=3,
            value_scale="dequantized",
        ),
        {
            "partial_image": np.random.default_rng(0).normal(size=(2, 5, 5, 12)).astype("f4"),
            "label": np.array([0, 2], "int32"),
        },
        (2, 9, 16),
    )
    assert encoder.num_tokens == 9


@pytest.mark.parametrize("grid_size, kernel, stride", GEOMETRIES + TABLE3_GEOMETRIES)
def test_cell_index_of_every_position(grid_size, kernel, stride):
    positions = np.arange(grid_size * grid_size).reshape(grid_size, grid_size)
    cells = np.asarray(encoder_cell_index(positions, grid_size, stride))
    np.testing.assert_array_equal(cells.ravel(), reference_cells(grid_size, stride))
    side = encoder_grid_size(grid_size, stride)
    assert side == int(np.ceil(grid_size / stride))
    assert cells[-1, -1] == side * side - 1  # last row and column: the last token, no clamping


@pytest.mark.parametrize("grid_size, kernel, stride", GEOMETRIES + TABLE3_GEOMETRIES)
def test_cell_token_sees_its_position(grid_size, kernel, stride):
    """Run the encoder's own padding + conv on one-hot images: the token that the gather picks
    for position p must have p inside its receptive field (exactly: inside its stride block
    once the kernel is cut to the stride)."""
    encoder = tiny_encoder(grid_size, kernel, stride, d_model=1)
    encoder.build((None, grid_size, grid_size, 3))
    # Kernel cut to the stride block it is centred on: each token then sees exactly its own
    # s x s block of the padded grid, so "seen" identifies one token per position.
    before, after = encoder.padding
    kernel = np.zeros(encoder.conv.kernel.shape, "float32")
    offset = before  # token j covers padded [j·s, j·s + k); its block starts `before` in
    kernel[offset : offset + stride, offset : offset + stride] = 1.0
    encoder.conv.kernel.assign(kernel)
    encoder.conv.bias.assign(np.zeros(encoder.conv.bias.shape, "float32"))
    num_positions = grid_size * grid_size
    one_hot = np.eye(num_positions, dtype="float32").reshape(-1, grid_size, grid_size, 1)
    one_hot = np.repeat(one_hot, 3, axis=-1)  # [P, G, G, C]
    padded = np.pad(one_hot, ((0, 0), (before, after), (before, after), (0, 0)))
    seen = np.asarray(encoder.conv(padded)).reshape(num_positions, -1) > 0  # [P, N]
    assert seen.shape[1] == encoder.num_tokens
    cells = np.asarray(encoder_cell_index(np.arange(num_positions), grid_size, stride))
    assert seen[np.arange(num_positions), cells].all()
    assert (seen.sum(axis=1) == 1).all(), "a position is seen by more than one token"


@pytest.mark.parametrize("grid_size, kernel, stride", [(8, 4, 2), (48, 4, 2), (9, 6, 3)])
def test_padding_equals_same_when_stride_divides_grid(grid_size, kernel, stride):
    assert grid_size % stride == 0
    total = max(kernel - stride, 0)
    assert encoder_padding(grid_size, kernel, stride) == (total // 2, total - total // 2)
    image = np.random.default_rng(0).normal(size=(1, grid_size, grid_size, 2)).astype("float32")
    weights = np.random.default_rng(1).normal(size=(kernel, kernel, 2, 3)).astype("float32")
    before, after = encoder_padding(grid_size, kernel, stride)
    ours = keras.ops.conv(
        np.pad(image, ((0, 0), (before, after), (before, after), (0, 0))), weights, stride
    )
    same = keras.ops.conv(image, weights, stride, padding="same")
    np.testing.assert_allclose(ours, same, rtol=1e-5, atol=1e-5)


def test_gather_picks_the_cell_vector():
    grid_size, stride = 5, 2
    side = encoder_grid_size(grid_size, stride)
    tokens = np.arange(side * side, dtype="float32")[None, :, None] * np.ones((2, 1, 4), "f4")
    tokens[1] *= -1.0
    positions = np.array([np.arange(25), np.arange(25)[::-1]])
    gathered = np.asarray(gather_encoder_cells(tokens, positions, grid_size, stride))
    assert gathered.shape == (2, 25, 4)
    np.testing.assert_array_equal(gathered[0, :, 0], reference_cells(grid_size, stride))
    np.testing.assert_array_equal(gathered[1, :, 0], -reference_cells(grid_size, stride)[::-1])


def test_value_scales_agree(rng):
    quantized = tiny_encoder(clip=3, block_size=2)
    dequantized = tiny_encoder(clip=3, block_size=2, value_scale="dequantized")
    image = rng.integers(-3, 4, (2, 5, 5, 12)).astype("float32")
    quantized.build(image.shape)
    dequantized.build(image.shape)
    set_random_alphas(quantized)
    dequantized.set_weights(quantized.get_weights())
    np.testing.assert_allclose(
        dequantized(image * (2 * 128) / 3), quantized(image), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(ValueError):
        tiny_encoder(value_scale="raw")


def test_signed_log_input_is_the_linear_encoder_on_log_values(rng):
    """"signed_log" feeds the conv sign(v)·log(1 + |v|) / log(1 + clip): the same encoder
    with "linear" input, given clip · that, must produce the same tokens; and small values
    get a far larger share of the input range than linearly (1 of clip 1200: 0.098)."""
    clip = 1200
    linear = tiny_encoder(clip=clip, block_size=2)
    logged = tiny_encoder(clip=clip, block_size=2, input_transform="signed_log")
    image = rng.integers(-clip, clip + 1, (2, 5, 5, 12)).astype("float32")
    image[0, :, :, 1:] = rng.integers(-3, 4, (5, 5, 11))  # small AC-like values
    linear.build(image.shape)
    logged.build(image.shape)
    set_random_alphas(linear)
    logged.set_weights(linear.get_weights())
    by_hand = np.sign(image) * np.log1p(np.abs(image)) / np.log1p(clip) * clip
    np.testing.assert_allclose(logged(image), linear(by_hand), rtol=1e-4, atol=1e-5)
    # A lone value of 1 moves the tokens far more under "signed_log" (input 0.098) than
    # linearly (input 1/1200): the small AC values reach the encoder.
    zero = np.zeros((1, 5, 5, 12), "float32")
    one = zero.copy()
    one[0, 2, 2, 5] = 1.0
    moved = {name: float(np.abs(np.asarray(enc(one)) - np.asarray(enc(zero))).max())
             for name, enc in (("linear", linear), ("signed_log", logged))}
    assert moved["signed_log"] > 20 * moved["linear"]
    with pytest.raises(ValueError, match="input_transform"):
        tiny_encoder(input_transform="log")


def test_label_and_image_change_the_tokens(rng):
    encoder = tiny_encoder(num_classes=4)
    image = rng.integers(-3, 4, (1, 5, 5, 3)).astype("int32")
    base = np.asarray(encoder(image, label=np.array([0])))
    assert np.abs(encoder(image, label=np.array([1])) - base).max() > 1e-3
    image[0, 4, 4, 0] += 1  # the last cell
    changed = np.abs(np.asarray(encoder(image, label=np.array([0]))) - base).max(-1)[0]
    assert changed[-1] > 1e-4  # the bottom-right token sees it
