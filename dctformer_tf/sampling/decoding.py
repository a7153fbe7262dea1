"""Step-wise decoders the sampler drives: cached (fast) and no-cache (reference).

Both expose the same three calls per window step `t`, each returning `(logits, state)`:
`channel(state, previous_triple [B, 3], t)`, `position(state, channel [B], t)`,
`value(state, position [B], t)`, after `init(encoder_output, label)`. The sampler's loop is
written once against this interface, so the two differ only in how the logits are computed:

- `CachedDecoding`: the model's `decode_*_step` methods with self-attention key/value
  caches; one new token per step.
- `NoCacheDecoding`: what the public PyTorch peer does: keeps the window's inputs and
  targets so far and reruns each decoder over the whole window at every step, reading the
  logits at `t`. It is the speed baseline of `tools/bench_sampling.py` and the oracle of the
  cached path (same seed -> same triples).
"""

import tensorflow as tf


class CachedDecoding:
    """Cached step decoding of a `DCTransformer` over windows of `window` steps."""

    def __init__(self, model, window: int):
        self.model = model
        self.window = window

    def init(self, encoder_output, label):
        return {"cache": self.model.init_cache(encoder_output, self.window), "label": label}

    def channel(self, state, previous_triple, t):
        logits, cache = self.model.decode_channel_step(
            state["cache"], previous_triple, t, label=state["label"])
        return logits, {**state, "cache": cache}

    def position(self, state, channel, t):
        logits, cache = self.model.decode_position_step(state["cache"], channel, t)
        return logits, {**state, "cache": cache}

    def value(self, state, position, t):
        logits, cache = self.model.decode_value_step(state["cache"], position, t)
        return logits, {**state, "cache": cache}


class NoCacheDecoding:
    """Reference decoding: every step reruns the decoders over the whole window.

    State: the encoder output, `inputs`/`targets [B, window, 3]` filled up to step t, and
    the channel/position decoders' hidden states of the last full pass.
    """

    def __init__(self, model, window: int):
        self.model = model
        self.window = window

    def init(self, encoder_output, label):
        batch = tf.shape(encoder_output)[0]
        zeros = tf.zeros([batch, self.window, 3], tf.int32)
        # The decoders hand float32 hidden states on, also under mixed_bfloat16 (§3).
        hidden = tf.zeros([batch, self.window, self.model.d_model], tf.float32)
        return {"encoder_output": encoder_output, "label": label, "inputs": zeros,
                "targets": zeros, "channel_hidden": hidden, "position_hidden": hidden}

    @staticmethod
    def _set(buffer, t, column, value):
        """buffer [B, T, 3] with column `column` of step t set to value [B]."""
        batch = tf.shape(buffer)[0]
        index = tf.stack([tf.range(batch), tf.fill([batch], t), tf.fill([batch], column)], -1)
        return tf.tensor_scatter_nd_update(buffer, index, tf.cast(value, tf.int32))

    def channel(self, state, previous_triple, t):
        inputs = state["inputs"]
        for column in range(3):
            inputs = self._set(inputs, t, column, previous_triple[:, column])
        label = state["label"] if self.model.num_classes else None
        logits, hidden = self.model.channel_decoder(inputs, state["encoder_output"], label=label)
        return logits[:, t], {**state, "inputs": inputs, "channel_hidden": hidden}

    def position(self, state, channel, t):
        targets = self._set(state["targets"], t, 0, channel)
        logits, hidden = self.model.position_decoder(
            state["channel_hidden"], targets[..., 0], state["encoder_output"])
        return logits[:, t], {**state, "targets": targets, "position_hidden": hidden}

    def value(self, state, position, t):
        targets = self._set(state["targets"], t, 1, position)
        logits = self.model.value_decoder(
            state["position_hidden"], targets[..., 1], state["encoder_output"])
        return logits[:, t], {**state, "targets": targets}
