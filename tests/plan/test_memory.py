"""dctformer_tf.plan's memory model against references it does not compute itself: a tiny
Keras model's own weight counts (`count_params()` of the built model, its residuals and its
heads), counts by hand from tensor shapes (a three-layer toy model, LSUN's attention scores
and grid bias from Table 3's sizes), and the properties every plan must have (linear in the
batch and in the depth, remat and bfloat16 never add activations, the largest batch is the
largest that fits, accumulation makes up the batch)."""

import dataclasses
import pathlib

import pytest

from dctformer_tf.model import CachedMultiHeadAttention, FeedForward, build_model
from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.plan import (
    ACCELERATORS,
    SETTINGS,
    TABLE3,
    ModelSizes,
    accumulation_steps,
    activation_terms,
    config_files,
    model_from_config,
    plan_config,
    plans,
    replica_bytes,
    total,
)
from dctformer_tf.plan.activations import (
    head_parameters,
    residual_parameters,
    stacks,
    weight_copies,
)
from dctformer_tf.train.gin_model import config_from_bindings, read_bindings

GIN = pathlib.Path(__file__).resolve().parents[2] / "gin"
MIB = 2**20
# Small enough to build in a second; H·K (2 x 8) differs from D (32), the stacks differ
# in depth and kind, and dropout and the grid bias are on.
TINY = dict(resolution=16, block_size=4, clip=3, d_model=32, num_heads=2, key_size=8,
            encoder_spec=[(1, 1)], channel_spec=[(1, 2)], position_spec=[(1, 1)],
            value_spec=[(2, 1)], conv_kernel=2, conv_stride=2, chunk_size=8, chunk_overlap=4,
            dropout=0.1, attention_bias="grid_2d")


@pytest.fixture(scope="module")
def tiny():
    """(ModelSizes, built DCTransformer) of `TINY`."""
    config = ModelConfig(**TINY)
    model = build_model(**dataclasses.asdict(config))
    return model_from_config("tiny", config), model


@pytest.fixture(scope="module")
def table3():
    models = []
    for name in TABLE3:
        bound = read_bindings(config_files(GIN, name))
        models.append(model_from_config(name, config_from_bindings(bound),
                                        bound["train.batch_size"],
                                        bound["build_sequences.max_length"]))
    return models


def _stacks_of(model):
    """The built model's PAR stacks in the plan's order: encoder, channel, position, value."""
    return [model.encoder.stack, model.channel_decoder.stack, model.position_decoder.stack,
            model.value_decoder.stack]


def _kind(residual) -> str:
    if isinstance(residual.sublayer, FeedForward):
        return "dense"
    assert isinstance(residual.sublayer, CachedMultiHeadAttention)
    return "cross" if "cross" in residual.name else "self"


def test_sizes_are_the_built_models(tiny):
    m, model = tiny
    assert m.parameters == model.count_params()
    assert (m.window, m.tokens, m.grid) == (model.window, model.encoder.num_tokens,
                                             model.grid_size)
    assert (m.channels + 1, m.positions, m.values) == (model.num_channels + 1,
                                                       model.num_positions, model.num_values)


def test_parameter_optimizer_and_gradient_bytes_count_the_built_weights(tiny):
    m, model = tiny
    for precision, remat in SETTINGS:
        parts = replica_bytes(m, 3, precision, remat)
        assert parts["parameters"] == parts["gradients"] == 4 * model.count_params()
        assert parts["optimizer"] == 8 * model.count_params()  # Adam's two moments
        assert parts["accumulated gradients"] == 0
    assert replica_bytes(m, 3, "float32", False, accumulation=2)["accumulated gradients"] == \
        4 * model.count_params()


def test_residuals_are_the_built_models_in_order(tiny):
    """`stacks` lists the model's residuals (kind, tokens) in execution order, and
    `residual_parameters` counts each one's weights."""
    m, model = tiny
    built = [(_kind(r), stack_tokens, r.count_params())
             for stack, stack_tokens in zip(_stacks_of(model), [m.tokens] + [m.window] * 3,
                                            strict=True)
             for r in stack.residual_layers]
    planned = [(kind, tokens, residual_parameters(kind, m)) for kind, tokens in stacks(m)]
    assert planned == built


