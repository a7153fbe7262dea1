"""The fast encoder (float32, guard band, float64 fix-ups) against the float64 reference:
equal sequences in every twin and mode, the guard band a true bound on the float32 error,
and exact ties rounded by the reference's rule. The encoders are reached as production
reaches them, through `encoders.choose_encoder`, where a test is about the choice too."""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.photos import photo_crops
from dctformer_tf.dct import SparseCodec, fused_op, np_fast, np_ops, tf_fast
from dctformer_tf.dct.encoders import choose_encoder
from dctformer_tf.dct.fast_plan import GUARD_MARGIN, UNSAFE, fast_plan, plan_for
from tests.dct.images import natural, random_image

CODECS = [
    dict(quality=75),
    dict(quality=50),
    dict(quality=90),
    dict(quality=100),
    dict(block_size=16, quality=35, clip=3200),
    dict(block_size=32, quality=90, clip=4000, order="luma_first",
         value_encoding="dequantized"),
    dict(quality=10, clip=20),  # clipping acts
]


# The fused kernel is built with the machine's C++ compiler; without one only "ops" runs.
# Where there is a compiler the kernel must build: a failed build fails these tests (the
# library itself would warn and fall back), so that CI sees it.
needs_compiler = pytest.mark.skipif(fused_op.compiler() is None, reason="no C++ compiler")
# The encoders this machine can run, for tests that loop over them.
ENCODERS_NOW = ("ops", "fused") if fused_op.compiler() else ("ops",)


def reference(images: np.ndarray, codec: SparseCodec) -> list:
    """The float64 reference's sequences of canvas-sized images."""
    return [np_ops.dense_to_sparse(np_ops.image_to_dense(im, codec), codec) for im in images]


def assert_padded_equal(triples, lengths, expected: list, mode: str):
    triples, lengths = np.asarray(triples), np.asarray(lengths)
    for i, sequence in enumerate(expected):
        assert lengths[i] == len(sequence), f"{mode}: image {i}"
        np.testing.assert_array_equal(triples[i, : len(sequence)], sequence, err_msg=mode)
        assert not triples[i, len(sequence) :].any(), f"{mode}: padding must be zeros"


def images_for(codec: SparseCodec, rng) -> np.ndarray:
    """Photos, a smooth-plus-noise image, flat and saturated ones: uint8 [N, 64, 64, 3]."""
    size = max(64, 4 * codec.block_size)
    flat = np.full((size, size, 3), 131, np.uint8)
    saturated = np.where(rng.random((size, size, 1)) < 0.5, 0, 255).astype(np.uint8)
    return np.concatenate([photo_crops(size, 6, seed=codec.block_size),
                           np.stack([random_image(rng, size, size), flat,
                                     np.repeat(saturated, 3, axis=2)])])


