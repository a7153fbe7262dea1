"""Figures drawn with Pillow alone (matplotlib is not a dependency).

- `bpd_per_chunk_figure`: paper Figure 9, bits per subpixel spent in each chunk of the
  sequence, as bars stacked from the channel, position and value parts.
- `length_histogram_figure`: a histogram of sequence lengths with the median, p99 and a
  `max_length` marked (`dctformer lengths`).
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
HISTOGRAM_COLORS = {"bar": (31, 119, 180), "over": (214, 39, 40), "percentile": (110, 110, 110)}


def label_font() -> "ImageFont.FreeTypeFont | ImageFont.ImageFont":
    """Pillow's scalable default font at 12 px: at its default 10 px it renders some spaces
    zero-width ("tokensseen"). A Pillow built without FreeType has only the bitmap font."""
    try:
        return ImageFont.load_default(size=12)
    except ImportError:
        return ImageFont.load_default()


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
    font = label_font()
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


def length_histogram_figure(lengths, max_length: int | None = None, width: int = 720,
                            height: int = 420, bins: int | None = None,
                            title: str | None = None) -> Image.Image:
    """Histogram of sequence lengths, x from 0: bars of images per length bin (bins at or
    past `max_length` in red), grey lines at the median and p99, a red line at `max_length`.

    Args:
      lengths: int [N], N >= 1, EOS included.
      max_length: the run's sequence buffer, or None.
      width, height: int. Figure size in pixels.
      bins: number of equal bins over [0, the x axis' end]; None: about 2·√N, 10 to 60.
      title: str. Defaults to "sequence lengths of N images (mean M)".
    Returns:
      An RGB `PIL.Image` of `width × height`.
    """
    lengths = np.asarray(lengths, np.float64)
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"length_histogram_figure: no lengths (shape {lengths.shape})")
    plot_w = width - _MARGIN["left"] - _MARGIN["right"]
    plot_h = height - _MARGIN["top"] - _MARGIN["bottom"]
    bins = bins or int(np.clip(math.ceil(2 * math.sqrt(lengths.size)), 10, 60))
    if plot_w < bins or plot_h < 20:
        raise ValueError(f"length_histogram_figure: {width}×{height} pixels is too small for "
                         f"{bins} bins")
    x_step = _tick_step(max(lengths.max(), max_length or 0))
    x_max = x_step * max(1, math.ceil(max(lengths.max(), max_length or 0) / x_step))
    counts, edges = np.histogram(lengths, bins=bins, range=(0, x_max))

    image = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = label_font()
    x0, y0 = _MARGIN["left"], _MARGIN["top"] + plot_h  # origin of the axes, y grows down

    def x_of(length: float) -> float:
        return x0 + length / x_max * plot_w

    y_step = _tick_step(counts.max())
    y_max = y_step * max(1, math.ceil(counts.max() / y_step))
    for i in range(round(y_max / y_step) + 1):
        y = y0 - round(i * y_step / y_max * plot_h)
        draw.line([(x0, y), (x0 + plot_w, y)], fill=_GRID)
        draw.text((x0 - 6, y), f"{i * y_step:.3g}", fill=_AXIS, font=font, anchor="rm")
    for i in range(round(x_max / x_step) + 1):
        draw.text((x_of(i * x_step), y0 + 6), f"{i * x_step:.6g}", fill=_AXIS, font=font,
                  anchor="mt")

    for count, left, right in zip(counts, edges[:-1], edges[1:], strict=True):
        if count:
            over = max_length is not None and left >= max_length
            draw.rectangle([round(x_of(left)), y0 - round(count / y_max * plot_h),
                            max(round(x_of(left)), round(x_of(right)) - 2), y0 - 1],
                           fill=HISTOGRAM_COLORS["over" if over else "bar"])
    marks = [(f"p{p}", float(np.percentile(lengths, p)), "percentile") for p in (50, 99)]
    if max_length is not None:
        marks.append((f"max_length {max_length}", float(max_length), "over"))
    for _, length, color in marks:
        x = round(x_of(length))
        draw.line([(x, y0), (x, _MARGIN["top"])], fill=HISTOGRAM_COLORS[color])
    for i, (label, length, color) in enumerate(marks):
        x = round(x_of(length))
        # One label row per line (p50 may lie near p99), on white over the bars, left of
        # its line where it would leave the figure.
        right = x + 3 + draw.textlength(label, font=font) < width
        at = (x + 3 if right else x - 3, _MARGIN["top"] + 2 + 12 * i)
        anchor = "lt" if right else "rt"
        draw.rectangle(draw.textbbox(at, label, font=font, anchor=anchor), fill=_BACKGROUND)
        draw.text(at, label, fill=HISTOGRAM_COLORS[color], font=font, anchor=anchor)

    draw.line([(x0, y0), (x0 + plot_w, y0)], fill=_AXIS)
    draw.line([(x0, y0), (x0, _MARGIN["top"])], fill=_AXIS)
    draw.text((x0 + plot_w / 2, height - 6), "sequence length (EOS included)", fill=_AXIS,
              font=font, anchor="mb")
    draw.text((6, _MARGIN["top"] - 18), "images", fill=_AXIS, font=font, anchor="lm")
    if title is None:
        title = f"sequence lengths of {lengths.size} images (mean {lengths.mean():.0f})"
    draw.text((width / 2, 4), title, fill=_AXIS, font=font, anchor="mt")
    return image


def save_length_histogram(lengths, path: str, **kwargs) -> str:
    """Writes `length_histogram_figure(lengths, **kwargs)` as a PNG at `path`; returns it."""
    length_histogram_figure(lengths, **kwargs).save(path, "PNG")
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
