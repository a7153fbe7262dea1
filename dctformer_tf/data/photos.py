"""Photo crops for benchmarks and tests: natural images that ship inside scikit-image
(`skimage.data`), so nothing is downloaded. scikit-image comes with the test extra
(`pip install -e ".[test]"`); it is imported on first use, with a clear error without it."""

import numpy as np


def _skimage_data():
    try:
        from skimage import data
    except ImportError:
        raise ImportError("the sample photos come from scikit-image: pip install -e "
                          '".[test]"') from None
    return data


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")


def photo_crops(size: int, num: int, seed: int = 0) -> np.ndarray:
    """uint8 [num, size, size, 3] random crops of the scikit-image photos."""
    rng = np.random.default_rng(seed)
    photos = [np.asarray(getattr(_skimage_data(), name)())[..., :3] for name in PHOTOS]
    crops = []
    for i in range(num):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - size + 1)
        left = rng.integers(0, photo.shape[1] - size + 1)
        crops.append(photo[top : top + size, left : left + size])
    return np.stack(crops)


MAX_CROP = 300  # the height of the smallest photo, chelsea


def photo_canvases(size: int, num: int, seed: int = 0, crop: int = MAX_CROP) -> np.ndarray:
    """uint8 [num, size, size, 3]: `photo_crops` of min(size, crop) pixels, resized up to
    `size` with Pillow's Lanczos filter when smaller (the smallest photo is 300 px high).
    Upscaled crops lack the fine detail of photos taken at that size: their sequences are
    shorter than native photos' would be. The images the Table 3 data files' assumed
    lengths were measured on (`tools/photo_folder.py`)."""
    from PIL import Image

    if not 0 < crop <= MAX_CROP:
        raise ValueError(f"--crop must be in [1, {MAX_CROP}] (the smallest photo's height), "
                         f"got {crop}")
    side = min(size, crop)
    canvases = []
    for pixels in photo_crops(side, num, seed):
        image = Image.fromarray(pixels)
        if side < size:
            image = image.resize((size, size), Image.Resampling.LANCZOS)
        canvases.append(np.asarray(image))
    return np.stack(canvases)
