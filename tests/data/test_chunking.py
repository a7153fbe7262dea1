"""Chunked training examples against hand-written numpy references (docs/design.md §2, App. C)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from dctformer_tf.data import chunking, compact
from dctformer_tf.data.layout import start_triple
from dctformer_tf.data.shapes import render_shapes
from dctformer_tf.dct import SparseCodec, np_ops
from tests.dct.images import random_image

DRAWS = 20_000


def _padded(sequence: np.ndarray, max_length: int, label: int = 0) -> dict:
    triples = np.zeros((max_length, 3), np.int32)
    triples[: len(sequence)] = sequence
    return {"triples": triples, "length": np.int32(len(sequence)),
            "content_hw": np.array([64, 64], np.int32), "label": np.int32(label)}


def _draw_chunk_indices(length: int, chunk: int, p_min: float, seed: int) -> np.ndarray:
    """DRAWS chunk indices, draw i seeded (seed, i); vectorized (pfor) to keep the test fast."""
    draws = tf.vectorized_map(
        lambda i: chunking.sample_chunk_index(length, chunk, p_min, seed=tf.stack([seed, i])),
        tf.range(DRAWS, dtype=tf.int64),
    )
    return draws.numpy()


@pytest.mark.parametrize(
    "length, p_min",
    [(10, 0.1), (16, 0.1), (40, 0.1), (150, 0.1), (160, 0.1), (160, 0.01)],
    ids=["1-chunk", "1-chunk-exact", "3-chunks", "10-chunks", "10-chunks-exact", "p_min-0.01"],
)
def test_chunk_index_frequencies_match_the_policy(length, p_min):
    chunk = 16
    n = -(-length // chunk)
    counts = np.bincount(_draw_chunk_indices(length, chunk, p_min, seed=7), minlength=n)
    assert len(counts) == n  # never an index past the last chunk
    weights = np.array([max((k + 1.0) ** -3, p_min) for k in range(n)])
    if n == 1:
        assert counts[0] == DRAWS
        return
    assert stats.chisquare(counts, DRAWS * weights / weights.sum()).pvalue > 1e-3


def test_chunk_index_is_reproducible_given_the_seed():
    first = [int(chunking.sample_chunk_index(160, 16, seed=[3, i])) for i in range(30)]
    again = [int(chunking.sample_chunk_index(160, 16, seed=[3, i])) for i in range(30)]
    assert first == again and len(set(first)) > 1
    # The same seeds give the same draws inside Dataset.map and vectorized.
    in_map = tf.data.Dataset.range(30).map(
        lambda i: chunking.sample_chunk_index(160, 16, seed=tf.stack([3, i]))
    )
    assert first == [int(k) for k in in_map]
    assert first == list(_draw_chunk_indices(160, 16, 0.1, seed=3)[:30])


def test_length_filter_keep_rate_matches_min_one_l_over_lmax():
    """With one example per encode, `repeat_by_length` is the keep/drop coin of Eq. 11."""
    l_max = 200
    lengths = np.array([20, 100, 150, 200, 400])
    np.testing.assert_allclose(
        chunking.length_filter_keep_probability(lengths, l_max).numpy(),
        np.minimum(1.0, lengths / l_max),
    )
    n = 4000
    ds = tf.data.Dataset.from_tensor_slices({"length": np.repeat(lengths, n).astype(np.int32)})
    filtered = chunking.repeat_by_length(ds, l_max, seed=1).map(lambda ex: ex["length"])
    kept = next(iter(filtered.batch(len(lengths) * n))).numpy()
    for length in lengths:
        p = min(1.0, length / l_max)
        count = np.sum(kept == length)
        assert abs(count - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9, (length, count)
    assert chunking.repeat_by_length(ds, None, seed=1) is ds


@pytest.mark.parametrize("l_max", [None, 200])
def test_several_examples_per_encode_keep_the_mean_of_r_times_the_filter(l_max):
    """r examples per encode: each sequence yields floor(r·q) or one more, mean r·q."""
    r, n = 3, 3000
    lengths = np.array([20, 100, 150, 400])
    ds = tf.data.Dataset.from_tensor_slices({"length": np.repeat(lengths, n).astype(np.int32)})
    repeated = chunking.repeat_by_length(ds, l_max, seed=2, examples_per_encode=r)
    got = next(iter(repeated.map(lambda ex: ex["length"]).batch(10 * r * n))).numpy()
    for length in lengths:
        q = 1.0 if l_max is None else min(1.0, length / l_max)
        mean, frac = r * q, r * q - np.floor(r * q)
        count = np.sum(got == length)
        assert abs(count - n * mean) <= 5 * np.sqrt(n * frac * (1 - frac)) + 1e-9, (length, count)
    with pytest.raises(ValueError, match="examples_per_encode must be a positive integer"):
        chunking.repeat_by_length(ds, l_max, seed=2, examples_per_encode=0)


def test_length_filter_reproducible_and_redrawn_each_pass():
    ds = tf.data.Dataset.range(500).map(lambda i: {"length": tf.cast(i % 50 + 1, tf.int32), "i": i})

    def kept(filtered):
        return list(next(iter(filtered.map(lambda ex: ex["i"]).batch(500))).numpy())

    filtered = chunking.repeat_by_length(ds, 100, seed=5)
    first = kept(filtered)
    assert first == kept(chunking.repeat_by_length(ds, 100, seed=5))
    assert first != kept(filtered)  # a second pass draws new coins


@pytest.mark.parametrize("r, l_max", [(1, 100), (3, 100), (1, None), (3, None)])
def test_kept_runs_once_per_kept_sequence_and_leaves_the_coins_alone(r, l_max):
    """`repeat_by_length(kept=f)` (how chunk_dataset packs only kept sequences) yields f of
    exactly what the call without f yields, with the same coins, f applied once per kept
    sequence: the repeats of one sequence are equal, dropped ones never reach f."""
    ds = tf.data.Dataset.range(300).map(
        lambda i: {"length": tf.cast(i % 50 + 1, tf.int32), "i": i})
    plain = next(iter(chunking.repeat_by_length(ds, l_max, seed=5, examples_per_encode=r)
                      .map(lambda ex: ex["i"]).batch(3000))).numpy()
    calls = tf.Variable(0, dtype=tf.int64)

    def tagged(ex):  # counts its calls; the output is i * 1000 + call number
        with tf.control_dependencies([calls.assign_add(1)]):
            return {**ex, "tag": ex["i"] * 1000 + calls.read_value()}

    hooked = chunking.repeat_by_length(ds, l_max, seed=5, examples_per_encode=r, kept=tagged)
    tags = next(iter(hooked.map(lambda ex: ex["tag"]).batch(3000))).numpy()
    np.testing.assert_array_equal(tags // 1000, plain)  # same sequences, same repeats
    assert int(calls.numpy()) == len(np.unique(plain))  # once per kept sequence
    for i in np.unique(plain):  # every repeat of a sequence is the same call's output
        assert len(np.unique(tags[plain == i])) == 1
    if l_max is not None:
        assert len(np.unique(plain)) < 300  # the filter dropped some: the count can fail


def _reference_example(sequence, chunk, overlap, k, start, codec):
    """The window construction written out slot by slot (numpy, independent of chunking.py)."""
    length = len(sequence)
    window = chunk + overlap
    lo = max(0, k * chunk - overlap)
    hi = min((k + 1) * chunk, length)
    targets = np.zeros((window, 3), np.int32)
    inputs = np.zeros((window, 3), np.int32)
    mask = np.zeros(window, np.float32)
    for i in range(window):
        j = lo + i  # sequence index of slot i
        if j < hi:
            targets[i] = sequence[j]
            mask[i] = float(j >= k * chunk)
        if i == 0:
            inputs[i] = start if lo == 0 else sequence[lo - 1]
        elif j - 1 < hi:
            inputs[i] = sequence[j - 1]
    partial = np_ops.sparse_to_dense(sequence[: k * chunk], codec, codec.grid)
    return {"partial_image": partial, "inputs": inputs, "targets": targets,
            "loss_mask": mask, "window_start": lo}


def _sequences():
    rng = np.random.default_rng(0)
    out = []
    for quality in (50, 75):
        codec = SparseCodec(quality=quality, resolution=32)
        out.append((codec, codec.encode(random_image(rng, 32, 32))))
    codec = SparseCodec(quality=50, resolution=64)
    out.append((codec, codec.encode(render_shapes(0)[0])))
    return out


@pytest.mark.parametrize("chunk, overlap", [(16, 8), (40, 8), (64, 8), (16, 24)])
def test_examples_match_reference_and_leak_no_target(chunk, overlap):
    window = chunk + overlap
    for codec, sequence in _sequences():
        length = len(sequence)
        start = start_triple(codec.dct_channels, codec.num_positions, codec.num_values)
        example = _padded(sequence, length + 37)
        n = -(-length // chunk)
        pairs = tf.data.Dataset.zip(
            tf.data.Dataset.from_tensors(example).repeat(n), tf.data.Dataset.range(n)
        )
        mapped = pairs.map(
            lambda ex, k, codec=codec: chunking.make_training_example(ex, codec, chunk, overlap, k)
        )
        batched = {key: value.numpy() for key, value in next(iter(mapped.batch(n))).items()}
        for k in range(n):
            ref = _reference_example(sequence, chunk, overlap, k, start, codec)
            got = {key: value[k] for key, value in batched.items()}
            for key, value in ref.items():
                np.testing.assert_array_equal(got[key], value, err_msg=f"{key} k={k}")
            assert got["loss_tokens"] == got["loss_mask"].sum() == min(chunk, length - k * chunk)
            assert got["chunk_index"] == k and got["length"] == length
            # No target of chunk k has its coefficient in the partial image.
            g = codec.grid[1]
            target_rows = sequence[k * chunk : (k + 1) * chunk]
            for c, p, _ in target_rows[target_rows[:, 0] != codec.eos]:
                assert got["partial_image"][p // g, p % g, c] == 0
            # START appears exactly once, in slot 0, and only at sequence start.
            is_start = np.all(got["inputs"] == start, axis=1)
            assert is_start.sum() == (ref["window_start"] == 0) and not is_start[1:].any()
            assert not np.all(got["targets"] == start, axis=1).any()
        # Eagerly, outside tf.data, the same examples (first chunks, last chunks).
        for k in sorted({0, 1, n - 2, n - 1}):
            eager = chunking.make_training_example(example, codec, chunk, overlap, k)
            assert eager["targets"].shape == (window, 3)
            for key, value in eager.items():
                np.testing.assert_array_equal(value.numpy(), batched[key][k], err_msg=key)


def test_chunk_index_past_the_sequence_is_an_error():
    codec = SparseCodec(resolution=32)
    example = _padded(np.array([[3, 1, 1201], [codec.eos, 0, 0]]), 10)
    with pytest.raises(tf.errors.InvalidArgumentError, match="chunk_index"):
        chunking.make_training_example(example, codec, 2, 1, 1)


def test_chunk_dataset_static_batches_reproducible_and_following_the_policy():
    codec = SparseCodec(quality=75, resolution=16)
    rng = np.random.default_rng(1)
    sequence = codec.encode(random_image(rng, 16, 16))
    chunk, overlap, batch = 8, 4, 50
    n = -(-len(sequence) // chunk)
    example = _padded(sequence, 200, label=2)
    sequences = tf.data.Dataset.from_tensors(example).repeat(2000)

    ds = chunking.chunk_dataset(sequences, codec, chunk, overlap, batch, seed=4,
                                shuffle_buffer=64)
    spec = ds.element_spec
    # Compact: the packed sequence and the chunk's bounds, no dense image.
    assert "partial_image" not in spec
    assert spec["packed"].shape == (batch, 200, 2) and spec["packed"].dtype == tf.uint8
    assert spec["channel_counts"].shape == (batch, codec.dct_channels)
    assert spec["label"].shape == (batch,)

    batches = list(ds)
    assert len(batches) == 2000 // batch
    indices = np.concatenate([b["chunk_index"].numpy() for b in batches])
    weights = np.array([max((k + 1.0) ** -3, 0.1) for k in range(n)])
    counts = np.bincount(indices, minlength=n)
    assert stats.chisquare(counts, len(indices) * weights / weights.sum()).pvalue > 1e-3

    # Expanded (as the trainer does on the device), each example is the dense one.
    layout = compact.SequenceLayout.of_codec(codec)
    dense = chunking.expand_chunks(batches[0], layout, chunk + overlap)
    assert dense["partial_image"].shape == (batch, 2, 2, codec.dct_channels)
    for i in range(batch):
        want = chunking.make_training_example(example, codec, chunk, overlap,
                                              batches[0]["chunk_index"][i])
        for key, value in want.items():
            np.testing.assert_array_equal(dense[key][i].numpy(), value.numpy(), err_msg=key)

    # Every pass (a Keras epoch) draws new chunks; a rebuilt dataset repeats the first pass.
    second_pass = np.concatenate([b["chunk_index"].numpy() for b in ds])
    assert not np.array_equal(second_pass, indices)
    again = next(iter(chunking.chunk_dataset(sequences, codec, chunk, overlap, batch, seed=4,
                                             shuffle_buffer=64)))
    for key, value in batches[0].items():
        np.testing.assert_array_equal(again[key].numpy(), value.numpy(), err_msg=key)

    with pytest.raises(ValueError, match="resolution"):
        chunking.chunk_dataset(sequences, SparseCodec(), chunk, overlap, batch, seed=0)


@pytest.mark.parametrize("l_max", (0, -10))
def test_non_positive_l_max_is_an_error(l_max):
    with pytest.raises(ValueError, match=f"l_max must be a positive length .* got {l_max}"):
        chunking.length_filter_keep_probability(100, l_max)


@pytest.mark.parametrize("loss_from_channel", [3, 64])
def test_loss_restricted_to_the_non_prefix_channels(loss_from_channel):
    """Fine-tuning for a forced prefix: only targets with channel >= loss_from_channel (and
    EOS) carry loss; everything else about the example is unchanged."""
    codec, sequence = _sequences()[2]
    chunk, overlap = 40, 8
    example = _padded(sequence, len(sequence) + 5)
    for k in range(-(-len(sequence) // chunk)):
        full = chunking.make_training_example(example, codec, chunk, overlap, k)
        restricted = chunking.make_training_example(example, codec, chunk, overlap, k,
                                                    loss_from_channel)
        for key in ("partial_image", "inputs", "targets", "window_start"):
            np.testing.assert_array_equal(full[key].numpy(), restricted[key].numpy())
        targets = full["targets"].numpy()
        expected = full["loss_mask"].numpy() * (targets[:, 0] >= loss_from_channel)
        np.testing.assert_array_equal(restricted["loss_mask"].numpy(), expected)
        assert int(restricted["loss_tokens"]) == expected.sum()
    # The restriction really removes something: the DC band / luma part is in chunk 0.
    first = chunking.make_training_example(example, codec, chunk, overlap, 0, loss_from_channel)
    assert first["loss_mask"].numpy().sum() < chunk
