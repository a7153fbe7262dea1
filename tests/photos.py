"""Photo crops for tests and benchmarks: natural images that ship inside scikit-image
(`skimage.data`), so nothing is downloaded. A test helper, not part of the package;
`tools/bench_codec.py` imports it too."""

import numpy as np
from skimage import data as skdata

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")


def photo_crops(size: int, num: int, seed: int = 0) -> np.ndarray:
    """uint8 [num, size, size, 3] random crops of the scikit-image photos."""
    rng = np.random.default_rng(seed)
    photos = [np.asarray(getattr(skdata, name)())[..., :3] for name in PHOTOS]
    crops = []
    for i in range(num):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - size + 1)
        left = rng.integers(0, photo.shape[1] - size + 1)
        crops.append(photo[top : top + size, left : left + size])
    return np.stack(crops)


def photo_canvases(resolution: int, num: int, seed: int = 0) -> np.ndarray:
    """uint8 [num, resolution, resolution, 3]: random square crops of the scikit-image photos
    (side between half and all of the photo's shorter side), resized to `resolution` with
    Pillow's bicubic filter, as a data loader's random resized crop would give. Photos larger
    than the canvas are downscaled, smaller ones upscaled (smoother: shorter sequences)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = [np.asarray(getattr(skdata, name)())[..., :3] for name in PHOTOS]
    canvases = []
    for i in range(num):
        photo = photos[i % len(photos)]
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=-1)
        short = min(photo.shape[:2])
        side = int(rng.integers(short // 2, short + 1))
        top = rng.integers(0, photo.shape[0] - side + 1)
        left = rng.integers(0, photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        canvases.append(np.asarray(crop.resize((resolution, resolution), Image.BICUBIC)))
    return np.stack(canvases)
