"""The value decoder's grid-offset attention bias: the offsets it looks up, that it starts as
a no-op, that it reaches the logits, and that cached decoding, remat and the parameter count
still hold with it."""

import numpy as np
import pytest

from dctformer_tf.model.configs import count_parameters
from dctformer_tf.model.grid_attention_bias import GridAttentionBias, grid_offset_index
from tests.model.layer_test_case import forward_fn, random_example, set_random_alphas, tiny_model
from tests.model.test_dctransformer import cached_logits
from tests.model.test_remat import loss_and_gradients


def test_offset_index_against_a_loop():
    g = 5
    rng = np.random.default_rng(0)
    query = rng.integers(0, g * g + 2, (2, 7))  # ids past the grid included
    key = rng.integers(0, g * g + 2, (2, 9))
    index = np.asarray(grid_offset_index(query, key, g))
    for b in range(2):
        for i in range(7):
            for j in range(9):
                q, k = query[b, i], key[b, j]
                if q >= g * g or k >= g * g:
                    expected = (2 * g - 1) ** 2
                else:
                    expected = (q // g - k // g + g - 1) * (2 * g - 1) + (q % g - k % g + g - 1)
                assert index[b, i, j] == expected


def test_bias_reads_the_table_per_head():
    layer = GridAttentionBias(grid_size=4, num_heads=3)
    layer.build()
    table = np.random.default_rng(1).normal(size=(3, 50)).astype(np.float32)
    layer.table.assign(table)
    positions = np.array([[0, 5, 15, 16]])  # 16 is past the 4x4 grid
    bias = np.asarray(layer(positions, positions))
    assert bias.shape == (1, 3, 4, 4)
    # (0, 0) -> (1, 1): Δ = (-1, -1) -> index (2)·7 + 2; anything with id 16 -> 49.
    np.testing.assert_allclose(bias[0, :, 0, 1], table[:, 2 * 7 + 2])
    np.testing.assert_allclose(bias[0, :, 2, 2], table[:, 3 * 7 + 3])  # Δ = 0
    np.testing.assert_allclose(bias[0, :, 3, 0], table[:, 49])


def _pair(**overrides):
    """A model without and one with the bias, with the same weights (bias table at zero)."""
    plain = tiny_model(name="dctransformer", **overrides)
    example = random_example(plain, seed=3)
    plain(example)
    set_random_alphas(plain)
    biased = tiny_model(attention_bias="grid_2d", name="dctransformer", **overrides)
    biased(example)
    by_path = {w.path: w for w in biased.weights}
    for weight in plain.weights:
        by_path[weight.path].assign(weight)
    return plain, biased, example


def test_starts_as_a_no_op_and_then_changes_only_the_value_logits():
    plain, biased, example = _pair()
    table = biased.value_decoder.grid_bias.table
    assert not np.any(np.asarray(table))
    before, after = forward_fn(plain)(example), forward_fn(biased)(example)
    for name in ("channel_logits", "position_logits", "value_logits"):
        np.testing.assert_allclose(after[name], before[name], rtol=1e-6, atol=1e-6)
    table.assign(np.random.default_rng(2).normal(size=table.shape))
    changed = forward_fn(biased)(example)
    np.testing.assert_allclose(changed["channel_logits"], before["channel_logits"], atol=1e-6)
    assert np.abs(np.asarray(changed["value_logits"]) - before["value_logits"]).max() > 1e-3


@pytest.mark.parametrize("jit_compile", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["graph", "xla"])  # the default path's XLA test is in the default tier
def test_cached_decoding_equals_teacher_forcing_with_the_bias(jit_compile):
    _, model, example = _pair()
    table = model.value_decoder.grid_bias.table
    table.assign(np.random.default_rng(4).normal(size=table.shape))
    full = forward_fn(model)(example)
    cached = cached_logits(model, example, jit_compile=jit_compile)
    for name, logits in zip(("channel_logits", "position_logits", "value_logits"), cached,
                            strict=True):
        np.testing.assert_allclose(logits, full[name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_remat_gradients_include_the_table():
    example = None
    models = []
    for remat in (False, True):
        model = tiny_model(attention_bias="grid_2d", remat=remat, name="dctransformer",
                           position_spec=[(0, 1)], value_spec=[(1, 0)])
        example = random_example(model, batch_size=3) if example is None else example
        model(example)
        models.append(model)
    set_random_alphas(models[0])
    table = models[0].value_decoder.grid_bias.table
    table.assign(np.random.default_rng(5).normal(size=table.shape))
    for source, target in zip(models[0].variables, models[1].variables, strict=True):
        target.assign(source)
    (loss, grads), (remat_loss, remat_grads) = (loss_and_gradients(m, example, False)
                                                for m in models)
    assert remat_loss == pytest.approx(loss, rel=1e-6)
    paths = [w.path for w in models[0].trainable_weights]
    table_grad = grads[paths.index(table.path)]
    assert np.abs(table_grad).max() > 0
    scale = max(np.abs(g).max() for g in grads)
    for path, expected, got in zip(paths, grads, remat_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * scale, err_msg=path)


def test_parameter_count_and_config():
    _, model, _ = _pair()
    assert model.count_params() == count_parameters(model.get_config())
    assert model.get_config()["attention_bias"] == "grid_2d"
    with pytest.raises(ValueError, match="attention_bias must be one of"):
        tiny_model(attention_bias="relative")