@pytest.mark.parametrize("kwargs", CODECS)
def test_numpy_twin_equals_the_reference(kwargs, rng):
    codec = SparseCodec(**kwargs)
    images = images_for(codec, rng)
    expected = reference(images, codec)
    for got, want in zip(np_fast.encode_canvas(images, codec), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    max_length = max(len(s) for s in expected) + 3
    assert_padded_equal(*np_fast.encode_canvas(images, codec, max_length), expected, "padded")


@pytest.mark.parametrize("kwargs", CODECS)
def test_tf_twin_equals_the_reference_in_every_mode(kwargs, rng):
    codec = SparseCodec(**kwargs)
    images = images_for(codec, rng)
    expected = reference(images, codec)
    max_length = max(len(s) for s in expected) + 5
    pixels = tf.constant(images)
    for jit_compile in (True, False):
        mode = f"eager, ops, jit_compile={jit_compile}"
        assert_padded_equal(*tf_fast.encode_canvas(pixels, codec, max_length, jit_compile),
                            expected, mode)
    for encoder in ENCODERS_NOW:
        dataset = tf.data.Dataset.from_tensors(pixels).map(
            lambda x, encoder=encoder: choose_encoder(encoder).encode(x, codec, max_length))
        assert_padded_equal(*next(iter(dataset)), expected, f"tf.data map, {encoder}")


def test_photos_match_the_reference_exactly_and_exercise_the_fix_ups():
    """The acceptance measure: on photo crops at q 50/75/90 the fast encoder's coefficients
    differ from the reference's in none (a rate of 0, within the allowed 1e-5), and the guard
    band did send coefficients to the float64 fix-up (so that path is what was tested)."""
    images = photo_crops(64, 48, seed=1)
    for quality in (50, 75, 90):
        codec = SparseCodec(quality=quality, resolution=64)
        flat, flags = np_fast.flat_coefficients(images, fast_plan(codec, (8, 8)))
        assert (flat == UNSAFE).sum() > 0 and flags.any()
        mismatches = 0
        for image, sequence in zip(images, np_fast.encode_canvas(images, codec), strict=True):
            got = np_ops.sparse_to_dense(sequence, codec, (8, 8))
            mismatches += int((got != np_ops.image_to_dense(image, codec)).sum())
        rate = mismatches / flat.size
        assert mismatches == 0 and rate <= 1e-5, (quality, mismatches)


@pytest.mark.parametrize("quality", (50, 90, 100))
def test_guard_band_bounds_the_float32_error(quality, rng):
    """|float32 − float64| of every quantized coefficient (before rounding) stays within
    guard / GUARD_MARGIN, the proven bound, on photos, noise and saturated images."""
    codec = SparseCodec(quality=quality, resolution=64)
    plan = fast_plan(codec, (8, 8))
    images = np.concatenate([photo_crops(64, 8), rng.integers(0, 256, (8, 64, 64, 3))
                             .astype(np.uint8)])
    images[-4:] = np.where(images[-4:] < 128, 0, 255)
    luma32, chroma32 = np_fast.colour_planes(images, plan)
    ycc = np_ops.rgb_to_ycbcr(images)
    planes = [(luma32, ycc[..., 0])] + [
        (chroma32[:, k - 1], np_ops.downsample_chroma(ycc[..., k])) for k in (1, 2)]
    for k, (plane32, plane64) in enumerate(planes):
        rows = plan.rows[k]
        coefs32 = np_fast.block_dct(plane32, plan)[:, rows] * plan.inv_step[k][None, :, None]
        coefs64 = np_ops.block_dct(plane64, 8).reshape(len(images), -1, 64).transpose(0, 2, 1)
        coefs64 = coefs64[:, rows] / plan.component_step[k][None, :, None]
        error = np.abs(coefs32.astype(np.float64) - coefs64)
        bound = (plan.guard[k] - np_ops.ROUND_EPS) / GUARD_MARGIN
        assert (error <= bound[None, :, None]).all(), k
        assert error.max() > 0  # float32 did differ: the test measures something


@pytest.mark.parametrize("kwargs", CODECS)
@needs_compiler
def test_fused_kernel_equals_the_reference(kwargs, rng):
    """The fused kernel (`sparse_dct_op.cc`) for S = 8, 16 and 32 (its AVX2 paths where the
    build has AVX2; the plain loops are tested in test_fused_op.py), dequantized values and
    clipping, a batch of 9 canvases (which `Shard` may split across threads)."""
    codec = SparseCodec(**kwargs)
    images = images_for(codec, rng)
    expected = reference(images, codec)
    max_length = max(len(s) for s in expected) + 5
    assert_padded_equal(*fused_op.encode_canvas(tf.constant(images), codec, max_length),
                        expected, "fused")
    graph = tf.function(lambda x: choose_encoder("fused").encode(x, codec, max_length))
    ops = {op.type for op in graph.get_concrete_function(tf.constant(images)).graph
           .get_operations()}
    assert "SparseDctEncode" in ops  # the kernel, not the TensorFlow-ops path, ran


@pytest.mark.parametrize("kwargs", [CODECS[0], CODECS[4], CODECS[5]])
@needs_compiler
def test_fused_kernels_float64_path_alone_equals_the_reference(kwargs, rng):
    """A guard band of 1 sends every coefficient, luma and chroma, to the kernel's float64
    recomputation (which photos reach ~1e-4 of the time): it alone must give the reference."""
    codec = SparseCodec(**kwargs)
    images = images_for(codec, rng)[[0, 1, 6, 8]]  # two photos, noise, saturated
    expected = reference(images, codec)
    pixels = tf.constant(images)
    inputs = fused_op.kernel_inputs(codec, plan_for(pixels, codec))
    inputs["guard"] = np.ones_like(inputs["guard"])
    max_length = max(len(s) for s in expected) + 1
    assert_padded_equal(*fused_op.load().sparse_dct_encode(pixels, **inputs,
                                                           max_length=max_length),
                        expected, "every coefficient recomputed")


@needs_compiler
def test_fused_kernel_cuts_at_max_length_as_the_twin(rng):
    """Buffers one short of the EOS, exactly the sequence, and one short of that: the same
    triples and lengths as the numpy twin's padded output."""
    codec = SparseCodec(quality=75, resolution=64)
    images = images_for(codec, rng)[:3]
    length = len(reference(images[:1], codec)[0])
    for max_length in (length - 2, length - 1, length, length + 1):
        want = np_fast.encode_canvas(images, codec, max_length)
        got = fused_op.encode_canvas(tf.constant(images), codec, max_length)
        for w, g, name in zip(want, got, ("triples", "lengths"), strict=True):
            np.testing.assert_array_equal(g, w, err_msg=f"{name}, max_length={max_length}")


@needs_compiler
def test_fused_kernel_matches_on_256_photos():
    """Photo crops at the size the speed target is set at: the kernel's sequences equal the
    numpy fast twin's (itself tested against the reference above) at q 50/75/90."""
    images = photo_crops(256, 6, seed=3)
    for quality in (50, 75, 90):
        codec = SparseCodec(quality=quality, resolution=256)
        triples, lengths = fused_op.encode_canvas(tf.constant(images), codec, 40_000)
        assert_padded_equal(triples, lengths, np_fast.encode_canvas(images, codec), str(quality))


@needs_compiler
def test_fused_kernel_rejects_canvases_it_cannot_cut():
    codec = SparseCodec(quality=75)
    inputs = fused_op.kernel_inputs(codec, fast_plan(codec, (2, 2)))  # tables only
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"canvas 24x32 is not .* 16"):
        fused_op.load().sparse_dct_encode(tf.zeros([1, 24, 32, 3], tf.uint8), **inputs,
                                          max_length=10)


