"""Figures made from sampled sequences (Pillow/numpy only, no plotting library).

- `image_grid`: samples side by side in rows.
- `generation_figure` (paper Figure 1): for chunks of the generation, the image decoded from
  the elements so far (top) and a heat map of where that chunk's elements were placed
  (bottom: elements per block cell, all channels, hot colour map).
- `progressive_strip` of `dct.progressive`: a sequence decoded from growing prefixes.
"""

import numpy as np

from dctformer_tf.dct.progressive import progressive_strip

__all__ = ["generation_figure", "heat_colors", "image_grid", "placement_counts",
           "progressive_strip"]


def image_grid(images, columns: int, gap: int = 2, background: int = 255) -> np.ndarray:
    """list of uint8 [h, w, 3] (sizes may differ) -> uint8 grid, `columns` per row."""
    if not len(images):
        raise ValueError("image_grid: no images")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), background, np.uint8)
    for n, image in enumerate(images):
        r, c = divmod(n, columns)
        grid[r * (h + gap): r * (h + gap) + image.shape[0],
             c * (w + gap): c * (w + gap) + image.shape[1]] = image
    return grid


def heat_colors(x: np.ndarray) -> np.ndarray:
    """float [...] in [0, 1] -> uint8 [..., 3], black -> red -> yellow -> white."""
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)[..., None]
    rgb = np.clip(3.0 * x - np.array([0.0, 1.0, 2.0]), 0.0, 1.0)
    return np.round(255 * rgb).astype(np.uint8)


def placement_counts(triples: np.ndarray, grid: int, eos: int) -> np.ndarray:
    """int [n, 3] elements -> float64 [grid, grid] elements per block cell (EOS skipped)."""
    triples = np.asarray(triples)
    positions = triples[triples[:, 0] != eos, 1]
    return np.bincount(positions, minlength=grid * grid).reshape(grid, grid).astype(np.float64)


def generation_figure(codec, triples: np.ndarray, length: int, height: int, width: int,
                      chunk_size: int, max_panels: int = 8, gap: int = 2) -> np.ndarray:
    """Paper Figure 1 for one sample: decoded image after chunk k (top row) and a heat map
    of the cells chunk k wrote to (bottom row), for up to `max_panels` evenly spaced chunks.

    Args:
      triples: int32 [>= length, 3]; length: elements with EOS; height, width: content size.
    Returns:
      uint8 [2·height + gap, n·(width + gap) − gap, 3].
    """
    grid = codec.grid[0]
    num_chunks = max(1, -(-int(length) // chunk_size))
    shown = np.unique(np.linspace(0, num_chunks - 1, min(max_panels, num_chunks)).round()
                      ).astype(int)
    cell_rows, cell_cols = -(-height // codec.block_size), -(-width // codec.block_size)
    panels = []
    for k in shown:
        end = min((k + 1) * chunk_size, int(length))
        image = codec.decode(triples[:end], height, width)
        counts = placement_counts(triples[k * chunk_size: end], grid, codec.eos)
        counts = counts[:cell_rows, :cell_cols]
        heat = heat_colors(counts / max(counts.max(), 1.0))
        heat = np.kron(heat, np.ones((codec.block_size, codec.block_size, 1), np.uint8))
        column = np.full((2 * height + gap, width, 3), 255, np.uint8)
        column[:height] = image
        column[height + gap:] = heat[:height, :width]
        panels.append(column)
    return image_grid(panels, columns=len(panels), gap=gap)
