"""WarmupCosine against its closed form, serialization, and use inside Keras Adam."""

import math

import keras
import numpy as np
import pytest

from dctformer_tf.train.schedules import WarmupCosine

PEAK, WARMUP, TOTAL = 1e-3, 100, 1100


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 0.0),
        (50, PEAK / 2),  # mid-warmup
        (100, PEAK),  # peak
        (350, PEAK * 0.5 * (1 + math.cos(math.pi / 4))),  # a quarter into the decay
        (600, PEAK / 2),  # mid-decay
        (1100, 0.0),  # end
        (5000, 0.0),  # past the end
    ],
)
def test_values_match_the_closed_form(step, expected):
    schedule = WarmupCosine(PEAK, total_steps=TOTAL, warmup_steps=WARMUP)
    np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-6, atol=1e-12)


def test_no_warmup_starts_at_the_peak_and_bad_lengths_are_errors():
    np.testing.assert_allclose(float(WarmupCosine(PEAK, 10, warmup_steps=0)(0)), PEAK)
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        WarmupCosine(PEAK, total_steps=1000)
    with pytest.raises(ValueError, match="peak_learning_rate"):
        WarmupCosine(0.0, total_steps=2000)


def test_serialization_round_trip():
    schedule = WarmupCosine(PEAK, total_steps=TOTAL, warmup_steps=WARMUP)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, WarmupCosine)
    assert restored.get_config() == schedule.get_config()
    assert WarmupCosine.from_config(schedule.get_config()).get_config() == schedule.get_config()
    for step in (0, 70, 100, 900):
        assert float(restored(step)) == float(schedule(step))


def test_drives_adam_and_survives_a_saved_model(tmp_path):
    schedule = WarmupCosine(PEAK, total_steps=TOTAL, warmup_steps=WARMUP)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse")
    x, y = np.ones((8, 2), np.float32), np.zeros((8, 1), np.float32)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 4
    np.testing.assert_allclose(float(model.optimizer.learning_rate), PEAK * 4 / WARMUP, rtol=1e-6)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert int(loaded.optimizer.iterations) == 4
    np.testing.assert_allclose(float(loaded.optimizer.learning_rate), PEAK * 4 / WARMUP, rtol=1e-6)
    loaded.fit(x[:2], y[:2], batch_size=2, epochs=1, verbose=0)  # still on the schedule
    np.testing.assert_allclose(float(loaded.optimizer.learning_rate), PEAK * 5 / WARMUP, rtol=1e-6)

