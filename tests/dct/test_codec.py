"""The sparse codec: twins bit-exact in every execution mode, the invariants of the
representation, and the round trip against Pillow's JPEG."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dctformer_tf.dct import SequenceOverflowError, SparseCodec, channel_components, np_ops, tf_ops
from tests.dct.images import natural, random_image

CASES = [
    # (codec kwargs, image maker)
    (dict(block_size=8, quality=75), lambda rng: random_image(rng, 48, 80)),
    (dict(block_size=8, quality=50, resolution=64), lambda rng: random_image(rng, 100, 75)),
    (dict(block_size=16, quality=35, clip=3200, resolution=64), lambda rng: natural("chelsea")),
    (dict(block_size=32, quality=90, clip=4000, order="luma_first", value_encoding="dequantized",
          resolution=128), lambda rng: natural("rocket")),
    (dict(block_size=8, quality=90), lambda rng: natural("astronaut", 128)),
]
MAX_LENGTH = 40_000


def _tf_encode(codec, image):
    pixels, content = codec.tf_canvas(tf.convert_to_tensor(image))
    triples, length = codec.tf_encode_canvas(pixels, MAX_LENGTH)
    return triples, length, content


@pytest.mark.parametrize("kwargs,make", CASES)
def test_numpy_and_tf_twins_are_bit_exact_in_every_mode(kwargs, make, rng):
    codec = SparseCodec(**kwargs)
    image = make(rng)
    expected, (h, w) = codec.encode_with_size(image)

    def check(triples, length, content, mode):
        length = int(length)
        assert length == len(expected), mode
        np.testing.assert_array_equal(np.asarray(triples)[:length], expected, err_msg=mode)
        assert not np.asarray(triples)[length:].any(), f"{mode}: padding must be zeros"
        assert tuple(np.asarray(content)) == (h, w), mode

    check(*_tf_encode(codec, image), "eager")
    dataset = tf.data.Dataset.from_tensors(image).map(lambda x: _tf_encode(codec, x))
    check(*next(iter(dataset)), "tf.data map")


def test_batched_tf_encoder_matches_per_image_numpy(rng):
    codec = SparseCodec(block_size=8, quality=75, resolution=64)
    images = np.stack([random_image(rng, 64, 64) for _ in range(3)] + [natural("coffee", 64)])
    triples, lengths = codec.tf_encode_canvas(tf.constant(images), 4000)
    for i, image in enumerate(images):
        expected = codec.encode(image)
        assert int(lengths[i]) == len(expected)
        np.testing.assert_array_equal(triples[i, : len(expected)].numpy(), expected)
        assert not triples[i, len(expected) :].numpy().any()


@pytest.mark.parametrize("kwargs,make", CASES)
def test_sequence_invariants(kwargs, make, rng):
    codec = SparseCodec(**kwargs)
    image = make(rng)
    triples, (h, w) = codec.encode_with_size(image)
    gh, gw = codec.canvas_grid(h, w)
    channels, positions, tokens = triples.T
    assert (channels == codec.eos).sum() == 1 and channels[-1] == codec.eos
    assert tuple(triples[-1]) == (codec.eos, 0, 0)
    body = triples[:-1]
    # Sorted by channel, then position; no (channel, position) twice.
    keys = body[:, 0].astype(np.int64) * gh * gw + body[:, 1]
    assert (np.diff(keys) > 0).all()
    assert not (body[:, 2] == codec.clip).any(), "zero values must not be listed"
    assert body[:, 2].min() >= 0 and body[:, 2].max() < codec.num_values
    chroma = channel_components(codec.order, codec.block_size)[body[:, 0]] > 0
    rows, cols = body[:, 1] // gw, body[:, 1] % gw
    assert ((rows[chroma] % 2 == 0) & (cols[chroma] % 2 == 0)).all(), "chroma only at even cells"
    assert (rows < -(-h // codec.block_size)).all() and (cols < -(-w // codec.block_size)).all()


@pytest.mark.parametrize("kwargs,make", CASES)
def test_dense_sparse_dense_is_identity_in_both_twins(kwargs, make, rng):
    codec = SparseCodec(**kwargs)
    dense, content = codec.encode_dense(make(rng))
    grid = dense.shape[:2]
    triples = np_ops.dense_to_sparse(dense, codec)
    np.testing.assert_array_equal(np_ops.sparse_to_dense(triples, codec, grid), dense)
    padded, length = tf_ops.dense_to_sparse(tf.constant(dense), codec, len(triples) + 7)
    back = tf_ops.sparse_to_dense(padded, codec, grid, length)
    np.testing.assert_array_equal(back.numpy(), dense)
    # sequence -> dense -> sequence is the identity too
    np.testing.assert_array_equal(np_ops.dense_to_sparse(np_ops.sparse_to_dense(triples, codec, grid), codec), triples)


@pytest.mark.parametrize("kwargs,make", CASES)
def test_round_trip_is_the_decode_of_the_whole_sequence(kwargs, make, rng):
    codec = SparseCodec(**kwargs)
    image = make(rng)
    triples, (h, w) = codec.encode_with_size(image)
    expected = codec.decode(triples, h, w)
    np.testing.assert_array_equal(codec.round_trip(image), expected)
    assert not np.array_equal(expected, codec.content_pixels(image))  # the codec is lossy


def test_tf_decode_equals_numpy_decode(rng):
    codec = SparseCodec(block_size=8, quality=75, resolution=64)
    dense, _ = codec.encode_dense(random_image(rng, 64, 64))
    np.testing.assert_array_equal(
        tf_ops.dense_to_image(tf.constant(dense), codec).numpy(), np_ops.dense_to_image(dense, codec)
    )


def _psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


@pytest.mark.parametrize("quality", (50, 75, 90))
@pytest.mark.parametrize("name", ("astronaut", "coffee", "chelsea", "rocket"))
def test_round_trip_psnr_within_half_db_of_pillow_jpeg(name, quality):
    codec = SparseCodec(block_size=8, quality=quality)
    image = natural(name, 256)
    ours = codec.decode(*((lambda t, hw: (t, *hw))(*codec.encode_with_size(image))))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=2)  # 4:2:0
    pillow = np.asarray(Image.open(buffer).convert("RGB"))
    assert abs(_psnr(ours, image) - _psnr(pillow, image)) <= 0.5


def test_dc_prefix_decodes_to_the_block_downsampled_image():
    codec = SparseCodec(block_size=8, quality=90)
    image = natural("astronaut", 128)
    triples, (h, w) = codec.encode_with_size(image)
    dc_channels = channel_components("bands", 8)[:3]
    assert list(dc_channels) == [0, 2, 1]  # Y, Cr, Cb: band 0 first
    prefix = triples[triples[:, 0] < 3]
    preview = codec.decode(prefix, h, w).astype(np.float64)
    block_means = image.reshape(16, 8, 16, 8, 3).mean(axis=(1, 3))
    assert _psnr(preview[::8, ::8], block_means) > 20  # every block is (roughly) its mean colour
    # Every prefix decodes.
    for n in (0, 1, len(triples) // 3, len(triples) - 1):
        assert codec.decode(triples[:n], h, w).shape == (h, w, 3)


def test_luma_first_prefix_is_the_grayscale_image():
    codec = SparseCodec(block_size=8, quality=90, order="luma_first")
    image = natural("coffee", 128)
    triples, (h, w) = codec.encode_with_size(image)
    luma = channel_components("luma_first", 8)[triples[:-1, 0]] == 0
    assert luma[: luma.sum()].all(), "all Y entries come before any chroma entry"
    gray = codec.decode(triples[: luma.sum()], h, w)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_dequantized_values_are_multiples_of_the_table():
    quantized = SparseCodec(quality=50)
    dequantized = SparseCodec(quality=50, value_encoding="dequantized")
    image = natural("chelsea", 64)
    dq, _ = quantized.encode_dense(image)
    dd, _ = dequantized.encode_dense(image)
    np.testing.assert_array_equal(dd, dq * quantized.rank_table)
    np.testing.assert_array_equal(quantized.decode_dense(dq, 64, 64), dequantized.decode_dense(dd, 64, 64))


def test_vocabulary_attributes():
    codec = SparseCodec(block_size=16, clip=3200, resolution=256)
    assert (codec.dct_channels, codec.num_channels, codec.eos) == (768, 769, 768)
    assert codec.num_values == 6401 and codec.num_positions == 256 and codec.grid == (16, 16)
    assert SparseCodec().num_positions is None


# ------------------------------------------------------------------ bad input


def test_overflow_is_an_error_with_the_length_never_a_truncation(rng):
    codec = SparseCodec(quality=90)
    image = random_image(rng, 64, 64)
    length = len(codec.encode(image))
    with pytest.raises(SequenceOverflowError, match=f"has {length} elements.*max_length=100"):
        codec.encode(image, max_length=100)
    triples, tf_length = codec.tf_encode_canvas(tf.constant(image), 100)
    assert int(tf_length) == length and triples.shape == (100, 3)
    np.testing.assert_array_equal(triples.numpy(), codec.encode(image)[:100])
    with pytest.raises(tf.errors.InvalidArgumentError, match="longer than max_length=100"):
        codec.tf_check_length(tf_length, 100)
    dataset = tf.data.Dataset.from_tensors(image).map(
        lambda x: codec.tf_check_length(codec.tf_encode_canvas(x, 100)[1], 100)
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=str(length)):
        next(iter(dataset))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(quality=0), "quality must be an integer in \\[1, 100\\], got 0"),
        (dict(quality=101), "quality .* got 101"),
        (dict(block_size=12), "block_size must be one of \\(8, 16, 32\\), got 12"),
        (dict(order="zigzag"), "order must be one of .* got 'zigzag'"),
        (dict(value_encoding="raw"), "value_encoding must be one of .* got 'raw'"),
        (dict(clip=0), "clip must be a positive integer, got 0"),
        (dict(resolution=100), "resolution must be a positive multiple of 2·block_size = 16, got 100"),
        (dict(upsample="cubic"), "upsample must be one of .* got 'cubic'"),
    ],
)
def test_bad_codec_settings_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SparseCodec(**kwargs)


@pytest.mark.parametrize(
    "image,message",
    [
        (np.zeros((0, 20, 3), np.uint8), "image is empty \\(size 0x20\\)"),
        (np.zeros((8, 40, 3), np.uint8), "8x40 pixels is smaller than one 16x16 macroblock"),
        (np.zeros((32, 32), np.uint8), "expected an RGB array \\[H, W, 3\\], got shape \\(32, 32\\)"),
        (np.zeros((32, 32, 3), np.float32), "expected dtype uint8, got float32"),
    ],
)
def test_bad_images_are_clear_errors(image, message):
    with pytest.raises(ValueError, match=message):
        SparseCodec().encode(image)


def test_bad_triples_are_clear_errors():
    codec = SparseCodec(resolution=32)
    with pytest.raises(ValueError, match="triple 1: position 16 is outside \\[0, 16\\)"):
        codec.decode(np.array([[0, 0, 1201], [1, 16, 1199]]), 32, 32)
    with pytest.raises(ValueError, match="channel 300 is outside \\[0, 193\\)"):
        codec.decode(np.array([[300, 0, 5]]), 32, 32)


@pytest.mark.parametrize("quality", (50, 75, 95))
def test_max_magnitude_bounds_and_is_reached_by_basis_sign_blocks(quality, rng):
    """`max_magnitude`: no image exceeds it, and the gray block painted with the signs of a
    basis function (0 where it is positive, 255 where negative) reaches it up to the 127/128
    asymmetry (the bound assumes ±128; a pixel reaches −128 and +127). Reference: scipy."""
    import scipy.fft

    from dctformer_tf.dct.tables import max_quantized_magnitude, quantization_table

    codec = SparseCodec(quality=quality, clip=4096, resolution=16)
    bound = max_quantized_magnitude(quality, 8)  # [8, 8] luma
    table = quantization_table(quality, 8)
    assert codec.max_magnitude == max(bound.max(), max_quantized_magnitude(quality, 8, True).max())
    for u, v in [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (3, 5), (7, 7)]:
        basis = np.zeros((8, 8))
        basis[u, v] = 1.0
        signs = np.sign(scipy.fft.idctn(basis, norm="ortho"))  # the basis function's signs
        peak = np.abs(scipy.fft.dctn(128.0 * signs, norm="ortho")[u, v])
        assert bound[u, v] == np.floor(peak / table[u, v] + 0.5)
        gray = np.full((16, 16), 128, np.uint8)
        gray[:8, :8] = np.where(signs > 0, 0, 255)
        dense, _ = codec.encode_dense(np.repeat(gray[..., None], 3, axis=-1))
        got = abs(int(dense[0, 0, codec.raw_to_rank[u * 8 + v]]))
        lower = np.floor(peak * 127 / 128 / table[u, v] + 0.5)
        assert lower <= got <= bound[u, v], (u, v, got, bound[u, v])
    at_bound = SparseCodec(quality=quality, clip=codec.max_magnitude, resolution=16)
    for _ in range(20):  # random and saturated images stay inside the bound
        image = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
        image[rng.random((16, 16)) < 0.5] = rng.choice([0, 255], size=3)
        dense, _ = codec.encode_dense(image)
        assert np.abs(dense).max() <= codec.max_magnitude
        # so a clip at the bound never acts: same coefficients as the wide clip
        np.testing.assert_array_equal(at_bound.encode_dense(image)[0], dense)
