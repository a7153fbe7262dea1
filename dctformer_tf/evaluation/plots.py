"""Figures drawn with Pillow alone (matplotlib is not a dependency).

- `bpd_per_chunk_figure`: paper Figure 9, bits per subpixel spent in each chunk of the
  sequence, as bars stacked from the channel, position and value parts.
"""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dctformer_tf.model.losses import COMPONENTS

# Bar colours, bottom to top. The legend swatches are LEGEND_SWATCH² squares of these.
COMPONENT_COLORS = {"channel": (31, 119, 180), "position": (255, 127, 14), "value": (44, 160, 44)}
LEGEND_SWATCH = 10
_MARGIN = {"left": 64, "right": 16, "top": 44, "bottom": 40}
_AXIS, _GRID, _BACKGROUND = (0, 0, 0), (225, 225, 225), (255, 255, 255)


def bpd_per_chunk_figure(result: dict, width: int = 720, height: int = 420,
                         title: str | None = None) -> Image.Image:
    """Stacked bars of bpd per chunk index (paper Figure 9).

    Args:
      result: `evaluate_bpd`'s dict; reads "bpd" and "bpd_per_chunk_{channel,position,value}"
        (lists of equal length, one value per chunk).
      width, height: int. Figure size in pixels.
      title: str. Defaults to "bits per subpixel per chunk (total <bpd>)".
    Returns:
      An RGB `PIL.Image` of `width × height`.
    """
    parts = np.array([result[f"bpd_per_chunk_{name}"] for name in COMPONENTS], np.float64)
    if parts.ndim != 2 or parts.shape[1] == 0:
        raise ValueError(f"bpd_per_chunk_figure: no per-chunk bpd in result (parts {parts.shape})")
    plot_w = width - _MARGIN["left"] - _MARGIN["right"]
    plot_h = height - _MARGIN["top"] - _MARGIN["bottom"]
    num_chunks = parts.shape[1]
    if plot_w < num_chunks or plot_h < 20:
        raise ValueError(
            f"bpd_per_chunk_figure: {width}×{height} pixels is too small for {num_chunks} chunks"
        )
    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    x0, y0 = _MARGIN["left"], _MARGIN["top"] + plot_h  # origin of the axes, y grows down

    step = _tick_step(parts.sum(axis=0).max())
    y_max = step * max(1, math.ceil(parts.sum(axis=0).max() / step))
    for i in range(round(y_max / step) + 1):
        y = y0 - round(i * step / y_max * plot_h)
        draw.line([(x0, y), (x0 + plot_w, y)], fill=_GRID)
        draw.text((x0 - 6, y), f"{i * step:.3g}", fill=_AXIS, font=font, anchor="rm")

    slot = plot_w / num_chunks
    bar = max(1, int(slot * 0.8))
    label_every = max(1, math.ceil(24 / slot))  # keep x labels >= 24 px apart
    for k in range(num_chunks):
        left = x0 + round(k * slot + (slot - bar) / 2)
        # Round the cumulative tops, not each part, so the parts tile the whole bar exactly.
        tops = np.rint(np.cumsum(parts[:, k]) / y_max * plot_h).astype(int)
        bottom = 0
        for name, top in zip(COMPONENTS, tops, strict=True):
            if top > bottom:
                draw.rectangle([left, y0 - top, left + bar - 1, y0 - bottom - 1],
                               fill=COMPONENT_COLORS[name])
            bottom = top
        if k % label_every == 0:
            draw.text((x0 + (k + 0.5) * slot, y0 + 6), str(k), fill=_AXIS, font=font, anchor="mt")

    draw.line([(x0, y0), (x0 + plot_w, y0)], fill=_AXIS)
    draw.line([(x0, y0), (x0, _MARGIN["top"])], fill=_AXIS)
    draw.text((x0 + plot_w / 2, height - 6), "chunk index", fill=_AXIS, font=font, anchor="mb")
    draw.text((6, _MARGIN["top"] - 18), "bpd", fill=_AXIS, font=font, anchor="lm")
    if title is None:
        title = f"bits per subpixel per chunk (total {result.get('bpd', parts.sum()):.4f})"
    draw.text((width / 2, 4), title, fill=_AXIS, font=font, anchor="mt")
    legend_x = x0 + plot_w
    for name in reversed(COMPONENTS):  # right-aligned, in stacking order read left to right
        text_w = draw.textlength(name, font=font)
        legend_x -= text_w + LEGEND_SWATCH + 14
        y = _MARGIN["top"] - 18
        draw.rectangle([legend_x, y - LEGEND_SWATCH // 2, legend_x + LEGEND_SWATCH - 1,
                        y - LEGEND_SWATCH // 2 + LEGEND_SWATCH - 1], fill=COMPONENT_COLORS[name])
        draw.text((legend_x + LEGEND_SWATCH + 4, y), name, fill=_AXIS, font=font, anchor="lm")
    return image


def save_bpd_per_chunk_plot(result: dict, path: str, **kwargs) -> str:
    """Writes `bpd_per_chunk_figure(result, **kwargs)` as a PNG at `path`; returns `path`."""
    bpd_per_chunk_figure(result, **kwargs).save(path, "PNG")
    return path


def _tick_step(value: float) -> float:
    """A 1-2-5 step that cuts [0, value] into 4 to 10 intervals."""
    if not value > 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value / 4))
    for factor in (1, 2, 5, 10):
        if value / (step * factor) <= 10:
            return step * factor
    return step * 10