def test_exact_ties_round_by_the_reference_rule():
    """Flat grey blocks whose DC lands exactly on a half (DC/Q = (v − 128)/2 at q50, Q = 16)
    are UNSAFE in float32 and come out as the reference rounds them (half away from zero)."""
    codec = SparseCodec(quality=50, resolution=32)
    images = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (127, 129, 131, 61, 201)])
    plan = fast_plan(codec, (4, 4))
    flat, _ = np_fast.flat_coefficients(images, plan)
    assert (flat[:, : plan.segment * 4] == UNSAFE).all()  # every luma DC is a tie
    expected = reference(images, codec)
    assert expected[0][0].tolist() == [0, 0, codec.clip - 1]  # (127 − 128)/2 = −0.5 -> −1
    for got, want in zip(np_fast.encode_canvas(images, codec), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    for encoder in ENCODERS_NOW:
        assert_padded_equal(*choose_encoder(encoder).encode(tf.constant(images), codec, 200),
                            expected, encoder)


def test_overflow_keeps_the_first_max_length_and_reports_the_length(rng):
    codec = SparseCodec(quality=90, resolution=64)
    images = np.stack([random_image(rng, 64, 64), np.full((64, 64, 3), 128, np.uint8)])
    expected = reference(images, codec)
    outputs = [np_fast.encode_canvas(images, codec, max_length=100)] + [
        choose_encoder(e).encode(tf.constant(images), codec, 100) for e in ENCODERS_NOW]
    for triples, lengths in outputs:
        lengths = np.asarray(lengths)
        assert lengths.tolist() == [len(expected[0]), 1]
        np.testing.assert_array_equal(np.asarray(triples)[0], expected[0][:100])
        assert np.asarray(triples)[1, 0].tolist() == [codec.eos, 0, 0]


def test_non_square_canvas_and_a_batch_of_one(rng):
    codec = SparseCodec(quality=75)
    image = random_image(rng, 48, 80)
    pixels, _ = np_ops.canvas(image, None, 8)
    expected = reference(pixels[None], codec)
    np.testing.assert_array_equal(np_fast.encode_canvas(pixels[None], codec)[0], expected[0])
    for encoder in ENCODERS_NOW:
        assert_padded_equal(*choose_encoder(encoder).encode(tf.constant(pixels[None]), codec,
                                                            2000), expected, encoder)
    assert_padded_equal(*codec.tf_encode_canvas(tf.constant(natural("coffee", 64)[None]), 2000),
                        reference(natural("coffee", 64)[None], codec), "codec")


@pytest.mark.parametrize("divisor", (1, 3, 16, 144, 1024, 4096))
def test_float_division_is_exact_below_its_bound(divisor):
    n = np.concatenate([np.arange(200_000), np.arange(2**22 - 200_000, 2**22)]).astype(np.int32)
    got = tf_fast._divide(tf.constant(n), divisor, 2**22 - 1).numpy()
    np.testing.assert_array_equal(got, n // divisor)
