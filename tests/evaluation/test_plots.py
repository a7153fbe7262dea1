"""The Figure 9 plot: a PNG of the asked size whose stacked bars have heights proportional
to the per-chunk parts; the sample grid puts each image at its tile."""

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.evaluation.plots import (
    COMPONENT_COLORS,
    LEGEND_SWATCH,
    save_bpd_per_chunk_plot,
)
from dctformer_tf.sampling.figures import image_grid

RESULT = {
    "bpd": 2.0,
    "bpd_per_chunk_channel": [0.4, 0.2, 0.1, 0.1],
    "bpd_per_chunk_position": [0.2, 0.2, 0.1, 0.0],
    "bpd_per_chunk_value": [0.4, 0.2, 0.1, 0.0],
}


def test_plot_is_a_png_of_the_asked_size_with_proportional_bars(tmp_path):
    path = save_bpd_per_chunk_plot(RESULT, str(tmp_path / "fig9.png"), width=500, height=300)
    with Image.open(path) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (500, 300), "RGB")
        pixels = np.asarray(image)
    heights = {}
    for name, color in COMPONENT_COLORS.items():
        mask = (pixels == color).all(axis=-1)
        columns = np.flatnonzero(mask.sum(axis=0) > LEGEND_SWATCH)  # bar columns, not legend
        assert len(columns), f"no {name} bar drawn"
        # Split the columns into bars at gaps; a bar's height is its pixel count per column.
        bars = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
        heights[name] = [int(mask[:, bar[0]].sum()) for bar in bars]
    # Channel has a part in all 4 chunks, position and value in the first 3 only.
    assert [len(heights[name]) for name in ("channel", "position", "value")] == [4, 3, 3]
    scale = heights["channel"][0] / 0.4  # pixels per bpd
    for name in COMPONENT_COLORS:
        want = [v * scale for v in RESULT[f"bpd_per_chunk_{name}"] if v > 0]
        np.testing.assert_allclose(heights[name], want, atol=1.01, err_msg=name)


def test_plot_rejects_missing_parts():
    with pytest.raises(ValueError, match="no per-chunk bpd"):
        save_bpd_per_chunk_plot({"bpd_per_chunk_channel": [], "bpd_per_chunk_position": [],
                                 "bpd_per_chunk_value": []}, "unused.png")


def test_image_grid_places_tiles_row_by_row():
    images = np.stack([np.full((4, 5, 3), 10 * (i + 1), np.uint8) for i in range(5)])
    grid = image_grid(images, columns=3, gap=1)
    assert grid.shape == (2 * 4 + 1, 3 * 5 + 2, 3)
    assert (grid[0:4, 6:11] == 20).all() and (grid[5:9, 6:11] == 50).all()
    assert (grid[5:9, 12:17] == 255).all() and (grid[4, :] == 255).all()
    # Tiles of different sizes (samples cropped to their content) sit top-left in their cell.
    mixed = image_grid([np.zeros((4, 5, 3), np.uint8), np.zeros((2, 3, 3), np.uint8)], 2)
    assert mixed.shape == (4, 5 + 2 + 5, 3) and (mixed[2:, 7:] == 255).all()
