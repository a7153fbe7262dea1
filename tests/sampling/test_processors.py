"""Logits processors against numpy references: temperature, top-k and top-p per row, and
the Gumbel-max draw against the softmax it samples from."""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.sampling.processors import (
    MASKED,
    HeadSettings,
    apply_temperature,
    apply_top_k,
    apply_top_p,
    process_logits,
    sample_categorical,
)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_temperature_scales_the_distribution_and_keeps_masks(rng):
    logits = rng.normal(size=(4, 10)).astype(np.float32)
    logits[:, 3] = MASKED
    out = apply_temperature(tf.constant(logits), 0.5).numpy()
    np.testing.assert_allclose(out[:, :3], logits[:, :3] / 0.5, rtol=1e-6)
    assert (out[:, 3] == MASKED).all()


@pytest.mark.parametrize("k", [1, 3, 7])
def test_top_k_keeps_the_k_largest_of_each_row(rng, k):
    logits = rng.normal(size=(6, 20)).astype(np.float32)  # continuous: no ties
    out = apply_top_k(tf.constant(logits), k).numpy()
    for row, kept in zip(logits, out, strict=True):
        expected = set(np.argsort(-row)[:k].tolist())
        assert set(np.flatnonzero(kept > MASKED).tolist()) == expected
        np.testing.assert_array_equal(kept[list(expected)], row[list(expected)])


def test_top_k_zero_or_larger_than_vocabulary_keeps_all(rng):
    logits = tf.constant(rng.normal(size=(3, 5)).astype(np.float32))
    np.testing.assert_array_equal(apply_top_k(logits, 0).numpy(), logits.numpy())
    np.testing.assert_array_equal(apply_top_k(logits, 50).numpy(), logits.numpy())


@pytest.mark.parametrize("p", [0.05, 0.3, 0.6, 0.9, 0.999])
def test_top_p_keeps_the_smallest_set_with_mass_at_least_p(rng, p):
    logits = (2 * rng.normal(size=(8, 30))).astype(np.float32)
    out = apply_top_p(tf.constant(logits), p).numpy()
    for row, kept in zip(logits, out, strict=True):
        probs = _softmax(row.astype(np.float64))
        order = np.argsort(-probs)
        # Smallest n with cumulative mass >= p.
        n = int(np.searchsorted(np.cumsum(probs[order]), p - 1e-7) + 1)
        assert set(np.flatnonzero(kept > MASKED).tolist()) == set(order[:n].tolist())
        assert probs[order[: n - 1]].sum() < p <= probs[order[:n]].sum() + 1e-6


def test_top_p_one_keeps_all_and_always_keeps_the_argmax(rng):
    logits = tf.constant(rng.normal(size=(4, 9)).astype(np.float32))
    np.testing.assert_array_equal(apply_top_p(logits, 1.0).numpy(), logits.numpy())
    tiny = apply_top_p(logits, 1e-6).numpy()
    assert ((tiny > MASKED).sum(-1) == 1).all()
    assert (np.argmax(tiny, -1) == np.argmax(logits.numpy(), -1)).all()


def test_process_logits_masks_first():
    logits = tf.constant([[5.0, 1.0, 0.0, -1.0]])
    allowed = tf.constant([[False, True, True, True]])
    out = process_logits(logits, allowed, temperature=1.0, top_k=1, top_p=1.0).numpy()
    # The masked maximum does not count toward top-k: the best allowed entry survives.
    assert np.flatnonzero(out > MASKED).tolist() == [1]


def test_gumbel_draws_follow_the_softmax_and_never_pick_masked():
    logits = np.log(np.array([[0.5, 0.3, 0.2, 1e-3]], np.float32))
    logits[0, 3] = MASKED
    batch = np.repeat(logits, 20000, axis=0)
    draws = sample_categorical(tf.constant(batch), tf.constant([1, 2])).numpy()
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert freq[3] == 0
    # Chi-square against (0.5, 0.3, 0.2): 2 dof, 99.9 % quantile 13.8.
    expected = np.array([0.5, 0.3, 0.2]) * len(draws)
    chi2 = (((freq[:3] * len(draws)) - expected) ** 2 / expected).sum()
    assert chi2 < 13.8


def test_same_seed_same_draws_other_seed_other_draws(rng):
    logits = tf.constant(rng.normal(size=(64, 50)).astype(np.float32))
    a = sample_categorical(logits, tf.constant([3, 4])).numpy()
    b = sample_categorical(logits, tf.constant([3, 4])).numpy()
    c = sample_categorical(logits, tf.constant([3, 5])).numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


@pytest.mark.parametrize("bad", [dict(temperature=0.0), dict(top_k=-1), dict(top_p=0.0),
                                 dict(top_p=1.5), dict(top_k=1.5)])
def test_head_settings_reject_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        HeadSettings(**bad)
