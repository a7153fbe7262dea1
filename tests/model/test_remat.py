"""Rematerialisation (`remat=True`): the same weights, losses and gradients as without it,
in graph mode and under XLA, with and without dropout; the blocks really are recomputed."""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.model.configs import count_parameters
from dctformer_tf.model.feed_forward import FeedForward
from dctformer_tf.model.losses import loss_summary
from dctformer_tf.model.rezero_residual import ReZeroResidual
from tests.model.layer_test_case import random_example, set_random_alphas, tiny_model


def loss_and_gradients(model, example, jit_compile):
    """One training-mode forward and backward pass, as the train step runs it."""

    @tf.function(jit_compile=jit_compile)
    def step(x):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_summary(logits, x["targets"], tf.ones(tf.shape(x["targets"])[:2]))["loss"]
        return loss, tape.gradient(loss, model.trainable_weights)

    loss, gradients = step(example)
    return float(loss), [np.asarray(tf.convert_to_tensor(g)) for g in gradients]


# Every kind of residual (self-attention, cross-attention, feed-forward) in the fewest layers,
# for short XLA compiles.
SHORT = dict(position_spec=[(0, 1)], value_spec=[(0, 1)])


def plain_and_remat(dropout):
    """Two tiny models, without and with remat, with the same weights and dropout seeds."""
    plain = tiny_model(dropout=dropout, name="dctransformer", **SHORT)
    example = random_example(plain, batch_size=3)
    plain(example)
    set_random_alphas(plain)  # every branch contributes to the gradients
    remat = tiny_model(dropout=dropout, remat=True, name="dctransformer", **SHORT)
    remat(example)
    assert [v.path for v in remat.weights] == [v.path for v in plain.weights]
    # `variables` also holds the seed generators' states (names numbered process-wide).
    for source, target in zip(plain.variables, remat.variables, strict=True):
        target.assign(source)  # the weights, and with dropout the seed generators' states
    return plain, remat, example


@pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["graph", "xla"])  # XLA compiles take ~40 s: slow tier
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_gradients_equal_those_without_remat(jit_compile, dropout):
    plain, remat, example = plain_and_remat(dropout)
    loss, gradients = loss_and_gradients(plain, example, jit_compile)
    remat_loss, remat_gradients = loss_and_gradients(remat, example, jit_compile)
    assert remat_loss == pytest.approx(loss, rel=1e-6)
    assert len(remat_gradients) == len(gradients) == len(plain.trainable_weights)
    # Measured: identical in graph mode; under XLA (which fuses the two orders differently)
    # at most 2.2e-7 of the largest gradient entry. Some gradients are zero in exact
    # arithmetic (the key biases'), hence the absolute tolerance.
    scale = max(np.abs(g).max() for g in gradients)
    for weight, expected, got in zip(plain.trainable_weights, gradients, remat_gradients,
                                     strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * scale,
                                   err_msg=weight.path)
    if dropout:
        # The masks matter (without them the loss differs), and the recomputation drew the
        # forward pass' masks (else the gradients above would differ). How much they matter
        # depends on the random weights and gates (4e-4 of the loss seen at the least), so
        # the bound is float32 noise, not a share of the loss.
        logits = plain(example, training=False)
        mask = tf.ones(tf.shape(example["targets"])[:2])
        assert float(loss_summary(logits, example["targets"], mask)["loss"]) != pytest.approx(
            loss, rel=2e-5)

class CountingFeedForward(FeedForward):
    """A feed-forward branch that counts its runs (forward passes and recomputations)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.runs = 0

    def call(self, inputs):
        self.runs += 1
        return super().call(inputs)


@pytest.mark.parametrize("remat, runs", [(False, 1), (True, 2)])
def test_residual_branch_is_recomputed_in_the_backward_pass(rng, remat, runs):
    x = tf.constant(rng.normal(size=(2, 5, 8)).astype("float32"))
    residual = ReZeroResidual(CountingFeedForward(), remat=remat)
    residual.build(x.shape)
    residual.alpha.assign(0.5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(residual(x, training=True) ** 2)
    gradients = tape.gradient(y, [x, *residual.trainable_weights])
    assert all(g is not None for g in gradients)
    assert residual.sublayer.runs == runs


def test_remat_keeps_weights_config_and_checkpoints(tmp_path):
    plain = tiny_model(name="dctransformer")
    example = random_example(plain)
    plain(example)
    set_random_alphas(plain)
    remat = tiny_model(remat=True, name="dctransformer")
    remat(example)
    assert [v.path for v in remat.weights] == [v.path for v in plain.weights]
    assert remat.count_params() == plain.count_params() == count_parameters(remat.get_config())
    config = remat.get_config()
    assert config["remat"] is True and not plain.get_config()["remat"]
    assert type(remat).from_config(config).get_config() == config
    # A checkpoint written without remat restores into a model with it, and scores the same.
    path = tf.train.Checkpoint(model=plain).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(model=remat).read(path).assert_existing_objects_matched()
    for name, logits in remat(example).items():
        np.testing.assert_allclose(logits, plain(example)[name], atol=1e-5)
