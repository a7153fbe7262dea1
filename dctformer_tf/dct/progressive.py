"""Progressive decoding (paper Figure 2): an image decoded from growing sequence prefixes."""

import numpy as np

from dctformer_tf.dct.codec import SparseCodec

DEFAULT_FRACTIONS = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


def prefix_lengths(length: int, fractions=DEFAULT_FRACTIONS) -> list:
    """Prefix lengths (at least 1 element each) for fractions of a sequence of `length`."""
    return [max(1, int(round(f * length))) for f in fractions]


def progressive_strip(
    codec: SparseCodec, triples: np.ndarray, height: int, width: int, fractions=DEFAULT_FRACTIONS,
    gap: int = 2,
) -> tuple:
    """Decode growing prefixes side by side.

    Args:
      triples: int32 [L, 3], a whole sequence.
      height, width: content size.
    Returns:
      (uint8 [height, n·width + (n−1)·gap, 3] strip on white, list of the n prefix lengths).
    """
    lengths = prefix_lengths(len(triples), fractions)
    panels = [codec.decode(triples[:n], height, width) for n in lengths]
    strip = np.full((height, len(panels) * (width + gap) - gap, 3), 255, np.uint8)
    for i, panel in enumerate(panels):
        strip[:, i * (width + gap) : i * (width + gap) + width] = panel
    return strip, lengths
