"""Two-dimensional start of the position embeddings and of the position logits.

A position `p` is a cell `(p // G, p % G)` of the luma block grid, but a plain embedding
table and a plain logits layer treat the `P = G²` positions as unrelated symbols: the model
must learn from data that cell (3, 4) neighbours (3, 5) and (4, 4). With
`position_init="sinusoidal_2d"` the three position tables start as Fourier features of the
row and the column, half of the width each:

    f(p) = [cos(ω_i r), sin(ω_i r), cos(ω_i c), sin(ω_i c)],
    f(p)·f(q) = Σ_i cos(ω_i (r_p − r_q)) + Σ_i cos(ω_i (c_p − c_q)),

so a hidden state carrying the features of position `q` gives position logits peaked at
`q` and falling off smoothly in both grid directions, and neighbouring cells start with
similar input embeddings. The tables are the channel decoder's input `E_p` (START row at
random), the value decoder's `E'_p` and the position decoder's logits kernel. They stay
ordinary trainable weights of the same shapes, as with `value_init.py`: the architecture,
parameter count and checkpoints are those of docs/design.md §3.
"""

import math

import keras
import numpy as np

from dctformer_tf.model.value_init import FourierTableInitializer, fourier_features

POSITION_INITS = ("normal", "sinusoidal_2d")


def check_position_init(position_init: str, grid_size: int | None) -> str:
    if position_init not in POSITION_INITS:
        raise ValueError(f"position_init must be one of {POSITION_INITS}, got {position_init!r}")
    if position_init == "sinusoidal_2d" and not grid_size:
        raise ValueError('position_init="sinusoidal_2d" needs the grid_size')
    return position_init


def sinusoidal_position_features(num_positions: int, grid_size: int, dim: int) -> np.ndarray:
    """float64 `[num_positions, dim]`: row features in the first `dim // 2` columns, column
    features in the next `dim // 2` (periods from 2 to `4·G`, `value_init.fourier_features`).
    Position `p` lies at `(p // G, p % G)`; rows `p >= G²` (ids past the grid) are zero."""
    half = dim // 2
    cells = np.arange(min(num_positions, grid_size**2))
    features = np.zeros((num_positions, dim))
    features[cells, :half] = fourier_features(cells // grid_size, 4.0 * grid_size, half)
    features[cells, half:2 * half] = fourier_features(cells % grid_size, 4.0 * grid_size, half)
    return features


@keras.saving.register_keras_serializable(package="dctformer_tf")
class SinusoidalPositionInitializer(FourierTableInitializer):
    """`sinusoidal_position_features` as an embedding table or logits kernel (see the base,
    `value_init.FourierTableInitializer`). Rows past the grid (the START id) are drawn from
    N(0, stddev²) by keras' generator, so that `keras.utils.set_random_seed` holds."""

    def __init__(self, grid_size: int, stddev: float | None = None, transpose: bool = False,
                 seed: int | None = None):
        super().__init__(stddev, transpose)
        self.grid_size = grid_size
        self.seed = seed

    def features(self, rows: int, dim: int, stddev: float) -> np.ndarray:
        table = sinusoidal_position_features(rows, self.grid_size, dim) * (stddev * math.sqrt(2.0))
        extra = np.arange(rows) >= self.grid_size**2
        if extra.any():
            normal = keras.initializers.RandomNormal(stddev=stddev, seed=self.seed)
            table[extra] = keras.ops.convert_to_numpy(normal((int(extra.sum()), dim)))
        return table

    def get_config(self):
        return {"grid_size": self.grid_size, "seed": self.seed, **super().get_config()}