def test_bfloat16_weight_copies_leave_out_the_float32_heads(tiny):
    """Every weight outside the three heads (output layer norm and logits layer of each
    decoder) gets a 2-byte copy; with remat only one residual's copies at a time."""
    m, model = tiny
    heads = sum(d.output_norm.count_params() + d.output_dense.count_params()
                for d in (model.channel_decoder, model.position_decoder, model.value_decoder))
    assert head_parameters(m) == heads
    residuals = [r.count_params() for stack in _stacks_of(model) for r in stack.residual_layers]
    outside = model.count_params() - heads - sum(residuals)
    assert weight_copies(m, "bfloat16", remat=False) == 2 * (outside + sum(residuals))
    assert weight_copies(m, "bfloat16", remat=True) == 2 * (outside + max(residuals))
    assert weight_copies(m, "float32", remat=False) == weight_copies(m, "float32", True) == 0


def test_a_three_layer_model_by_hand():
    """One dense residual per decoder, no encoder stack, D = 2, T = 3, N = 1, G = 1, C = 3,
    P = 1, V = 3, float32, batch 1, dense inputs: every tensor counted from its shape."""
    m = ModelSizes(name="toy", d=2, heads=1, key_size=2, window=3, tokens=1, grid=1,
                   padded_grid=1, channels=3, positions=1, values=3, encoder_spec=(),
                   decoder_specs=(((0, 1),),) * 3, dropout=0.0, parameters=0)
    terms = activation_terms(m, 1, "float32", remat=False)
    per_residual = {"residual stream": 4 * 2 * 3,  # H [T, D]
                    "layer norms": 4 * 2 * 3,  # LayerNorm(H) [T, D]
                    "branch outputs": 4 * 2 * 3,  # f(.) [T, D], no dropout mask
                    "feed-forward hidden": 4 * 4 * 4 * 2 * 3}  # four GELU copies [T, 4D]
    for name, value in per_residual.items():
        assert terms[name] == 3 * value, name
    assert terms["attention scores"] == terms["attention q/k/v/out"] == 0
    # partial image [G, G, C], inputs and targets [T, 3], loss mask [T], int32
    assert terms["input batch"] == 4 * (3 + 2 * 9 + 3)
    assert terms["encoder input"] == 4 * 3  # padded partial image [G', G', C]
    # encoder output and its norm [N, D]; each decoder's stack output and norm [T, D]
    assert terms["output norms"] == 2 * 4 * 2 * 1 + 3 * 2 * 4 * 2 * 3
    # logits and softmax - one-hot [T, C + 1 + P + V], equal to one dense backward, two [T, 4D]
    assert terms["logits or one residual's backward"] == 2 * 4 * 3 * (4 + 1 + 3) == \
        2 * 4 * 4 * 2 * 3
    assert terms["total"] == 1368 + 96 + 12 + 160 + 192


def test_attention_scores_of_lsun_by_hand(table3):
    lsun = table3[TABLE3.index("lsun")]
    heads, t, n = 14, 1024, 24 * 24  # Table 3 LSUN: 14 heads, window 896 + 128, 24x24 tokens
    decoder_attention = 4 + 4 + 6  # attention layers of the channel, position, value specs
    float32 = 4 * heads * (4 * n * n + decoder_attention * (t * t + t * n))
    assert activation_terms(lsun, 1, "float32", remat=False)["attention scores"] == float32
    # bfloat16 keeps the float32 softmax and its bfloat16 cast
    assert activation_terms(lsun, 1, "bfloat16", remat=False)["attention scores"] == \
        float32 * 6 // 4


def test_grid_attention_bias_of_lsun_by_hand(table3):
    """With `attention_bias="grid_2d"`, LSUN (14 heads, window 1024) holds per sample the
    int32 [T, T] offset index (4 MiB) and the float32 [H, T, T] gradient of the bias
    (56 MiB); with remat also the bias itself, kept for the recomputation (56 MiB more)."""
    lsun = table3[TABLE3.index("lsun")]
    with_bias = dataclasses.replace(lsun, grid_bias=True)
    for precision, remat in SETTINGS:
        plain = activation_terms(lsun, 2, precision, remat)
        terms = activation_terms(with_bias, 2, precision, remat)
        assert "grid attention bias" not in plain
        assert terms["total"] - plain["total"] == 2 * (116 if remat else 60) * MIB


