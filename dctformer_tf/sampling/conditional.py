"""Super-resolution and colorization as forced prefixes (docs/design.md §6, paper App. F).

Both tasks rest on the channel order:
- under `"bands"` the first channels are the DC terms (band 0 of Y, Cr, Cb). A constant
  S×S block of value x has DC S·(x − 128), so the DC band of an image made of constant blocks
  is exactly its ×S-downsampled image (luma at ×S, chroma at ×2S: chroma is 4:2:0).
  `downsample_prefix` encodes a low-resolution input as that band at the target resolution;
- under `"luma_first"` the first channels are all Y channels: `luma_prefix` encodes a
  grayscale input as the whole luma part.

The sampler forces the prefix and draws the rest. Forcing the elements alone is not enough:
the prefix lists only the non-zero coefficients of its channels, and the sampler's masks
would let the model add elements to those channels after the prefix (a DC term the input has
as zero, or a Y channel above the input's last non-zero one). `upsample` and `colorize`
close them with the sampler's `min_channel` (`first_free_channel`): every draw after the
prefix lies in the channels the task leaves free. Prefix elements are fed, never drawn, so
the mask does not touch them.

Letters: S block size, R canvas side, G = R/S, C = 3·S² channels.
"""

import dataclasses

import numpy as np

from dctformer_tf.dct.order import channel_bands, channel_components
from dctformer_tf.sampling.sampler import Sampler, SampleResult

TASKS = ("upsample", "colorize")
# The order each task needs (docs/design.md §1.7, §6).
TASK_ORDER = {"upsample": "bands", "colorize": "luma_first"}
# JFIF luma weights (docs/design.md §1.2); Pillow's "L" conversion is their 16-bit fixed point.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
# PSNR of identical images, so that reports stay finite JSON numbers.
PSNR_CAP_DB = 100.0


# ----------------------------------------------------------------------------- channels


def dc_channels(codec) -> np.ndarray:
    """bool [C]: the channel ids of band 0 (the DC terms of Y, Cb, Cr)."""
    return channel_bands(codec.order, codec.block_size) == 0


def luma_channels(codec) -> np.ndarray:
    """bool [C]: the channel ids of Y coefficients."""
    return channel_components(codec.order, codec.block_size) == 0


def task_channels(codec, task: str) -> np.ndarray:
    """bool [C]: the channels a task's prefix fills (DC for upsample, Y for colorize)."""
    _check_task(task)
    return dc_channels(codec) if task == "upsample" else luma_channels(codec)


def check_task_order(codec, task: str) -> None:
    """A clear error unless the codec's channel order puts the task's channels first."""
    _check_task(task)
    needed = TASK_ORDER[task]
    if codec.order != needed:
        what = ("the DC band is a prefix" if task == "upsample"
                else "the luma part is a prefix")
        raise ValueError(f"{task} needs a model trained with the {needed!r} channel order "
                         f"(only there {what}); this run uses order {codec.order!r}")


def first_free_channel(codec, task: str) -> int:
    """The first channel id outside the task's prefix channels (3 for upsample, S² for
    colorize): the prefix channels are exactly the ids below it."""
    check_task_order(codec, task)
    channels = task_channels(codec, task)
    count = int(channels.sum())
    assert channels[:count].all(), "the prefix channels must be the first channel ids"
    return count


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


