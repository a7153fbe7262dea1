"""Random (untrained) models that behave like trained ones where a test or benchmark needs it.

A freshly built `DCTransformer` is degenerate in two ways that hide bugs and distort
benchmarks: its ReZero gates (`alpha`) start at 0, so every residual branch is switched off
and every window scores alike; and its channel logits are nearly uniform, so samples jump to
high channels, exhaust them and end within a few elements.
"""

import numpy as np


def open_rezero_branches(model, seed: int = 0, low: float = 0.5, high: float = 1.0) -> None:
    """Set every ReZero gate to a uniform draw in [low, high): every layer counts."""
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        if "alpha" in variable.path:
            variable.assign(rng.uniform(low, high, variable.shape).astype(np.float32))


def favour_long_samples(model, slope: float = 0.5) -> None:
    """Tilt the channel logits toward low channels (EOS, the last id, least likely), so that
    samples of an untrained model fill each channel and run over several chunks."""
    bias = model.channel_decoder.output_dense.bias
    bias.assign(bias.numpy() - slope * np.arange(bias.shape[0]))
