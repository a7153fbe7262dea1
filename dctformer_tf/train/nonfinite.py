"""`MonitoredAdam`: Adam that records the first step whose gradients were not finite.

The record is an optimizer variable written inside the compiled step, so the step never
waits on the host for it; `callbacks.StopOnNonFinite` reads it at logging intervals and
before every checkpoint. It lives in the optimizer because `optimizer.apply(grads)` is the
one place where both Keras backends hand over the gradients: TensorFlow's `apply_gradients`
and JAX's `stateless_apply` both call it. A non-finite loss has non-finite gradients, so
this covers the loss too.
"""

import keras
from keras import ops

from dctformer_tf.train import replicas


@keras.saving.register_keras_serializable(package="dctformer_tf")
class MonitoredAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` plus `first_nonfinite_step` (int32 [], −1 until a step's
    global gradient norm is not finite, then that step, 1-based). Same arguments as Adam.

    A restart from a good checkpoint restores the −1 it was saved with.
    """

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.first_nonfinite_step = self.add_variable(
            shape=(), dtype="int32", initializer=keras.initializers.Constant(-1),
            aggregation="only_first_replica", name="first_nonfinite_step")

    def apply(self, grads, trainable_variables=None):
        if not self.built:  # as Keras' own apply does, before the record is read
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
        present = [ops.cast(g, "float32") for g in grads if g is not None]
        squares = ops.sum(ops.stack([ops.sum(ops.square(g)) for g in present]))
        bad = 1.0 - ops.cast(ops.isfinite(squares), "float32")
        bad = replicas.sum_over_replicas(bad)  # every replica takes the same decision
        # `.value`, not the variable: JAX does not convert a Keras variable inside its own ops.
        recorded = self.first_nonfinite_step.value
        first = ops.logical_and(bad > 0, recorded < 0)
        self.first_nonfinite_step.assign(
            ops.where(first, ops.cast(self.iterations.value, "int32") + 1, recorded))
        return super().apply(grads, trainable_variables)

    def first_step(self) -> int | None:
        """The recorded step, or None (reads the device: call at logging intervals)."""
        if not self.built:
            return None
        value = int(keras.ops.convert_to_numpy(self.first_nonfinite_step))
        return value if value >= 0 else None
