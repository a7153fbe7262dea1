"""The strategy factory on the two logical CPUs that tests/conftest.py creates.

`tpu` needs a TPU and `multi_worker` needs worker processes (the slow integration test);
neither is exercised here.
"""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.model import losses
from dctformer_tf.train.strategy import check_global_batch, make_strategy

two_cpus = pytest.mark.skipif(
    len(tf.config.list_logical_devices("CPU")) < 2, reason="needs two logical CPUs"
)


def test_default_strategy():
    strategy = make_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert check_global_batch(3, strategy) == 3


@two_cpus
def test_one_device_places_the_computation_on_that_device():
    strategy = make_strategy("one_device", devices=["/cpu:1"])
    assert strategy.num_replicas_in_sync == 1
    assert strategy.run(lambda: tf.constant(1.0) + 1.0).device.endswith("CPU:1")
    assert make_strategy("one_device").num_replicas_in_sync == 1


@two_cpus
def test_mirrored_over_two_cpus_gives_the_global_batch_loss(two_cpu_strategy):
    assert isinstance(make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"]),
                      tf.distribute.MirroredStrategy)
    strategy = two_cpu_strategy  # runs collectives: the session's shared instance
    assert strategy.num_replicas_in_sync == 2
    assert check_global_batch(4, strategy) == 2

    rng = np.random.default_rng(0)
    batch, window, channels, positions, values = 4, 5, 4, 6, 9
    logits = {
        "channel_logits": rng.normal(size=(batch, window, channels + 1)).astype(np.float32),
        "position_logits": rng.normal(size=(batch, window, positions)).astype(np.float32),
        "value_logits": rng.normal(size=(batch, window, values)).astype(np.float32),
    }
    targets = np.stack([rng.integers(0, n, (batch, window)) for n in (channels, positions, values)],
                       axis=-1).astype(np.int32)
    mask = (rng.uniform(size=(batch, window)) < 0.7).astype(np.float32)
    mask[:2] = 1.0  # replicas with different token counts: a mean of means would be wrong
    data = tf.data.Dataset.from_tensors((logits, targets, mask))

    def replica_loss(logits, targets, mask):
        tokens = tf.distribute.get_replica_context().all_reduce("sum", tf.reduce_sum(mask))
        return losses.loss_summary(logits, targets, mask, num_tokens=tokens)["loss"]

    (per_replica,) = strategy.experimental_distribute_dataset(data.unbatch().batch(4))
    distributed = strategy.reduce(
        "sum", strategy.run(tf.function(replica_loss), args=per_replica), axis=None
    )
    single = losses.loss_summary(logits, targets, mask)["loss"]
    np.testing.assert_allclose(distributed.numpy(), single.numpy(), rtol=1e-5)


@two_cpus
def test_indivisible_global_batch_is_a_clear_error():
    strategy = make_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    with pytest.raises(ValueError, match="global batch size 3 must be a positive multiple of the 2"):
        check_global_batch(3, strategy)


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match="unknown strategy 'gpu'.*default, one_device, mirrored, "
                                         "multi_worker, tpu"):
        make_strategy("gpu")
