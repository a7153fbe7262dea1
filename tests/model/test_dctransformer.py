import keras
import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.model.dctransformer import DCTransformer
from tests.model.layer_test_case import (
    TINY,
    forward_fn,
    random_example,
    set_random_alphas,
    tiny_model,
)

UNCHANGED, CHANGED = 1e-5, 1e-4


def built_model(seed=0, **overrides):
    model = tiny_model(**overrides)
    model(random_example(model))
    set_random_alphas(model, seed=seed)
    return model


def max_diff(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max(axis=(0, -1))  # per window step [T]


def test_output_shapes_and_dtypes():
    model = tiny_model()
    outputs = model(random_example(model))
    t = model.window
    assert outputs["channel_logits"].shape == (2, t, 3 * 2**2 + 1)
    assert outputs["position_logits"].shape == (2, t, 25)
    assert outputs["value_logits"].shape == (2, t, 7)
    assert all(v.dtype == "float32" for v in outputs.values())
    assert model.start_triple() == (13, 25, 7)


def test_every_alpha_starts_at_zero():
    model = tiny_model()
    model(random_example(model))
    alphas = [w for w in model.weights if w.name == "alpha"]
    # encoder 1+1, channel (1 self + 1 cross) + 1, position 3, value 2 + 2
    assert len(alphas) == 2 + 3 + 3 + 4
    assert all(float(a.numpy()) == 0.0 for a in alphas)


def test_causality_by_perturbation():
    model = built_model()
    forward = forward_fn(model)
    example = random_example(model, seed=1)
    base = {k: np.asarray(v) for k, v in forward(example).items()}
    rng = np.random.default_rng(2)
    vocab = np.array([model.num_channels + 1, model.num_positions, model.num_values])

    def perturbed(**changes):
        """Copy of `example` with `(array, t, field)` entries redrawn (field None = all)."""
        x = {k: v.copy() for k, v in example.items()}
        for name, (t_slice, field) in changes.items():
            fields = range(3) if field is None else [field]
            for f in fields:
                current = x[name][:, t_slice, f]
                x[name][:, t_slice, f] = (
                    current + rng.integers(1, vocab[f], current.shape)
                ) % vocab[f]
        return {k: np.asarray(v) for k, v in forward(x).items()}

    window = model.window
    for t in range(window):
        after = slice(t + 1, None)
        # Channel logits at t ignore inputs after t and every target from t on.
        out = perturbed(inputs=(after, None), targets=(slice(t, None), None))
        assert max_diff(out["channel_logits"], base["channel_logits"])[: t + 1].max() < UNCHANGED

        # Position logits at t: c_t matters; p_t, v_t and anything later do not.
        out = perturbed(targets=(slice(t, t + 1), 0))
        assert max_diff(out["position_logits"], base["position_logits"])[t] > CHANGED
        later = {"inputs": (after, None), "targets": (after, None)}
        for field in (1, 2):
            x_t = perturbed(targets=(slice(t, t + 1), field))
            assert max_diff(x_t["position_logits"], base["position_logits"])[t] < UNCHANGED
        out = perturbed(**later)
        assert max_diff(out["position_logits"], base["position_logits"])[: t + 1].max() < UNCHANGED

        # Value logits at t: p_t matters; v_t and anything later do not.
        out = perturbed(targets=(slice(t, t + 1), 1))
        assert max_diff(out["value_logits"], base["value_logits"])[t] > CHANGED
        out = perturbed(targets=(slice(t, t + 1), 2))
        assert max_diff(out["value_logits"], base["value_logits"])[t] < UNCHANGED
        out = perturbed(**later)
        assert max_diff(out["value_logits"], base["value_logits"])[: t + 1].max() < UNCHANGED


def test_partial_image_and_label_change_every_head():
    model = built_model()
    forward = forward_fn(model)
    example = random_example(model)
    base = forward(example)
    image = dict(example, partial_image=example["partial_image"] + 1)
    label = dict(example, label=(example["label"] + 1) % model.num_classes)
    for changed in (forward(image), forward(label)):
        for name in base:
            assert max_diff(changed[name], base[name]).min() > CHANGED, name


def test_label_is_required_iff_conditional():
    with pytest.raises(ValueError, match="label"):
        tiny_model()({k: v for k, v in random_example(tiny_model()).items() if k != "label"})
    unconditional = tiny_model(num_classes=0)
    assert "label" not in random_example(unconditional)
    unconditional(random_example(unconditional))


def cached_logits(model, example, jit_compile=False):
    """Runs the three cached sub-steps over the window inside one tf.while_loop."""

    @tf.function(jit_compile=jit_compile)
    def decode(example):
        label = example.get("label")
        cache = model.init_cache(model.encode(example["partial_image"], label))
        inputs, targets = example["inputs"], example["targets"]
        window = inputs.shape[1]
        arrays = [tf.TensorArray(tf.float32, size=window) for _ in range(3)]

        def body(t, cache, channel, position, value):
            logits, cache = model.decode_channel_step(cache, inputs[:, t], t, label)
            channel = channel.write(t, logits)
            logits, cache = model.decode_position_step(cache, targets[:, t, 0], t)
            position = position.write(t, logits)
            logits, cache = model.decode_value_step(cache, targets[:, t, 1], t)
            return t + 1, cache, channel, position, value.write(t, logits)

        _, _, *arrays = tf.while_loop(lambda t, *_: t < window, body, (0, cache, *arrays))
        return [tf.transpose(a.stack(), [1, 0, 2]) for a in arrays]  # [T, B, X] -> [B, T, X]

    return [np.asarray(x) for x in decode(example)]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_cached_decoding_equals_teacher_forcing(jit_compile):
    model = built_model()
    example = random_example(model, seed=3)
    full = forward_fn(model)(example)
    cached = cached_logits(model, example, jit_compile=jit_compile)
    for name, logits in zip(
        ("channel_logits", "position_logits", "value_logits"), cached, strict=True
    ):
        np.testing.assert_allclose(logits, full[name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_init_cache_shapes():
    model = built_model()
    example = random_example(model)
    cache = model.init_cache(model.encode(example["partial_image"], example["label"]))
    n, h, k = 9, TINY["num_heads"], TINY["key_size"]
    assert cache["encoder_output"].shape == (2, n, TINY["d_model"])
    assert cache["channel"]["self"].shape == (2, 1, 2, h, model.window, k)
    assert cache["value"]["cross"].shape == (2, 1, 2, h, n, k)
    assert cache["channel_hidden"].shape == (2, TINY["d_model"])


def test_config_round_trip():
    model = tiny_model(dropout=0.1, value_scale="dequantized")
    config = model.get_config()
    restored = DCTransformer.from_config(config)
    assert restored.get_config() == config
    for name in ("block_size", "grid_size", "clip", "d_model", "window", "num_classes"):
        assert getattr(restored, name) == TINY[name]
    assert restored.encoder_spec == [(1, 1)] and restored.value_spec == [(1, 2)]
    assert restored.value_scale == "dequantized"
    example = random_example(model)
    expected = model(example)
    restored(example)
    restored.set_weights(model.get_weights())
    for name, value in restored(example).items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(expected[name]))


def test_keras_save_and_load(tmp_path):
    model = built_model()
    example = random_example(model)
    expected = model(example)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, DCTransformer)
    outputs = restored(example)
    for name in expected:
        np.testing.assert_array_equal(outputs[name], expected[name])


def sum_of_cross_entropies():
    """Stand-in loss for the fit check: one sparse CE per head, masked by sample weights."""
    return {
        name: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        for name in ("channel_logits", "position_logits", "value_logits")
    }


def test_fit_step_under_mirrored_strategy(two_cpu_strategy):
    with two_cpu_strategy.scope():
        # Fewer layers and SGD (no slot variables) keep graph tracing, the slow part, short.
        model = tiny_model(value_spec=[(1, 1)])
        example = random_example(model, batch_size=4)
        model(example)  # build outside the traced train step
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=sum_of_cross_entropies())
    targets = example["targets"]
    y = {
        "channel_logits": targets[..., 0],
        "position_logits": targets[..., 1],
        "value_logits": targets[..., 2],
    }
    # The last positions stand for padding: loss mask 0.
    mask = (np.arange(model.window) < 9).astype("float32")[None].repeat(4, 0)
    weights = {name: mask for name in y}
    history = model.fit(example, y, sample_weight=weights, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    alphas = [w for w in model.weights if w.name == "alpha"]
    assert any(abs(float(a.numpy())) > 0 for a in alphas)


def test_mixed_bfloat16_keeps_logits_and_layer_norms_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = tiny_model()
        example = random_example(model, dtype="float32")
        outputs = model(example)
        set_random_alphas(model)
        cache = model.init_cache(model.encode(example["partial_image"], example["label"]))
        step_logits, cache = model.decode_channel_step(
            cache, example["inputs"][:, 0], 0, example["label"]
        )
    finally:
        keras.config.set_dtype_policy(previous)
    assert all(v.dtype == "float32" for v in outputs.values())
    assert step_logits.dtype == "float32"
    assert cache["channel"]["self"].dtype == "bfloat16"
    layers = list(model._flatten_layers())
    norms = [layer for layer in layers if isinstance(layer, keras.layers.LayerNormalization)]
    assert len(norms) == 16  # every residual (12) + encoder and decoder output norms (4)
    assert all(n.compute_dtype == "float32" and n.variable_dtype == "float32" for n in norms)
    attention = model.channel_decoder.stack.residual_layers[0].sublayer
    assert attention.compute_dtype == "bfloat16"
    assert attention.query_dense.kernel.dtype == "float32"  # variables stay float32


def test_value_logits_read_the_encoder_cell_of_the_target_position():
    """The gather, through the whole model: with every alpha at 0 (the initial state) the
    encoder tokens depend only on their own conv block (kernel = stride) and the decoders
    never attend, so the encoder reaches the value logits only through the gathered cell.
    Perturbing the partial image at one grid cell must change the value logits exactly at the
    steps whose target position lies in that cell's stride block (hand-computed here)."""
    model = tiny_model(conv_kernel=2, conv_stride=2)
    g, s = model.grid_size, model.conv_stride
    example = random_example(model, seed=3)
    model(example)
    forward = forward_fn(model)
    for row, col in [(g - 1, g - 1), (g - 1, 0), (0, g - 1), (2, 3)]:
        targets = example["targets"].copy()
        targets[:, ::3, 1] = row * g + col  # every third step targets the perturbed cell
        x = {**example, "targets": targets}
        base = np.asarray(forward(x)["value_logits"])
        partial = x["partial_image"].copy()
        partial[:, row, col, :] += 2
        out = np.asarray(forward({**x, "partial_image": partial})["value_logits"])
        changed = np.abs(out - base).max(axis=-1) > CHANGED  # [B, T]
        p = targets[..., 1]
        same_block = ((p // g) // s == row // s) & ((p % g) // s == col // s)
        np.testing.assert_array_equal(changed, same_block, err_msg=f"cell ({row}, {col})")
        assert same_block.any() and not same_block.all()


def test_channel_logits_read_the_current_input():
    model = built_model()
    forward = forward_fn(model)
    example = random_example(model, seed=4)
    base = np.asarray(forward(example)["channel_logits"])
    vocab = [model.num_channels + 1, model.num_positions, model.num_values]
    for t in (0, model.window // 2, model.window - 1):
        for field in range(3):
            x = {k: v.copy() for k, v in example.items()}
            x["inputs"][:, t, field] = (x["inputs"][:, t, field] + 1) % vocab[field]
            out = np.asarray(forward(x)["channel_logits"])
            assert max_diff(out, base)[t] > CHANGED, f"input field {field} at step {t} ignored"


def test_init_cache_rejects_a_window_past_the_step_embedding():
    model = built_model()
    encoded = model.encode(random_example(model)["partial_image"], label=np.array([0, 1]))
    with pytest.raises(ValueError, match="window 13 is longer than the model's step embedding"):
        model.init_cache(encoded, window=13)