# ----------------------------------------------------------------------------- images


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """uint8 [H, W, ...] -> uint8 [H/factor, W/factor, ...]: mean of each factor×factor block,
    rounded (halves up). H and W must be multiples of factor."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    if h % factor or w % factor:
        raise ValueError(f"downsample: image of {h}x{w} pixels is not a multiple of the "
                         f"factor {factor}")
    blocks = image.reshape((h // factor, factor, w // factor, factor) + image.shape[2:])
    means = blocks.astype(np.float64).mean(axis=(1, 3))
    return np.floor(means + 0.5).astype(np.uint8)


def upscale_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """uint8 [h, w, ...] -> uint8 [h·factor, w·factor, ...]: each pixel a constant block."""
    return np.repeat(np.repeat(np.asarray(image), factor, axis=0), factor, axis=1)


def gray_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W], [H, W, 1] or [H, W, 3] -> uint8 [H, W, 3] gray with R = G = B.

    Colour input becomes its JFIF luma rounded to integers, in the 16-bit fixed point of
    Pillow's "L" conversion (so a file converted with Pillow gives the same gray); gray input
    (one channel, or three equal channels) is kept as it is.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 3:
        if not ((image[..., 0] == image[..., 1]) & (image[..., 1] == image[..., 2])).all():
            rgb = image.astype(np.int64)
            image = ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000)
                     >> 16).astype(np.uint8)
        else:
            image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"expected a gray [H, W] or RGB [H, W, 3] image, got shape "
                         f"{image.shape}")
    return np.repeat(image[..., None], 3, axis=2)


def luma(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] RGB -> float64 [H, W] JFIF luma Y (unshifted, 0-255)."""
    return np.asarray(image, np.float64) @ LUMA_WEIGHTS


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two same-shaped arrays (capped at PSNR_CAP_DB when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * np.log10(peak * peak / mse)))


# ----------------------------------------------------------------------------- prefixes


def downsample_prefix(codec, low_res_image: np.ndarray, name: str = "image") -> tuple:
    """The DC-band prefix of ×S super-resolution.

    The low-resolution input is upsampled ×S by nearest neighbour (constant S×S blocks),
    placed top-left on the R×R canvas (neutral grey elsewhere: no elements) and encoded; the
    prefix is its DC elements. Their decode is the input up to DC quantization.

    Args:
      codec: a `SparseCodec` with order "bands" and a resolution R.
      low_res_image: uint8 [h', w', 3] (or gray [h', w']) with h', w' even and at most G =
        R/S, so that the target content h'·S × w'·S is whole 2S macroblocks on the canvas;
        normally G × G.
      name: how errors name the input.
    Returns:
      (int32 [Lp, 3] prefix triples without EOS, (h'·S, w'·S) content size in pixels).
    """
    check_task_order(codec, "upsample")
    if codec.resolution is None:
        raise ValueError("super-resolution needs a codec with a resolution (the target size)")
    image = np.asarray(low_res_image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name}: expected an RGB image [h, w, 3], got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {image.dtype}")
    s, r = codec.block_size, codec.resolution
    g = r // s
    h, w = image.shape[:2]
    if not (2 <= h <= g and 2 <= w <= g and h % 2 == 0 and w % 2 == 0):
        raise ValueError(
            f"{name}: a low-resolution input of {h}x{w} pixels does not fit: ×{s} "
            f"super-resolution to the {r}x{r} canvas takes a {g}x{g} image (or any even "
            f"height and width from 2 to {g})")
    canvas = np.full((r, r, 3), 128, np.uint8)
    canvas[: h * s, : w * s] = upscale_nearest(image, s)
    triples = codec.encode(canvas, name=name)[:-1]  # without EOS
    return _leading_part(codec, triples, "upsample"), (h * s, w * s)


def luma_prefix(codec, gray_image: np.ndarray, name: str = "image") -> tuple:
    """The luma prefix of colorization: every Y element of the grayscale input.

    Args:
      codec: a `SparseCodec` with order "luma_first" and a resolution.
      gray_image: uint8 [H, W] or [H, W, 3] (colour input is converted to its luma first,
        `gray_rgb`); placed on the canvas as any image (long side resized to R).
      name: how errors name the input.
    Returns:
      (int32 [Lp, 3] prefix triples without EOS, (h, w) content size in pixels).
    """
    check_task_order(codec, "colorize")
    if codec.resolution is None:
        raise ValueError("colorization needs a codec with a resolution (a fixed block grid)")
    triples, content_hw = codec.encode_with_size(gray_rgb(gray_image), name=name)
    return _leading_part(codec, triples[:-1], "colorize"), content_hw


