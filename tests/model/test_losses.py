"""The masked three-head loss against a numpy reference (log-softmax written out by hand)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.model import losses

B, T, C, P, V = 3, 7, 4, 6, 9  # channel vocabulary C + 1, EOS = C


def _batch(rng):
    logits = {
        "channel_logits": rng.normal(0, 3, (B, T, C + 1)).astype(np.float32),
        "position_logits": rng.normal(0, 3, (B, T, P)).astype(np.float32),
        "value_logits": rng.normal(0, 3, (B, T, V)).astype(np.float32),
    }
    targets = np.stack(
        [rng.integers(0, C, (B, T)), rng.integers(0, P, (B, T)), rng.integers(0, V, (B, T))],
        axis=-1,
    ).astype(np.int32)
    targets[0, 4] = targets[2, 1] = (C, 0, 0)  # EOS elements inside the mask
    targets[1, 6] = (C, 0, 0)  # and one outside it
    mask = np.ones((B, T), np.float32)
    mask[0, 5:] = 0.0
    mask[1, :2] = mask[1, 6] = 0.0
    return logits, targets, mask


def _reference_nll(logits, targets):
    """[B, T] nats per component: −log_softmax at the target; EOS keeps only its channel."""
    def log_softmax(x):
        x = x.astype(np.float64)
        shifted = x - x.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    out = {name: np.zeros((B, T)) for name in ("channel", "position", "value")}
    for b in range(B):
        for t in range(T):
            c, p, v = targets[b, t]
            out["channel"][b, t] = -log_softmax(logits["channel_logits"][b, t])[c]
            if c != C:
                out["position"][b, t] = -log_softmax(logits["position_logits"][b, t])[p]
                out["value"][b, t] = -log_softmax(logits["value_logits"][b, t])[v]
    return out


def _reference_summary(logits, targets, mask):
    nll = _reference_nll(logits, targets)
    tokens = mask.sum()
    out = {f"{k}_loss": (v * mask).sum() / tokens for k, v in nll.items()}
    out["loss"] = out["channel_loss"] + out["position_loss"] + out["value_loss"]
    out["bits_per_token"] = out["loss"] / math.log(2)
    out["loss_tokens"] = tokens
    return out


@pytest.mark.parametrize("dtype", ("float32", "bfloat16"))
def test_element_nll_and_summary_match_numpy(rng, dtype):
    logits, targets, mask = _batch(rng)
    cast = {k: tf.cast(v, dtype) for k, v in logits.items()}
    # The reference sees the values the function sees: bfloat16-rounded, then float32.
    seen = {k: tf.cast(v, tf.float32).numpy() for k, v in cast.items()}
    nll = losses.element_nll(cast, targets)
    for name, expected in _reference_nll(seen, targets).items():
        assert nll[name].dtype == tf.float32 and nll[name].shape == (B, T)
        np.testing.assert_allclose(nll[name].numpy(), expected, rtol=1e-5, atol=1e-5)
    summary = losses.loss_summary(cast, targets, mask)
    for name, expected in _reference_summary(seen, targets, mask).items():
        np.testing.assert_allclose(summary[name].numpy(), expected, rtol=1e-5, err_msg=name)


def test_eos_costs_its_channel_only_and_masked_elements_nothing(rng):
    logits, targets, mask = _batch(rng)
    before = losses.nll_sums(logits, targets, mask)
    changed = {k: v.copy() for k, v in logits.items()}
    eos = targets[..., 0] == C
    changed["position_logits"][eos] = rng.normal(0, 50, (eos.sum(), P))
    changed["value_logits"][eos] = rng.normal(0, 50, (eos.sum(), V))
    for head in changed.values():
        head[mask == 0] = rng.normal(0, 50, ((mask == 0).sum(), head.shape[-1]))
    after = losses.nll_sums(changed, targets, mask)
    for name in ("channel", "position", "value", "total", "loss_tokens"):
        np.testing.assert_allclose(after[name].numpy(), before[name].numpy(), rtol=1e-6)
    assert before["loss_tokens"].numpy() == mask.sum()


def test_replica_shares_with_the_global_token_count_add_up_to_the_batch_loss(rng):
    logits, targets, mask = _batch(rng)
    whole = losses.loss_summary(logits, targets, mask)
    tokens = mask.sum()
    shares = [
        losses.loss_summary({k: v[part] for k, v in logits.items()}, targets[part], mask[part],
                            num_tokens=tokens)
        for part in (slice(0, 1), slice(1, B))
    ]
    for name in ("loss", "channel_loss", "position_loss", "value_loss", "bits_per_token"):
        np.testing.assert_allclose(sum(s[name].numpy() for s in shares), whole[name].numpy(),
                                   rtol=1e-6)


def test_summary_in_a_compiled_function(rng):
    logits, targets, mask = _batch(rng)
    compiled = tf.function(losses.loss_summary, jit_compile=True)
    eager = losses.loss_summary(logits, targets, mask)
    for name, value in compiled(logits, targets, mask).items():
        np.testing.assert_allclose(value.numpy(), eager[name].numpy(), rtol=1e-6)
