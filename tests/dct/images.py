"""Test images: natural photographs shipped with scikit-image, and seeded random images."""

import numpy as np
from skimage import data

NATURAL = ("astronaut", "coffee", "chelsea", "rocket")


def natural(name: str, size: int | None = None) -> np.ndarray:
    """uint8 [H, W, 3] photo; with size, a centred size x size crop."""
    image = getattr(data, name)()
    if size is not None:
        h, w = image.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        image = image[top : top + size, left : left + size]
    return np.ascontiguousarray(image)


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth-plus-noise uint8 [H, W, 3]: structured enough to have non-trivial sparsity."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = 128 + 100 * np.sin(6 * x[..., None] + rng.uniform(0, 6, 3)) * np.cos(4 * y[..., None])
    noise = rng.normal(0, 20, (height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)