def _leading_part(codec, triples: np.ndarray, task: str) -> np.ndarray:
    """The elements of the task's channels, which the order puts first in the sequence."""
    keep = task_channels(codec, task)[triples[:, 0]]
    count = int(keep.sum())
    assert keep[:count].all(), f"{task} prefix channels do not lead the sequence"
    return triples[:count].astype(np.int32)


# ----------------------------------------------------------------------------- fidelity


def channel_part(codec, triples: np.ndarray, channels: np.ndarray,
                 length: int | None = None) -> np.ndarray:
    """int32 [n, 3]: the elements of one sequence whose channel is in `channels` (bool [C]).

    triples: int [L, 3]; only the first `length` are read, and nothing from EOS on (the
    sampler pads with zeros, which would read as channel 0).
    """
    triples = np.asarray(triples, np.int32).reshape(-1, 3)
    if length is not None:
        triples = triples[:length]
    eos = np.flatnonzero(triples[:, 0] == codec.eos)
    if eos.size:
        triples = triples[: eos[0]]
    return triples[channels[triples[:, 0]]]


def dc_band(codec, triples: np.ndarray, length: int | None = None) -> np.ndarray:
    """int32 [n, 3]: the DC-band elements of a sequence."""
    return channel_part(codec, triples, dc_channels(codec), length)


def luma_part(codec, triples: np.ndarray, length: int | None = None) -> np.ndarray:
    """int32 [n, 3]: the Y elements of a sequence."""
    return channel_part(codec, triples, luma_channels(codec), length)


def upsample_fidelity(codec, prefix: np.ndarray, triples: np.ndarray, length: int,
                      image: np.ndarray, low_res: np.ndarray) -> dict:
    """How well one super-resolved sample keeps its input.

    The DC band fixes the S×S block means of the luma (DC/S); chroma is 4:2:0, its DC terms
    fix means over 2S×2S only, so the sample's RGB at ×S is not the input's where colour
    changes between neighbouring input pixels, and the numbers here are on luma.

    Returns:
      dc_band_equal: the sample's DC band is the prefix, element for element.
      luma_block_psnr_db: PSNR of the sample's luma block means (the sample downsampled ×S)
        against the low-resolution input's luma.
      luma_block_error: the largest |block mean − input pixel| of those, in pixel levels;
      luma_block_bound: what the DC band guarantees unless pixels clip at 0 or 255:
        Q_dc/(2S) (DC quantization) + 0.5 (the sample's rounding to uint8).
    """
    s = codec.block_size
    h, w = np.asarray(low_res).shape[:2]
    image = np.asarray(image)[: h * s, : w * s]
    block_luma = luma(image).reshape(h, s, w, s).mean(axis=(1, 3))  # [h·S, w·S] -> [h, w]
    target = luma(low_res)
    q_dc = float(codec.rank_table[np.flatnonzero(luma_channels(codec) & dc_channels(codec))[0]])
    return {
        "dc_band_equal": bool(np.array_equal(dc_band(codec, triples, length), prefix)),
        "luma_block_psnr_db": round(psnr(block_luma, target), 2),
        "luma_block_error": round(float(np.abs(block_luma - target).max()), 3),
        "luma_block_bound": round(q_dc / (2 * s) + 0.5, 3),
    }


def colorize_fidelity(codec, prefix: np.ndarray, triples: np.ndarray, length: int,
                      image: np.ndarray, gray: np.ndarray) -> dict:
    """How well one colorized sample keeps its grayscale input.

    Args:
      gray: uint8 [h, w, 3] the gray input as placed on the canvas (`codec.content_pixels`).
    Returns:
      luma_equal: the sample's Y elements are the prefix, element for element.
      luma_psnr_db: PSNR of the sample's luma against the luma the prefix encodes (the gray
        input after JPEG quantization, decoded): only rounding and clipping of the colours
        separate them.
      input_luma_psnr_db: against the gray input itself (adds the JPEG quantization of the
        luma at the codec's quality, the same for every sample).
    """
    h, w = np.asarray(image).shape[:2]
    coded = codec.decode(prefix, h, w)
    return {
        "luma_equal": bool(np.array_equal(luma_part(codec, triples, length), prefix)),
        "luma_psnr_db": round(psnr(luma(image), luma(coded)), 2),
        "input_luma_psnr_db": round(psnr(luma(image), luma(gray)), 2),
    }


