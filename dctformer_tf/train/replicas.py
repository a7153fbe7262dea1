"""Sums over the replicas of a synchronous step, on any Keras backend.

Under TensorFlow a `tf.distribute` strategy runs the step once per replica, each on its slice
of the batch: a count that must be global (loss tokens, a divergence flag) is all-reduced in
the replica context. Under JAX the step sees the global batch (one device, or arrays sharded
by `keras.distribution`), so a value is already global. TensorFlow is imported only when it
is the backend.
"""

import keras


def sum_over_replicas(value):
    """`value` summed over the replicas in sync (itself outside a multi-replica step)."""
    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    replica = tf.distribute.get_replica_context()
    if replica is not None and replica.num_replicas_in_sync > 1:
        return replica.all_reduce("sum", value)
    return value


def is_multi_worker() -> bool:
    """Whether the step runs under TensorFlow's `MultiWorkerMirroredStrategy`."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)
