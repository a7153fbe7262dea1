"""`DCTransformerTrainer`: the DCTransformer with its training loss and metrics, for `fit`.

The model itself only maps inputs to logits; this subclass adds what Keras' `train_step`
needs: `compute_loss` (the three masked cross-entropies, docs/design.md §4) and metrics (component
losses, bits per loss token, tokens seen). Weights and layer names are the parent's, so a
checkpoint of the trainer restores into a plain `DCTransformer` for sampling and export.
"""

import keras
import tensorflow as tf
from keras.src.losses.loss import unscale_loss_for_distribution

from dctformer_tf.data.chunking import expand_chunks, is_compact
from dctformer_tf.data.compact import SequenceLayout
from dctformer_tf.model import DCTransformer
from dctformer_tf.model.losses import COMPONENTS, loss_summary


@keras.saving.register_keras_serializable(package="dctformer_tf")
class DCTransformerTrainer(DCTransformer):
    """A `DCTransformer` that trains on `data.chunking` batches with `model.fit`.

    The batch is one dict used as `x` (no `y`): either compact (`data.chunking.chunk_dataset`:
    packed sequences and chunk bounds, expanded here, inside the compiled step, by
    `expand_chunks`) or already dense (the model inputs plus `loss_mask` [B, T], float, 1 on
    the targets of the chunk). Under a distribution strategy each replica's
    loss is its nats divided by the *global* number of loss tokens, so the replicas' losses
    add up to the global-batch loss whatever the split (Keras sums replica gradients).

    Metrics (all weighted by loss tokens, so they are per-token over the whole epoch):
    `channel_loss`, `position_loss`, `value_loss` (nats/token), `bits_per_token`; and
    `tokens_seen`, the run's cumulative loss-bearing tokens, a non-trainable variable kept in
    checkpoints (the paper's "tokens processed").
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.nonfinite = NonFiniteMonitor()
        self.component_trackers = {
            name: keras.metrics.Mean(name=f"{name}_loss") for name in COMPONENTS
        }
        self.bits_tracker = keras.metrics.Mean(name="bits_per_token")
        self.tokens_seen = self.add_weight(
            # int64, not float64: TPUs have no float64, and a count is exact in integers.
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="tokens_seen",
        )

    def train_step(self, data):
        # Keras' own train step (keras/src/backend/tensorflow/trainer.py, Keras 3.15), with
        # one addition between the gradients and the update: record the first step whose
        # loss or gradient norm is not finite, for `callbacks.StopOnNonFinite`.
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = self.model_inputs(x)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                     training=True)
            self._loss_tracker.update_state(unscale_loss_for_distribution(loss),
                                            sample_weight=tf.shape(x["targets"])[0])
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        self.nonfinite.record(loss, gradients, self.optimizer.iterations)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return super().test_step((self.model_inputs(x), y, sample_weight))

    def model_inputs(self, x: dict) -> dict:
        """The dense model inputs of a batch: compact batches are expanded on the device
        (the partial images are scattered here, not shipped from the host)."""
        if not is_compact(x):
            return x
        layout = SequenceLayout(self.block_size, self.grid_size, self.clip)
        return expand_chunks(x, layout, self.window)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        summary = loss_summary(y_pred, x["targets"], x["loss_mask"])  # per local loss token
        local_tokens = summary["loss_tokens"]
        global_tokens = local_tokens
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            global_tokens = replica.all_reduce("sum", local_tokens)
        for name in COMPONENTS:
            self.component_trackers[name].update_state(
                summary[f"{name}_loss"], sample_weight=local_tokens
            )
        self.bits_tracker.update_state(summary["bits_per_token"], sample_weight=local_tokens)
        if training:
            # Every replica adds the global count and the first replica's result is kept:
            # a "sum" aggregation would sum the replicas' new values (Keras assigns
            # value + delta), not their deltas.
            self.tokens_seen.assign_add(tf.cast(tf.round(global_tokens), "int64"))
        # nats / global tokens: Keras multiplies by 1/replicas inside its own compute_loss;
        # ours is already the right scale for summed replica gradients.
        return summary["loss"] * tf.math.divide_no_nan(local_tokens, global_tokens)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' pre-fit symbolic build reduces a dict batch with `strategy.reduce`, which
        # MultiWorkerMirroredStrategy cannot do (keras-team/keras#20329, open). The trainer
        # is built with its optimizer before `fit` (experiment.train), so there is nothing
        # left to build: skip it then, and defer to Keras otherwise.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        results = super().compute_metrics(x, y, y_pred, sample_weight)
        results["tokens_seen"] = tf.cast(self.tokens_seen, "float32")
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces the logs of a multi-worker step with reduce(MEAN, axis=0), which
            # needs an axis: give every scalar one; the reduction returns scalars again.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results


class NonFiniteMonitor:
    """The first optimizer step (1-based) whose loss or global gradient norm was not finite,
    kept on the device so that the train step never waits on the host for it.

    Deliberately not tracked by checkpoints: it describes this process's run, and a restart
    from a good checkpoint starts clean.
    """

    def __init__(self):
        # Created with the trainer, so in its strategy scope: a mirrored variable there,
        # which every replica writes with the same (all-reduced) value.
        self.step = tf.Variable(-1, dtype=tf.int64, trainable=False,
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                                name="first_nonfinite_step")

    def record(self, loss, gradients, iterations) -> None:
        """Called in the train step, before the update of step `iterations + 1`."""
        finite = tf.math.is_finite(tf.cast(loss, tf.float32)) & tf.math.is_finite(
            tf.linalg.global_norm([g for g in gradients if g is not None]))
        bad = 1.0 - tf.cast(finite, tf.float32)
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            bad = replica.all_reduce("sum", bad)  # every replica takes the same decision
        first = (bad > 0) & (self.step < 0)
        self.step.assign(tf.where(first, tf.cast(iterations, tf.int64) + 1, self.step))

    def first_step(self) -> int | None:
        """The recorded step, or None (reads the device: call at logging intervals)."""
        value = int(self.step.numpy())
        return value if value >= 0 else None
