"""The numpy input path (docs/design.md §2.5) against the tf.data one: the same packed bytes,
the same encoded sequences, the same chunk and length laws, batches that expand on the device
to the dense examples the TensorFlow code builds, determinism, and no TensorFlow import."""

import itertools
import subprocess
import sys
import types

import numpy as np
import pytest
from scipy import stats

from dctformer_tf.data import chunking, compact, numpy_input
from dctformer_tf.data.layout import SequenceLayout
from dctformer_tf.data.pipeline import encode_dataset
from dctformer_tf.data.sources import get_source
from dctformer_tf.dct import SequenceOverflowError, SparseCodec
from tests.data import test_encode_reuse as reuse

CODEC = SparseCodec(quality=75, clip=255, resolution=64)  # the quickstart demo's codec
CHUNK, OVERLAP, MAX_LENGTH = 128, 32, 1536
DRAWS = 20_000


def _padded(sequence: np.ndarray, max_length: int) -> np.ndarray:
    triples = np.zeros((max_length, 3), np.int32)
    triples[: len(sequence)] = sequence
    return triples


def _extreme_sequence(layout: SequenceLayout) -> np.ndarray:
    """Every number at the edges of its range, skipped channels, then EOS."""
    c, p, v = layout.dct_channels, layout.num_positions, layout.num_values
    rows = [(0, 0, 0), (0, p - 1, v - 1), (5, 3, v // 2), (c - 1, 0, v - 1), (c - 1, p - 1, 0)]
    return np.array(rows + [(layout.eos, 0, 0)], np.int32)


def _full_sequence(layout: SequenceLayout, length: int) -> np.ndarray:
    """A valid sequence of exactly `length` elements (EOS last): coefficients in flat order."""
    flat = np.arange(length - 1)
    body = np.stack([flat // layout.num_positions, flat % layout.num_positions,
                     (7 * flat) % layout.num_values], axis=1)
    return np.concatenate([body, [[layout.eos, 0, 0]]]).astype(np.int32)


def _tf_sequences(codec: SparseCodec, num: int, max_length: int) -> dict:
    """The tf.data path's first `num` test-split sequences, stacked."""
    source, _ = get_source("shapes", split="test", num_examples=num)
    examples = list(encode_dataset(source, codec, max_length=max_length).as_numpy_iterator())
    return {key: np.stack([ex[key] for ex in examples]) for key in examples[0]}


# ---------------------------------------------------------------------------------------------
# packing


@pytest.mark.parametrize("block_size, grid_size, clip", [(8, 8, 255), (16, 64, 3200),
                                                         (8, 192, 1200)],
                         ids=["shapes-2-bytes", "ffhq-4-bytes", "int32-counts"])
def test_packing_equals_the_tensorflow_packing_byte_for_byte(block_size, grid_size, clip):
    layout = SequenceLayout(block_size, grid_size, clip)
    max_length = 40
    sequences = [_extreme_sequence(layout), np.array([[layout.eos, 0, 0]], np.int32),
                 _full_sequence(layout, max_length)]  # all, just EOS, filling max_length
    if (block_size, grid_size) == (8, 8):
        encoded = numpy_input.encode_shapes(CODEC, 2048, "test", num_examples=3)
        sequences += [t[:n] for t, n in zip(encoded["triples"], encoded["length"], strict=True)]
        max_length = 2048
    triples = np.stack([_padded(s, max_length) for s in sequences])
    lengths = np.array([len(s) for s in sequences], np.int32)
    got = numpy_input.pack_sequences(triples, lengths, layout)
    for i in range(len(sequences)):
        want = compact.pack_sequence(triples[i], lengths[i], layout)
        for key, value in want.items():
            value = value.numpy()
            assert got[key][i].dtype == value.dtype, key
            np.testing.assert_array_equal(got[key][i], value, err_msg=f"{key} {i}")
    assert got["channel_counts"].dtype == layout.count_dtype


# ---------------------------------------------------------------------------------------------
# encoding


@pytest.mark.parametrize("resolution", [64, 32], ids=["canvas-sized", "resized"])
def test_sequences_equal_the_tf_data_sequences_of_the_same_images(resolution):
    codec = SparseCodec(quality=75, clip=255, resolution=resolution)
    num = 6
    want = _tf_sequences(codec, num, MAX_LENGTH)
    got = numpy_input.encode_shapes(codec, MAX_LENGTH, "test", num_examples=num)
    assert set(got) == set(want) | {"fits"} and got["fits"].all()
    for key, value in want.items():
        assert got[key].dtype == value.dtype, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_an_over_long_sequence_is_an_error_naming_the_image():
    with pytest.raises(SequenceOverflowError, match=r"shapes/test/1000000 \(\d+\)"):
        numpy_input.encode_shapes(CODEC, 50, "test", num_examples=2)
    batches = numpy_input.NumpyChunkBatches(CODEC, CHUNK, OVERLAP, 50, 4, seed=0,
                                            split="test", num_examples=2)
    with pytest.raises(SequenceOverflowError, match="shapes/test/1000000"):
        next(iter(batches))


def test_skipped_over_long_images_are_recorded_once():
    lengths = numpy_input.encode_shapes(CODEC, MAX_LENGTH, "test", num_examples=8)["length"]
    max_length = int(np.median(lengths))
    batches = numpy_input.NumpyChunkBatches(CODEC, CHUNK, OVERLAP, max_length, 2, seed=0,
                                            split="test", num_examples=8, on_overflow="skip")
    list(itertools.islice(iter(batches), 20))  # several passes
    over = {f"shapes/test/{1_000_000 + i}": int(n) for i, n in enumerate(lengths)
            if n > max_length}
    assert batches.overlong == over and over


def test_blocks_without_examples_are_passed_over_and_all_over_long_is_an_error():
    # q = L / l_max ~ 1e-3: nearly every block of one image yields no example.
    sparse = numpy_input.NumpyChunkBatches(CODEC, CHUNK, OVERLAP, MAX_LENGTH, 2, seed=0,
                                           split="test", num_examples=3, l_max=500_000,
                                           encode_batch_size=1, shuffle_buffer=0)
    empty = sparse.block_examples(0, 0)
    assert empty["rows"].shape == (0, 10) and empty["packed"].shape == (0, MAX_LENGTH, 2)
    assert next(iter(sparse))["packed"].shape == (2, MAX_LENGTH, 2)
    over = numpy_input.NumpyChunkBatches(CODEC, CHUNK, OVERLAP, 50, 2, seed=0, split="test",
                                         num_examples=3, on_overflow="skip")
    with pytest.raises(ValueError, match="every one of the 3 images .* max_length=50"):
        next(iter(over))


# ---------------------------------------------------------------------------------------------
# chunk law and length policy


@pytest.mark.parametrize(
    "length, p_min, power",
    [(10, 0.1, 3.0), (16, 0.1, 3.0), (40, 0.1, 3.0), (150, 0.1, 3.0), (160, 0.1, 3.0),
     (160, 0.01, 3.0), (160, 0.1, 1.5)],
    ids=["1-chunk", "1-chunk-exact", "3-chunks", "10-chunks", "10-chunks-exact", "p_min-0.01",
         "power-1.5"],
)
def test_chunk_index_frequencies_match_the_policy(length, p_min, power):
    """The cases of test_chunking.py's test of the TensorFlow sampler."""
    chunk = 16
    n = -(-length // chunk)
    rng = np.random.default_rng(7)
    draws = numpy_input.sample_chunk_index(np.full(DRAWS, length), chunk, p_min, power, rng)
    counts = np.bincount(draws, minlength=n)
    assert len(counts) == n  # never an index past the last chunk
    if n == 1:
        assert counts[0] == DRAWS
        return
    weights = np.array([max((k + 1.0) ** -power, p_min) for k in range(n)])
    assert stats.chisquare(counts, DRAWS * weights / weights.sum()).pvalue > 0.01


def test_length_filter_keep_rate_matches_min_one_l_over_lmax():
    l_max, n = 200, 4000
    lengths = np.array([20, 100, 150, 200, 400])
    np.testing.assert_allclose(numpy_input.length_filter_keep_probability(lengths, l_max),
                               np.minimum(1.0, lengths / l_max))
    counts = numpy_input.examples_from_sequence(np.repeat(lengths, n), l_max, 1,
                                                np.random.default_rng(1))
    assert set(np.unique(counts)) <= {0, 1}
    for length, kept in zip(lengths, counts.reshape(len(lengths), n).sum(axis=1), strict=True):
        p = min(1.0, length / l_max)
        assert abs(kept - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9, (length, kept)


def test_several_examples_per_encode_keep_the_distribution_of_length_and_chunk():
    """test_encode_reuse.py's chi-square test of (L, k), on the numpy sampler."""
    rng = np.random.default_rng(3)
    expected = reuse._expected_probabilities()
    pairs = {}
    for r, num in ((1, 24_000), (4, 6_000)):
        lengths = np.tile(reuse.LENGTHS, num // len(reuse.LENGTHS))
        repeats = numpy_input.examples_from_sequence(lengths, reuse.L_MAX, r, rng)
        example_lengths = np.repeat(lengths, repeats)
        k = numpy_input.sample_chunk_index(example_lengths, reuse.CHUNK, 0.1, 3.0, rng)
        pairs[r] = np.stack([example_lengths, k], axis=1)
        counts = reuse._counts(pairs[r])
        assert stats.chisquare(counts, counts.sum() * expected).pvalue > 0.01
    mean_q = np.mean(np.minimum(1.0, np.array(reuse.LENGTHS) / reuse.L_MAX))
    assert len(pairs[1]) / 24_000 == pytest.approx(mean_q, rel=0.03)
    assert 6_000 / len(pairs[4]) == pytest.approx(1 / (4 * mean_q), rel=0.03)


def test_the_batches_follow_the_joint_law_of_length_and_chunk():
    """End to end: (L, k) of the iterator's examples against p(L)·q(L)·P(k | L) over the
    images' own lengths."""
    num, r = 8, 4
    lengths = numpy_input.encode_shapes(CODEC, MAX_LENGTH, "test", num_examples=num)["length"]
    l_max = int(np.median(lengths))
    batches = numpy_input.NumpyChunkBatches(CODEC, CHUNK, OVERLAP, MAX_LENGTH, 64, seed=5,
                                            split="test", num_examples=num, l_max=l_max,
                                            examples_per_encode=r, shuffle_buffer=0)
    got = np.concatenate([np.stack([b["length"], b["chunk_index"]], axis=1)
                          for b in itertools.islice(iter(batches), 60)])
    cells, expected = {}, {}
    for length in lengths:
        n = -(-int(length) // CHUNK)
        weights = np.maximum((np.arange(n) + 1.0) ** -3, 0.1)
        for k in range(n):
            p = min(1.0, length / l_max) * weights[k] / weights.sum()
            expected[(int(length), k)] = expected.get((int(length), k), 0.0) + p
    for length, k in got:
        cells[(int(length), int(k))] = cells.get((int(length), int(k)), 0) + 1
    assert set(cells) <= set(expected)
    keys = sorted(expected)
    counts = np.array([cells.get(key, 0) for key in keys])
    probs = np.array([expected[key] for key in keys])
    assert stats.chisquare(counts, counts.sum() * probs / probs.sum()).pvalue > 0.01


# ---------------------------------------------------------------------------------------------
# batches


@pytest.mark.parametrize("loss_from_channel", [0, 3])
def test_batches_expand_to_the_dense_examples_of_the_tf_sequences(loss_from_channel):
    num, batch_size = 6, 8
    reference = _tf_sequences(CODEC, num, MAX_LENGTH)
    layout = SequenceLayout.of_codec(CODEC)
    packed_reference = numpy_input.pack_sequences(reference["triples"], reference["length"],
                                                  layout)["packed"]
    batches = numpy_input.NumpyChunkBatches(CODEC, CHUNK, OVERLAP, MAX_LENGTH, batch_size,
                                            seed=1, split="test", num_examples=num,
                                            examples_per_encode=2, p_min=1.0,
                                            loss_from_channel=loss_from_channel,
                                            shuffle_buffer=16)
    for batch in itertools.islice(iter(batches), 3):
        dense = chunking.expand_chunks(batch, layout, CHUNK + OVERLAP)
        for i in range(batch_size):
            # Which image: the one whose packed bytes these are.
            (image,) = np.flatnonzero((packed_reference == batch["packed"][i]).all(axis=(1, 2)))
            sequence = reference["triples"][image]
            start, end, window = (int(batch[key][i]) for key in
                                  ("chunk_start", "chunk_end", "window_start"))
            targets = np.asarray(dense["targets"][i])
            np.testing.assert_array_equal(targets[start - window:end - window],
                                          sequence[start:end])
            assert float(np.sum(dense["loss_mask"][i])) == batch["loss_tokens"][i]
            example = {key: reference[key][image] for key in reference}
            want = chunking.make_training_example(example, CODEC, CHUNK, OVERLAP,
                                                  batch["chunk_index"][i], loss_from_channel)
            for key, value in want.items():
                got = dense[key][i] if key in dense else batch[key][i]
                np.testing.assert_array_equal(np.asarray(got), value.numpy(), err_msg=key)


def test_batches_have_static_shapes_and_the_compact_dtypes():
    batches = numpy_input.NumpyChunkBatches(CODEC, CHUNK, OVERLAP, MAX_LENGTH, 4, seed=0,
                                            split="test", num_examples=6, repeat=False,
                                            shuffle_buffer=8)
    stream = iter(batches)
    assert isinstance(stream, types.GeneratorType)  # what model.fit accepts
    got = list(stream)
    for batch in got:
        assert tuple(batch) == numpy_input.BATCH_KEYS
        assert batch["packed"].shape == (4, MAX_LENGTH, 2) and batch["packed"].dtype == np.uint8
        assert batch["channel_counts"].shape == (4, 192)
        assert batch["channel_counts"].dtype == np.int16
        assert batch["content_hw"].shape == (4, 2)
        for key in numpy_input.BATCH_KEYS[2:]:
            assert batch[key].dtype == np.int32, key
    assert len(got) == 6 // 4  # one example per image, drop remainder


def _take(batches, n: int = 3) -> list:
    return list(itertools.islice(iter(batches), n))


def _assert_same(first: list, second: list):
    for a, b in zip(first, second, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_same_seed_same_batches_whatever_the_workers():
    settings = dict(codec=CODEC, chunk_size=CHUNK, overlap=OVERLAP, max_length=MAX_LENGTH,
                    batch_size=8, split="test", num_examples=12, examples_per_encode=2,
                    encode_batch_size=3, shuffle_buffer=16)
    first = numpy_input.NumpyChunkBatches(seed=4, **settings)
    _assert_same(_take(first), _take(first))  # a new iter() starts the same stream again
    _assert_same(_take(first), _take(numpy_input.NumpyChunkBatches(seed=4, **settings)))
    _assert_same(_take(first),
                 _take(numpy_input.NumpyChunkBatches(seed=4, workers=2, **settings)))
    other = _take(numpy_input.NumpyChunkBatches(seed=5, **settings))
    assert any(not np.array_equal(a["chunk_index"], b["chunk_index"])
               or not np.array_equal(a["packed"], b["packed"])
               for a, b in zip(_take(first), other, strict=True))


def test_numpy_input_does_not_import_tensorflow():
    code = ("import sys, dctformer_tf.data.numpy_input; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("change, message", [
    (dict(codec=SparseCodec(quality=75)), "resolution=None"),
    (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(overlap=-1), "overlap"),
    (dict(examples_per_encode=1.5), "examples_per_encode"),
    (dict(l_max=0), "l_max must be a positive length"),
    (dict(on_overflow="truncate"), "on_overflow"),
    (dict(workers=-1), "workers"),
    (dict(loss_from_channel=193), "loss_from_channel"),
    (dict(split="validation"), "unknown split 'validation'"),
    (dict(num_examples=0), "num_examples"),
    (dict(p_min=float("nan")), "p_min"),
    (dict(start_method="thread"), "start_method"),
])
def test_bad_settings_are_clear_errors(change, message):
    settings = dict(codec=CODEC, chunk_size=CHUNK, overlap=OVERLAP, max_length=MAX_LENGTH,
                    batch_size=4, seed=0, split="test")
    with pytest.raises(ValueError, match=message):
        numpy_input.NumpyChunkBatches(**{**settings, **change})


def test_bad_images_are_clear_errors():
    with pytest.raises(ValueError, match=r"uint8 \[B, H, W, 3\], got float32"):
        numpy_input.encode_images(np.zeros((1, 64, 64, 3), np.float32), CODEC, 100)
    with pytest.raises(TypeError, match="SparseCodec"):
        numpy_input.encode_images(np.zeros((1, 64, 64, 3), np.uint8), "codec", 100)
