"""`DCTransformerTrainer`: the DCTransformer with its training loss and metrics, for `fit`.

The model itself only maps inputs to logits; this subclass adds what Keras' `train_step`
needs: `compute_loss` (the three masked cross-entropies, docs/design.md §4) and metrics (component
losses, bits per loss token, tokens seen). Weights and layer names are the parent's, so a
checkpoint of the trainer restores into a plain `DCTransformer` for sampling and export.
"""

import keras
import tensorflow as tf

from dctformer_tf.model import DCTransformer
from dctformer_tf.model.losses import COMPONENTS, loss_summary


@keras.saving.register_keras_serializable(package="dctformer_tf")
class DCTransformerTrainer(DCTransformer):
    """A `DCTransformer` that trains on `data.chunking` batches with `model.fit`.

    The batch is one dict used as `x` (no `y`): the model inputs plus `loss_mask` [B, T]
    (float, 1 on the targets of the chunk). Under a distribution strategy each replica's
    loss is its nats divided by the *global* number of loss tokens, so the replicas' losses
    add up to the global-batch loss whatever the split (Keras sums replica gradients).

    Metrics (all weighted by loss tokens, so they are per-token over the whole epoch):
    `channel_loss`, `position_loss`, `value_loss` (nats/token), `bits_per_token`; and
    `tokens_seen`, the run's cumulative loss-bearing tokens, a non-trainable variable kept in
    checkpoints (the paper's "tokens processed").
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.component_trackers = {
            name: keras.metrics.Mean(name=f"{name}_loss") for name in COMPONENTS
        }
        self.bits_tracker = keras.metrics.Mean(name="bits_per_token")
        self.tokens_seen = self.add_weight(
            shape=(), dtype="float64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="tokens_seen",
        )

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
            self.tokens_seen.assign_add(tf.cast(global_tokens, "float64"))
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
