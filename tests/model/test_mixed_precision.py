"""Mixed precision (`mixed_bfloat16`): bfloat16 matmuls on a float32 residual stream.

The references are the same layers under the float32 policy with the same weights.
"""

import keras
import numpy as np
import pytest

from dctformer_tf.model.cached_multi_head_attention import CachedMultiHeadAttention
from dctformer_tf.model.par_stack import PARStack
from tests.model.layer_test_case import forward_fn, random_example, set_random_alphas, tiny_model


@pytest.fixture
def mixed_policy():
    """The global `mixed_bfloat16` policy for one test; layers given `dtype="float32"` are the
    float32 references."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def test_logits_stay_close_to_float32(mixed_policy):
    reference = tiny_model(dtype="float32")
    example = random_example(reference, batch_size=4)
    reference(example)
    set_random_alphas(reference)  # every branch contributes
    model = tiny_model()
    model(example)
    model.set_weights(reference.get_weights())
    assert model.compute_dtype == "bfloat16" and reference.compute_dtype == "float32"

    expected = forward_fn(reference)(example)
    outputs = forward_fn(model)(example)
    for name, logits in outputs.items():
        assert logits.dtype == "float32", name
        difference = np.abs(np.asarray(logits) - np.asarray(expected[name]))
        # Measured (seeds 0-2, logits up to |4.2|): max 0.030-0.038, mean 0.0054-0.0066;
        # with the old bfloat16 residual stream, max 0.038-0.044, mean 0.0088-0.0096.
        assert difference.max() < 0.1, (name, difference.max())
        assert difference.mean() < 0.02, (name, difference.mean())


def test_residual_streams_and_hidden_states_are_float32(mixed_policy):
    model = tiny_model()
    example = random_example(model)
    model(example)
    set_random_alphas(model)
    assert {v.dtype for v in model.variables} == {"float32"}

    encoder_output = model.encode(example["partial_image"], example["label"])
    assert encoder_output.dtype == "float32"
    decoder = model.channel_decoder
    embedded = decoder._embed(example["inputs"], np.arange(model.window), example["label"])
    assert embedded.dtype == "float32"
    assert decoder.stack(embedded, context=encoder_output).dtype == "float32"
    _, channel_hidden = decoder(example["inputs"], encoder_output, label=example["label"])
    assert channel_hidden.dtype == "float32"
    _, position_hidden = model.position_decoder(
        channel_hidden, example["targets"][..., 0], encoder_output
    )
    assert position_hidden.dtype == "float32"
    attention = decoder.stack.residual_layers[0].sublayer
    assert attention.compute_dtype == "bfloat16"

    # Cached decoding: keys/values in bfloat16, hidden states float32, and the step logits
    # those of the full pass under the same policy (measured: within 0.02 over the window).
    full = forward_fn(model)(example)
    cache = model.init_cache(encoder_output)
    for t in range(3):
        logits, cache = model.decode_channel_step(cache, example["inputs"][:, t], t,
                                                  example["label"])
        logits_p, cache = model.decode_position_step(cache, example["targets"][:, t, 0], t)
        logits_v, cache = model.decode_value_step(cache, example["targets"][:, t, 1], t)
        for name, step in [("channel", logits), ("position", logits_p), ("value", logits_v)]:
            np.testing.assert_allclose(step, full[f"{name}_logits"][:, t], atol=0.05)
    assert cache["channel"]["self"].dtype == "bfloat16"
    assert cache["channel_hidden"].dtype == cache["position_hidden"].dtype == "float32"


def test_small_updates_survive_a_deep_stack(mixed_policy, rng):
    """24 feed-forward residuals with alpha = 0.01 on a stream of size ~4: each update is
    below a bfloat16 stream's resolution there (2^-6 to 2^-5), so a bfloat16 stream loses
    them; a float32 one keeps them to the precision of the bfloat16 branches."""
    x = (4.0 * rng.normal(size=(2, 16, 32))).astype("float32")

    def stack(dtype=None):
        layer = PARStack([(0, 1)] * 24, num_heads=2, dtype=dtype)
        layer.build(x.shape)
        return layer

    reference = stack("float32")
    for alpha in (w for w in reference.weights if w.name == "alpha"):
        alpha.assign(0.01)
    mixed = stack()
    mixed.set_weights(reference.get_weights())
    outputs = mixed(x)
    assert outputs.dtype == "float32"
    expected_update = np.asarray(reference(x), np.float64) - x
    error = np.asarray(outputs, np.float64) - x - expected_update
    relative = np.sqrt((error**2).mean() / (expected_update**2).mean())
    # Measured 0.0047; 0.80 with the old bfloat16 stream.
    assert relative < 0.02, relative


@pytest.mark.parametrize("cache", [True, False])
def test_both_samplers_run_under_the_mixed_policy(mixed_policy, cache):
    """The cached sampler and the no-cache reference loop both carry float32 hidden states
    through their loops (a bfloat16 start would not match the decoders' float32 output)."""
    from dctformer_tf.dct import SparseCodec
    from dctformer_tf.model.configs import ModelConfig, build_model
    from dctformer_tf.sampling import Sampler

    config = ModelConfig(resolution=16, block_size=8, clip=200, d_model=16, num_heads=2,
                         key_size=8, encoder_spec=[(1, 1)], channel_spec=[(1, 1)],
                         position_spec=[(1, 1)], value_spec=[(1, 1)], conv_kernel=2,
                         conv_stride=2, chunk_size=16, chunk_overlap=8)
    model = build_model(**vars(config))
    codec = SparseCodec(block_size=8, clip=200, resolution=16)
    sampler = Sampler(model, codec, config.chunk_size, config.chunk_overlap, 64, cache=cache,
                      jit_compile=False)
    result = sampler.sample(2, seed=0, batch_size=2, max_chunks=1)
    assert result.length.min() > 0


def test_an_attention_bias_reaches_the_scores_in_float32(mixed_policy, monkeypatch):
    """A float32 bias (the grid attention bias) must not be rounded to bfloat16 on its way
    into the attention layer, whose scores and softmax are float32."""
    seen = []
    attend = CachedMultiHeadAttention._attend

    def spy(self, query, key, value, mask, bias=None):
        seen.append(bias.dtype)
        return attend(self, query, key, value, mask, bias)

    monkeypatch.setattr(CachedMultiHeadAttention, "_attend", spy)
    layer = CachedMultiHeadAttention(num_heads=2, key_size=8, causal=True)
    query = np.zeros((1, 3, 16), "float32")
    bias = np.full((1, 2, 3, 3), 1.0 + 2.0**-12, "float32")  # not a bfloat16 number
    layer(query, bias=bias)
    cache = np.zeros((1, 2, 2, 3, 8), "float32")
    layer(query[:, :1], cache=keras.ops.cast(cache, "bfloat16"), cache_index=0,
          bias=bias[:, :, :1])
    assert [keras.backend.standardize_dtype(d) for d in seen] == ["float32", "float32"]
