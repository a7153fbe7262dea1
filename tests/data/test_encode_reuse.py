"""Encode once, train many (docs/design.md §2.4): with r examples per encoded sequence the
training examples' (length, chunk index) follow exactly the distribution of the paper's one
example per encode, `p(L)·min(1, L/l_max)·P(k | L)`, at 1/r of the encodes."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from dctformer_tf.data import chunking
from dctformer_tf.dct import SparseCodec

LENGTHS = (40, 100, 250, 500)  # equally likely; 2, 4, 8 and 16 chunks of 32
CHUNK, OVERLAP, L_MAX, MAX_LENGTH = 32, 8, 400, 512
CODEC = SparseCodec(quality=75, resolution=16)  # C = 192, P = 4: room for 768 elements


def _sequence(length: int) -> np.ndarray:
    """A valid sequence of `length` elements (EOS included): coefficients in flat order."""
    triples = np.zeros((MAX_LENGTH, 3), np.int32)
    flat = np.arange(length - 1)
    triples[: length - 1] = np.stack([flat // 4, flat % 4, np.ones_like(flat)], axis=1)
    triples[length - 1] = (CODEC.eos, 0, 0)
    return triples


def _source(num_sequences: int) -> tf.data.Dataset:
    base = tf.data.Dataset.from_tensor_slices({
        "triples": np.stack([_sequence(n) for n in LENGTHS]),
        "length": np.array(LENGTHS, np.int32),
        "content_hw": np.full((len(LENGTHS), 2), 16, np.int32),
        "label": np.arange(len(LENGTHS), dtype=np.int32)})
    return base.repeat(num_sequences // len(LENGTHS))


def _length_and_chunk(num_sequences: int, r: int, seed: int, l_max=L_MAX) -> np.ndarray:
    batches = chunking.chunk_dataset(_source(num_sequences), CODEC, CHUNK, OVERLAP, 250, seed,
                                     l_max=l_max, shuffle_buffer=256, drop_remainder=False,
                                     examples_per_encode=r)
    pairs = [np.stack([b["length"].numpy(), b["chunk_index"].numpy()], axis=1) for b in batches]
    return np.concatenate(pairs)


def _cells():
    return [(n, k) for n in LENGTHS for k in range(-(-n // CHUNK))]


def _expected_probabilities() -> np.ndarray:
    """p(L, k) ∝ p(L)·q(L)·P(k | L), written out independently of chunking.py."""
    probs = []
    for n, k in _cells():
        weights = np.array([max((j + 1.0) ** -3, 0.1) for j in range(-(-n // CHUNK))])
        probs.append(min(1.0, n / L_MAX) * weights[k] / weights.sum())
    probs = np.array(probs)
    return probs / probs.sum()


def _counts(pairs: np.ndarray) -> np.ndarray:
    index = {cell: i for i, cell in enumerate(_cells())}
    counts = np.zeros(len(index))
    for length, k in pairs:
        counts[index[(int(length), int(k))]] += 1
    return counts


def test_several_examples_per_encode_keep_the_distribution_of_length_and_chunk():
    one = _length_and_chunk(24_000, r=1, seed=1)
    four = _length_and_chunk(6_000, r=4, seed=2)
    expected = _expected_probabilities()
    for pairs in (one, four):
        counts = _counts(pairs)
        assert stats.chisquare(counts, counts.sum() * expected).pvalue > 0.01
    # The two pipelines against each other (two-sample test on the same cells).
    table = np.stack([_counts(one), _counts(four)])
    assert stats.chi2_contingency(table[:, table.sum(axis=0) > 0]).pvalue > 0.01
    # Encodes per example: 1 / (r · E[q]), E[q] = mean of min(1, L / l_max) over LENGTHS.
    mean_q = np.mean(np.minimum(1.0, np.array(LENGTHS) / L_MAX))
    assert len(one) / 24_000 == pytest.approx(mean_q, rel=0.03)
    assert 6_000 / len(four) == pytest.approx(1 / (4 * mean_q), rel=0.03)


def test_the_distribution_test_detects_a_pipeline_that_ignores_the_length_filter():
    """The same test on r copies without the length filter fails: it has power."""
    pairs = _length_and_chunk(4_000, r=4, seed=3, l_max=None)
    counts = _counts(pairs)
    assert stats.chisquare(counts, counts.sum() * _expected_probabilities()).pvalue < 1e-6


def test_examples_of_one_encode_are_spread_over_batches():
    """Shuffling spreads the r examples of a sequence over several batches."""
    r, batch = 8, 16
    source = tf.data.Dataset.range(64).map(lambda i: {
        "triples": tf.constant(_sequence(250)), "length": tf.constant(250, tf.int32),
        "content_hw": tf.constant([16, 16], tf.int32), "label": tf.cast(i, tf.int32)})
    batches = chunking.chunk_dataset(source, CODEC, CHUNK, OVERLAP, batch, seed=0,
                                     shuffle_buffer=256, examples_per_encode=r)
    where = {}
    for i, b in enumerate(batches):
        for label in b["label"].numpy():
            where.setdefault(int(label), set()).add(i)
    assert np.mean([len(batches_of) for batches_of in where.values()]) >= 4
