"""Structure across blocks: does an image's DC band (its ×S-downsampled image) vary smoothly?

The `shapes` images are a bilinear colour gradient under flat shapes. Over the grid of block
means, a bilinear gradient has zero second differences along each axis, and so does a flat
shape away from its edges; block noise does not. Samples of the early models match the data's
texture inside blocks but not this structure across blocks (docs/results.md, "Structure"),
which FID on small sets hardly shows, so it is measured directly:

    smoothness = the fraction of interior grid cells whose horizontal and vertical second
                 differences of the block means are at most `tolerance` levels, in each of
                 Y, Cb and Cr.

Real images score well below 1 once they go through the codec (shape edges and quantization
break cells), so samples are read beside the data through the codec (`report.structure_report`;
the measured values are in docs/results.md, "Structure across blocks").
"""

import numpy as np

from dctformer_tf.dct.np_ops import rgb_to_ycbcr


def block_means(images, block_size: int) -> np.ndarray:
    """float64 [N, G, G, 3]: the YCbCr mean of every block (the DC band, in levels).

    Args:
      images: uint8 [N, H, W, 3] with H, W multiples of `block_size`.
    """
    images = np.asarray(images)
    n, h, w, _ = images.shape
    if h % block_size or w % block_size:
        raise ValueError(f"block_means: image size {h}x{w} is not a multiple of the block size "
                         f"{block_size}")
    ycc = rgb_to_ycbcr(images)  # the codec's colour transform (docs/design.md §1.2)
    blocks = ycc.reshape(n, h // block_size, block_size, w // block_size, block_size, 3)
    return blocks.mean(axis=(2, 4))


def dc_smoothness(images, block_size: int, tolerance: float = 4.0) -> np.ndarray:
    """float64 [N]: each image's smoothness (module docstring), in [0, 1].

    Args:
      images: uint8 [N, H, W, 3], at least three blocks each way.
      tolerance: largest second difference, in levels (0-255), of a smooth cell.
    """
    means = block_means(images, block_size)
    if min(means.shape[1:3]) < 3:
        raise ValueError("dc_smoothness needs at least 3x3 blocks per image")
    centre = means[:, 1:-1, 1:-1]
    across = np.abs(means[:, 1:-1, :-2] - 2 * centre + means[:, 1:-1, 2:]).max(axis=-1)
    down = np.abs(means[:, :-2, 1:-1] - 2 * centre + means[:, 2:, 1:-1]).max(axis=-1)
    smooth = (across <= tolerance) & (down <= tolerance)
    return smooth.reshape(len(means), -1).mean(axis=1)


def smoothness_summary(images, block_size: int, tolerance: float = 4.0) -> dict:
    """Median, mean and 10th/90th percentiles of `dc_smoothness` over a set of images."""
    scores = dc_smoothness(images, block_size, tolerance)
    p10, median, p90 = np.percentile(scores, [10, 50, 90])
    return {"median": float(median), "mean": float(scores.mean()), "p10": float(p10),
            "p90": float(p90), "num_images": int(len(scores)), "tolerance": tolerance}


def second_difference_medians(images, block_size: int) -> dict:
    """{"Y", "Cb", "Cr": float}: the median |second difference| of block means, in levels,
    over both axes and every interior cell of every image (a bilinear gradient scores 0,
    block noise high).

    Args:
      images: uint8 [N, H, W, 3], at least three blocks each way.
    """
    means = block_means(images, block_size)
    if min(means.shape[1:3]) < 3:
        raise ValueError("second_difference_medians needs at least 3x3 blocks per image")
    across = np.abs(means[:, :, :-2] - 2 * means[:, :, 1:-1] + means[:, :, 2:])
    down = np.abs(means[:, :-2] - 2 * means[:, 1:-1] + means[:, 2:])
    return {name: float(np.median(np.concatenate([across[..., i].ravel(), down[..., i].ravel()])))
            for i, name in enumerate(("Y", "Cb", "Cr"))}
