import numpy as np
import pytest

from dctformer_tf.model.par_stack import PARStack, normalize_layer_spec
from tests.model.layer_test_case import run_layer_test, set_random_alphas


def test_layer_contract_encoder_stack():
    run_layer_test(
        PARStack,
        {"layer_spec": [(1, 2)], "num_heads": 2, "key_size": 8, "dropout": 0.1},
        {"inputs": np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")},
        (2, 6, 16),
    )


def test_layer_contract_decoder_stack():
    rng = np.random.default_rng(0)
    run_layer_test(
        PARStack,
        {
            "layer_spec": [(1, 1), (1, 0)],
            "num_heads": 2,
            "key_size": 8,
            "causal": True,
            "cross_attention": True,
        },
        {
            "inputs": rng.normal(size=(2, 6, 16)).astype("float32"),
            "context": rng.normal(size=(2, 4, 16)).astype("float32"),
        },
        (2, 6, 16),
    )


def test_spec_sets_the_order_of_residuals():
    stack = PARStack([(1, 2), (2, 1)], num_heads=2, cross_attention=True)
    assert [layer.name for layer in stack.residual_layers] == [
        "block0_self_attention0",
        "block0_cross_attention0",
        "block0_dense0",
        "block0_dense1",
        "block1_self_attention0",
        "block1_cross_attention0",
        "block1_self_attention1",
        "block1_cross_attention1",
        "block1_dense0",
    ]
    assert stack.num_attention_layers == 3
    assert normalize_layer_spec([[1, 2], (1, 4)]) == [(1, 2), (1, 4)]
    with pytest.raises(ValueError):
        normalize_layer_spec([])


@pytest.mark.parametrize("cross_attention", [False, True])
def test_zero_alpha_is_identity(rng, cross_attention):
    x = rng.normal(size=(2, 6, 16)).astype("float32") * 5.0
    context = rng.normal(size=(2, 3, 16)).astype("float32")
    stack = PARStack(
        [(1, 2), (1, 3)], num_heads=2, key_size=8, causal=True, cross_attention=cross_attention
    )
    out = stack(x, context=context if cross_attention else None)
    np.testing.assert_array_equal(out, x)


def test_causal_stack_ignores_the_future(rng):
    x = rng.normal(size=(2, 8, 16)).astype("float32")
    context = rng.normal(size=(2, 3, 16)).astype("float32")
    stack = PARStack([(1, 1), (1, 1)], num_heads=2, key_size=8, causal=True, cross_attention=True)
    stack.build(x.shape, context.shape)
    set_random_alphas(stack)
    base = np.asarray(stack(x, context=context))
    for t in range(8):
        perturbed = x.copy()
        perturbed[:, t] += 1.0
        out = np.asarray(stack(perturbed, context=context))
        np.testing.assert_allclose(out[:, :t], base[:, :t], atol=1e-6)
        assert np.abs(out[:, t] - base[:, t]).max() > 1e-3


def test_call_step_equals_full_pass(rng):
    x = rng.normal(size=(2, 7, 16)).astype("float32")
    context = rng.normal(size=(2, 3, 16)).astype("float32")
    stack = PARStack([(1, 1), (2, 0)], num_heads=2, key_size=8, causal=True, cross_attention=True)
    stack.build(x.shape, context.shape)
    set_random_alphas(stack)
    full = np.asarray(stack(x, context=context))
    cache = stack.init_cache(context, window=7)
    assert cache["self"].shape == (2, 3, 2, 2, 7, 8)  # [B, L, keys/values, H, T, K]
    assert cache["cross"].shape == (2, 3, 2, 2, 3, 8)
    for t in range(7):
        out, cache = stack.call_step(x[:, t : t + 1], cache, t)
        np.testing.assert_allclose(out[:, 0], full[:, t], rtol=1e-4, atol=1e-4)


def test_tf_checkpoint_records_every_block(tmp_path):
    """`tf.train.Checkpoint` must see the blocks: a stack restored into a fresh one (no
    optimizer involved) computes what the saved one did. Keras' tracked lists are invisible
    to TF checkpoints, so blocks held only in a list would come back at their initial
    values (ReZero gates at 0: an identity stack)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(2, 5, 16)).astype("float32")
    context = rng.normal(size=(2, 3, 16)).astype("float32")
    spec = dict(layer_spec=[(1, 1), (1, 2)], num_heads=2, key_size=8, causal=True,
                cross_attention=True)
    saved = PARStack(**spec)
    saved.build(inputs.shape, context.shape)
    set_random_alphas(saved, seed=1)
    path = tf.train.Checkpoint(stack=saved).save(str(tmp_path / "ckpt"))
    restored = PARStack(**spec)
    restored.build(inputs.shape, context.shape)
    tf.train.Checkpoint(stack=restored).restore(path).assert_consumed()
    assert len(restored.weights) == len(saved.weights)
    for got, want in zip(restored.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=got.path)
    np.testing.assert_allclose(restored(inputs, context=context), saved(inputs, context=context))
