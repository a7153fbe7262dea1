"""`tf.distribute` strategy chosen by name (docs/design.md §4); build the model and optimizer in its
`scope()`."""

import tensorflow as tf

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


def make_strategy(
    name: str, tpu: str | None = None, devices: list[str] | None = None
) -> tf.distribute.Strategy:
    """Build a distribution strategy.

    Args:
      name: str. One of
        - "default": the no-op default strategy (whatever device TF places ops on);
        - "one_device": `OneDeviceStrategy` on `devices[0]`, else the first GPU, else CPU;
        - "mirrored": `MirroredStrategy` over `devices`, else all local GPUs (CPU if none);
        - "multi_worker": `MultiWorkerMirroredStrategy`; the cluster and this worker's
          task come from the `TF_CONFIG` environment variable (a lone worker without it);
        - "tpu": `TPUStrategy` on the TPU named by `tpu`.
      tpu: str. TPU name or grpc address for `TPUClusterResolver`; None resolves the local
        TPU (a TPU VM) or the one in the environment.
      devices: list of device names for "one_device" and "mirrored", e.g.
        ["/cpu:0", "/cpu:1"] for two logical CPUs.
    Returns:
      the strategy.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        if devices:
            device = devices[0]
        else:
            device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def check_global_batch(batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """Check that the global batch splits evenly over the replicas.

    Returns:
      the per-replica batch size, `batch_size / num_replicas_in_sync`.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size < 1 or batch_size % replicas:
        raise ValueError(
            f"global batch size {batch_size} must be a positive multiple of the "
            f"{replicas} replicas of {type(strategy).__name__}"
        )
    return batch_size // replicas


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """False only for the non-chief workers of a multi-worker run."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    if resolver.task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief
