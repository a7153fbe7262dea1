"""`DCTransformerTrainer`: the DCTransformer with its training loss and metrics, for `fit`.

The model itself only maps inputs to logits; this subclass adds what Keras' own `fit`
needs, through its public contract only, so that the same code trains on the TensorFlow and
the JAX backends (docs/design.md §4):
- `call` expands a compact batch on the device (`data.expansion`) and passes the targets
  and loss mask through with the logits;
- `compute_loss` is the three masked cross-entropies (`model.losses`) and updates the metrics
  and the token count;
- Keras' backend's own `train_step` does the rest; `MonitoredAdam` records a non-finite
  step where both backends hand it the gradients.

Weights and layer names are the parent's, so a checkpoint of the trainer restores into a
plain `DCTransformer` for sampling and export.
"""

import keras
from keras import ops

from dctformer_tf.data.expansion import expand_chunks, is_compact
from dctformer_tf.data.layout import SequenceLayout
from dctformer_tf.model import DCTransformer
from dctformer_tf.model.losses import COMPONENTS, loss_summary
from dctformer_tf.train import replicas


@keras.saving.register_keras_serializable(package="dctformer_tf")
class DCTransformerTrainer(DCTransformer):
    """A `DCTransformer` that trains on `data.chunking` batches with `model.fit`.

    The batch is one dict used as `x` (no `y`): either compact (`chunking.chunk_dataset` or
    `numpy_input`: packed sequences and chunk bounds, expanded inside the compiled step) or
    already dense (the model inputs plus `loss_mask` [B, T], float, 1 on the targets of the
    chunk). Under a distribution strategy each replica's loss is its nats divided by the
    *global* number of loss tokens, so the replicas' losses add up to the global-batch loss
    whatever the split (Keras sums replica gradients).

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
        # The count's float32 copy for the logs: a metric, because Keras' JAX step shows
        # compute_metrics the metric variables only.
        self.tokens_tracker = LastValue(name="tokens_seen")
        self.tokens_seen = self.add_weight(
            # int64 where the backend has it (TensorFlow; JAX with x64), else int32: TPUs
            # have no float64, and a count is exact in integers.
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="tokens_seen",
        )

    @property
    def nonfinite(self):
        """The optimizer's record of the first non-finite step (`MonitoredAdam`)."""
        if not hasattr(self.optimizer, "first_step"):
            raise TypeError(f"the divergence check reads a MonitoredAdam's record; this "
                            f"trainer was compiled with {type(self.optimizer).__name__}")
        return self.optimizer

    def call(self, inputs, training=None):
        """Logits, plus "targets" and "loss_mask" when `inputs` is a training batch."""
        inputs = self.model_inputs(inputs)
        logits = super().call(inputs, training=training)
        if "loss_mask" not in inputs:
            return logits
        return {**logits, "targets": inputs["targets"], "loss_mask": inputs["loss_mask"]}

    def model_inputs(self, x: dict) -> dict:
        """The dense model inputs of a batch: compact batches are expanded on the device
        (the partial images are scattered here, not shipped from the host)."""
        if not is_compact(x):
            return x
        layout = SequenceLayout(self.block_size, self.grid_size, self.clip)
        return expand_chunks(x, layout, self.window)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        summary = loss_summary(y_pred, y_pred["targets"], y_pred["loss_mask"])  # per local token
        local_tokens = summary["loss_tokens"]
        global_tokens = replicas.sum_over_replicas(local_tokens)
        for name in COMPONENTS:
            self.component_trackers[name].update_state(
                summary[f"{name}_loss"], sample_weight=local_tokens
            )
        self.bits_tracker.update_state(summary["bits_per_token"], sample_weight=local_tokens)
        if training:
            # Every replica adds the global count and the first replica's result is kept:
            # a "sum" aggregation would sum the replicas' new values (Keras assigns
            # value + delta), not their deltas.
            self.tokens_seen.assign_add(ops.cast(ops.round(global_tokens), self.tokens_seen.dtype))
        self.tokens_tracker.update_state(self.tokens_seen.value)
        # nats / global tokens: Keras multiplies by 1/replicas inside its own compute_loss;
        # ours is already the right scale for summed replica gradients.
        return summary["loss"] * ops.divide_no_nan(local_tokens, global_tokens)

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
        if replicas.is_multi_worker():
            # Keras reduces the logs of a multi-worker step with reduce(MEAN, axis=0), which
            # needs an axis: give every scalar one; the reduction returns scalars again.
            results = {name: ops.reshape(value, [1]) for name, value in results.items()}
        return results


class LastValue(keras.metrics.Metric):
    """A metric whose result is the last value it was given (float32 [])."""

    def __init__(self, name: str):
        super().__init__(name=name)
        self.last = self.add_variable(shape=(), initializer="zeros", name="last")

    def update_state(self, value):
        self.last.assign(ops.cast(value, "float32"))

    def result(self):
        return self.last.value