# ----------------------------------------------------------------------------- sampling


@dataclasses.dataclass
class ConditionalSamples:
    """Samples of one conditional input.

    Attributes:
      task: "upsample" or "colorize".
      result: the sampler's `SampleResult`.
      prefix: int32 [Lp, 3] the forced elements.
      content_hw: (h, w) of the outputs.
      shown_input: uint8 [h, w, 3] the input at the output size (nearest-upscaled low-res
        image, or the gray image on the canvas), for figures.
      fidelity: one dict per sample (`upsample_fidelity` / `colorize_fidelity`).
    """

    task: str
    result: SampleResult
    prefix: np.ndarray
    content_hw: tuple
    shown_input: np.ndarray
    fidelity: list

    def statistics(self) -> list:
        """Per-sample dicts: the sampler's statistics plus the fidelity numbers."""
        return [{**stats, **fid} for stats, fid in
                zip(self.result.statistics(), self.fidelity, strict=True)]


def upsample(sampler: Sampler, low_res_image: np.ndarray, num: int, seed: int,
             name: str = "image", **sample_kwargs) -> ConditionalSamples:
    """×S super-resolution: `num` samples whose DC band is the low-resolution input.

    Args:
      sampler: a `Sampler` of a "bands" model (reused across inputs: compiled once).
      low_res_image: uint8 [h', w', 3], see `downsample_prefix`.
      sample_kwargs: settings, batch_size, max_chunks, label (as `Sampler.sample`).
    """
    check_task_order(sampler.codec, "upsample")
    prefix, content_hw = downsample_prefix(sampler.codec, low_res_image, name=name)
    low_res = np.asarray(low_res_image)
    if low_res.ndim == 2:
        low_res = np.repeat(low_res[..., None], 3, axis=2)
    result = sampler.sample(num, seed, prefix=prefix, content_hw=content_hw,
                            min_channel=first_free_channel(sampler.codec, "upsample"),
                            **sample_kwargs)
    fidelity = [upsample_fidelity(sampler.codec, prefix, result.triples[n],
                                  int(result.length[n]), result.images[n], low_res)
                for n in range(num)]
    return ConditionalSamples("upsample", result, prefix, content_hw,
                              upscale_nearest(low_res, sampler.codec.block_size), fidelity)


def colorize(sampler: Sampler, gray_image: np.ndarray, num: int, seed: int,
             name: str = "image", **sample_kwargs) -> ConditionalSamples:
    """Colorization: `num` samples whose luma is the grayscale input's.

    Args:
      sampler: a `Sampler` of a "luma_first" model (reused across inputs: compiled once).
      gray_image: uint8 [H, W] or [H, W, 3], see `luma_prefix`.
      sample_kwargs: settings, batch_size, max_chunks, label (as `Sampler.sample`).
    """
    check_task_order(sampler.codec, "colorize")
    prefix, content_hw = luma_prefix(sampler.codec, gray_image, name=name)
    gray = sampler.codec.content_pixels(gray_rgb(gray_image), name=name)
    result = sampler.sample(num, seed, prefix=prefix, content_hw=content_hw,
                            min_channel=first_free_channel(sampler.codec, "colorize"),
                            **sample_kwargs)
    fidelity = [colorize_fidelity(sampler.codec, prefix, result.triples[n],
                                  int(result.length[n]), result.images[n], gray)
                for n in range(num)]
    return ConditionalSamples("colorize", result, prefix, content_hw, gray, fidelity)
