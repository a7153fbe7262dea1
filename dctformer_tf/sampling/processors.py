"""Logits processors and the categorical draw of the sampler (docs/design.md §5).

Pure functions of float32 logits `[B, N]`, one row per sample, usable in `tf.function` and
under XLA. Masked entries hold `MASKED` (a large finite negative number rather than −inf, so
that a softmax over a row never produces NaN); every processor keeps masked entries masked.
Processors run in the order masks → temperature → top-k → top-p, per head.
"""

from dataclasses import dataclass

import tensorflow as tf

MASKED = -1e9
HEADS = ("channel", "position", "value")


@dataclass(frozen=True)
class HeadSettings:
    """How one head (channel, position or value) samples.

    Args:
      temperature: float > 0. Logits are divided by it (1 = the model's distribution).
      top_k: int >= 0. Keep the k most likely tokens per row; 0 keeps all.
      top_p: float in (0, 1]. Nucleus: keep the smallest set of most likely tokens whose
        probability mass is at least top_p; 1 keeps all.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature!r}")
        if isinstance(self.top_k, bool) or int(self.top_k) != self.top_k or self.top_k < 0:
            raise ValueError(f"top_k must be a non-negative integer (0 = off), got {self.top_k!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")


@dataclass(frozen=True)
class SamplingSettings:
    """Per-head `HeadSettings`; `SamplingSettings.uniform(...)` uses one for all heads."""

    channel: HeadSettings = HeadSettings()
    position: HeadSettings = HeadSettings()
    value: HeadSettings = HeadSettings()

    @classmethod
    def uniform(cls, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
        head = HeadSettings(temperature, top_k, top_p)
        return cls(head, head, head)

    def head(self, name: str) -> HeadSettings:
        return getattr(self, name)


def mask_logits(logits: tf.Tensor, allowed: tf.Tensor) -> tf.Tensor:
    """float32 [B, N], bool [B, N] -> logits with the disallowed entries set to MASKED."""
    return tf.where(allowed, logits, tf.cast(MASKED, logits.dtype))


def apply_temperature(logits: tf.Tensor, temperature) -> tf.Tensor:
    """Divide by `temperature` (float scalar > 0); masked entries stay masked."""
    scaled = logits / tf.cast(temperature, logits.dtype)
    return tf.where(logits <= MASKED, logits, scaled)


def apply_top_k(logits: tf.Tensor, top_k) -> tf.Tensor:
    """Keep the `top_k` largest logits of each row (int scalar; 0 keeps all).

    Ties with the k-th largest value are kept, so a row may keep more than k entries when
    values repeat (as in the reference implementations).
    """
    top_k = tf.cast(top_k, tf.int32)
    n = tf.shape(logits)[-1]

    def keep_top_k():
        k = tf.minimum(top_k, n)
        sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
        kth = tf.gather(sorted_logits, k - 1, axis=-1)[:, None]  # [B, 1]
        return tf.where(logits < kth, tf.cast(MASKED, logits.dtype), logits)

    return tf.cond(top_k > 0, keep_top_k, lambda: logits)


def apply_top_p(logits: tf.Tensor, top_p) -> tf.Tensor:
    """Nucleus filtering: keep, per row, the smallest set of most likely tokens whose
    probability mass is >= `top_p` (float scalar; 1 keeps all).

    A token is kept iff the mass of the tokens strictly more likely than it is < top_p, so
    the most likely token is always kept.
    """
    top_p = tf.cast(top_p, tf.float32)

    def keep_nucleus():
        order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)  # [B, N]
        sorted_logits = tf.gather(logits, order, batch_dims=1)
        probs = tf.nn.softmax(tf.cast(sorted_logits, tf.float32), axis=-1)
        mass_before = tf.cumsum(probs, axis=-1, exclusive=True)  # [B, N]
        keep_sorted = mass_before < top_p
        # Scatter the sorted decisions back to vocabulary order.
        keep = tf.gather(keep_sorted, tf.argsort(order, axis=-1), batch_dims=1)
        return tf.where(keep, logits, tf.cast(MASKED, logits.dtype))

    return tf.cond(top_p < 1.0, keep_nucleus, lambda: logits)


def process_logits(logits: tf.Tensor, allowed: tf.Tensor, temperature, top_k, top_p):
    """masks -> temperature -> top-k -> top-p on float32 [B, N] logits.

    `temperature`, `top_k`, `top_p` may be Python numbers or scalar tensors (the SavedModel
    signature passes tensors).
    """
    logits = mask_logits(tf.cast(logits, tf.float32), allowed)
    logits = apply_temperature(logits, temperature)
    logits = apply_top_k(logits, top_k)
    return apply_top_p(logits, top_p)


def sample_categorical(logits: tf.Tensor, seed) -> tf.Tensor:
    """One draw per row of float32 [B, N] logits -> int32 [B] (Gumbel-max).

    The Gumbel noise is `stateless_uniform([B, N], seed)`: row b's noise is entries
    `[b·N, (b+1)·N)` of one counter-based stream, so the same seed gives the same draws.
    Masked entries (MASKED) can never win: for float32 uniforms in [1e-20, 1) the Gumbel noise
    lies in [−3.9, 16.7].

    Args:
      seed: int32 [2] stateless seed.
    """
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed, minval=1e-20, maxval=1.0)
    gumbel = -tf.math.log(-tf.math.log(uniform))
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)