def test_activations_are_per_sample(tiny, table3):
    for m in [tiny[0], *table3]:
        for precision, remat in SETTINGS:
            one = activation_terms(m, 1, precision, remat)
            assert activation_terms(m, 7, precision, remat) == {k: 7 * v for k, v in one.items()}


def test_bytes_grow_with_the_batch(table3):
    for m in table3:
        for precision, remat in SETTINGS:
            totals = [total(replica_bytes(m, b, precision, remat)) for b in (1, 2, 3, 8, 64)]
            assert totals == sorted(set(totals)), (m.name, precision, remat)


def test_activations_grow_linearly_with_depth(tiny):
    """k identical blocks per stack: each block adds the same bytes; with remat only its
    residual stream, float32 [N, D] per encoder residual and [T, D] per decoder one."""
    m = tiny[0]

    def deep(k):
        return dataclasses.replace(m, encoder_spec=((1, 2),) * k,
                                   decoder_specs=(((1, 2),) * k,) * 3)

    for precision, remat in SETTINGS:
        totals = [activation_terms(deep(k), 1, precision, remat)["total"] for k in (1, 2, 3, 4)]
        steps = {b - a for a, b in zip(totals, totals[1:], strict=False)}
        assert len(steps) == 1 and steps.pop() > 0, (precision, remat)
    step = (activation_terms(deep(2), 1, "bfloat16", True)["total"]
            - activation_terms(deep(1), 1, "bfloat16", True)["total"])
    assert step == 4 * m.d * (3 * m.tokens + 3 * 4 * m.window)


def test_remat_and_bfloat16_never_add_activations(table3):
    for m in table3:
        for batch in (1, 4, 16):
            for precision in ("float32", "bfloat16"):
                assert activation_terms(m, batch, precision, True)["total"] <= \
                    activation_terms(m, batch, precision, False)["total"], (m.name, precision)
            for remat in (False, True):
                # (the bfloat16 copies of the weights, a term of their own, can outweigh the
                # saving at small batches)
                assert activation_terms(m, batch, "bfloat16", remat)["total"] <= \
                    activation_terms(m, batch, "float32", remat)["total"], (m.name, remat)


def test_the_largest_batch_fits_and_one_more_does_not(table3):
    for accelerator in ACCELERATORS.values():
        result = plans(table3, accelerator, headroom=0.1)
        budget = result["budget_bytes_per_replica"]
        for m in table3:
            for s in result["configs"][m.name]["settings"]:
                largest = s["largest_batch_per_replica"]
                at = [total(replica_bytes(m, b, s["precision"], s["remat"]))
                      for b in (largest, largest + 1)]
                assert largest == 0 or at[0] <= budget, (m.name, s["precision"], s["remat"])
                assert at[1] > budget, (m.name, s["precision"], s["remat"])
                assert s["fits"] == (largest >= s["per_replica_batch"])


def test_accumulation_makes_up_the_batch_with_micro_batches_that_fit(table3):
    accelerator = ACCELERATORS["tpu-v3-32"]
    budget = accelerator.budget_bytes(0.1)
    for m in table3:
        for s in plan_config(m, accelerator, 0.1)["settings"]:
            steps, micro = s["accumulation_steps"], s["micro_batch"]
            if steps is None:
                assert total(replica_bytes(m, 1, s["precision"], s["remat"], 2)) > budget
                continue
            assert steps * micro == s["per_replica_batch"]
            assert s["bytes_at_micro_batch"] <= budget
            assert s["fits"] == (steps == 1)
            if steps > 1:  # the accumulator (float32, one per parameter) is counted
                assert s["bytes_at_micro_batch"] == total(replica_bytes(
                    m, micro, s["precision"], s["remat"])) + 4 * m.parameters


def test_accumulation_steps():
    assert accumulation_steps(16, 16) == (1, 16)
    assert accumulation_steps(16, 5) == (4, 4)
    assert accumulation_steps(14, 5) == (7, 2)  # equal micro-batches only
    assert accumulation_steps(16, 0) is None


def test_model_from_config_reads_the_attention_bias():
    for bias in ("none", "grid_2d"):
        config = ModelConfig(**{**TINY, "attention_bias": bias})
        assert model_from_config("tiny", config).grid_bias is (bias == "grid_2d")
