"""Smooth initialisation of the value-token embedding and of the value logits.

Value tokens are ordered integers (`v = token - clip`), but a plain embedding table and a
plain logits layer treat them as unrelated symbols: the model must learn from data alone
that a DC value of 57 is close to 56 and 58, and it sees each of the 2·clip + 1 values
rarely. With `value_init="sinusoidal"` both tables start as the same Fourier features of
`v` (sin and cos at geometrically spaced periods, as in Transformer position encodings):

    E_v[v] ∝ f(v),   W_logits[:, v] ∝ f(v),   f(v)·f(u) = Σ_i cos(ω_i (v − u)),

so a hidden state carrying the features of a value `u` gives logits peaked at `u` and
decaying smoothly (heavy-tailed) with |v − u|. Both tables stay ordinary trainable weights
of the same shapes; only their starting point changes, so the architecture, parameter count
and checkpoints are those of docs/design.md §3.
"""

import math

import keras
import numpy as np

VALUE_INITS = ("normal", "sinusoidal")


def check_value_init(value_init: str) -> str:
    if value_init not in VALUE_INITS:
        raise ValueError(f"value_init must be one of {VALUE_INITS}, got {value_init!r}")
    return value_init


def sinusoidal_value_features(num_tokens: int, clip: int, dim: int) -> np.ndarray:
    """Fourier features of the signed values of `num_tokens` token ids.

    Token `k` holds the value `v = k − clip` (ids past `2·clip`, such as the START id, simply
    continue the line). Periods run geometrically from 2 to `4·(clip + 1)`, so the fastest
    pair separates neighbouring values and the slowest is monotone over the whole range.

    Args:
        num_tokens: int. Rows (`V` or `V + 1`).
        clip: int. Clip value; `V = 2·clip + 1`.
        dim: int. Feature size `D`; an odd `D` leaves the last column zero.

    Returns:
        float64 `[num_tokens, dim]`: columns `cos(ω_i v)` then `sin(ω_i v)`, each of mean
        square 1/2 over a full period.
    """
    values = np.arange(num_tokens, dtype=np.float64) - clip  # [num_tokens]
    return fourier_features(values, 4.0 * (clip + 1), dim)


def fourier_features(values: np.ndarray, max_period: float, dim: int) -> np.ndarray:
    """float64 `[len(values), dim]`: `cos(ω_i v)` then `sin(ω_i v)` for `dim // 2` angular
    frequencies `ω_i = 2π / period_i`, periods geometric from 2 to `max_period` (an odd `dim`
    leaves the last column zero). Shared by the value and position starts."""
    half = dim // 2
    periods = np.geomspace(2.0, max_period, half) if half > 1 else np.array([2.0])
    angles = values[:, None] * (2.0 * np.pi / periods[:half])[None, :]  # [len(values), half]
    features = np.zeros((len(values), dim))
    features[:, :half] = np.cos(angles)
    features[:, half:2 * half] = np.sin(angles)
    return features


class FourierTableInitializer(keras.initializers.Initializer):
    """Base of the smooth starts: a `[rows, D]` table (or, with `transpose=True`, a
    `[D, rows]` logits kernel) of Fourier features (`features`), scaled to entries of standard
    deviation `stddev` (None: the Glorot-uniform standard deviation `sqrt(2 / (fan_in +
    fan_out))` that a Dense kernel would get). Each Fourier column has mean square 1/2, hence
    the factor sqrt(2)."""

    def __init__(self, stddev: float | None = None, transpose: bool = False):
        self.stddev = stddev
        self.transpose = transpose

    def features(self, rows: int, dim: int, stddev: float) -> np.ndarray:
        """float64 [rows, dim] with entries of standard deviation `stddev`."""
        raise NotImplementedError

    def __call__(self, shape, dtype=None):
        rows, dim = (shape[1], shape[0]) if self.transpose else (shape[0], shape[1])
        stddev = self.stddev if self.stddev is not None else math.sqrt(2.0 / (rows + dim))
        table = self.features(rows, dim, stddev)
        if self.transpose:
            table = table.T
        return keras.ops.convert_to_tensor(table, dtype=dtype or "float32")

    def get_config(self):
        return {"stddev": self.stddev, "transpose": self.transpose}


@keras.saving.register_keras_serializable(package="dctformer_tf")
class SinusoidalValueInitializer(FourierTableInitializer):
    """`sinusoidal_value_features` as an embedding table or logits kernel (see the base)."""

    def __init__(self, clip: int, stddev: float | None = None, transpose: bool = False):
        super().__init__(stddev, transpose)
        self.clip = clip

    def features(self, rows: int, dim: int, stddev: float) -> np.ndarray:
        return sinusoidal_value_features(rows, self.clip, dim) * (stddev * math.sqrt(2.0))

    def get_config(self):
        return {"clip": self.clip, **super().get_config()}
