"""Image files in, 8-bit RGB out: the one place where Pillow's many modes become `uint8 [H, W, 3]`.

docs/design.md §1.1: grayscale, palette and CMYK input is converted to RGB, 16-bit input is scaled to
8 bits, alpha is composited on neutral grey; anything else is a clear error. Every error is an
`ImageLoadError` whose message starts with the file name, so a data pipeline can skip and
report a bad file instead of dying on it.

Mode by mode (`to_rgb_uint8`):
- "RGB": as is.
- "1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX": Pillow's own `convert("RGB")`.
- "LA", "La", "PA", "RGBA", "RGBa", and "1"/"L"/"P"/"RGB" with a transparency key
  (`info["transparency"]`): Pillow's `convert("RGBA")`, then composited on grey 128:
  `out = round(a·rgb + (1 − a)·128)` with `a = alpha / 255`, in exact integer arithmetic.
- "I;16", "I;16B", "I;16L", "I;16N" (16-bit greyscale): `round(v / 257)`, the map of
  [0, 65535] onto [0, 255] that keeps both ends. Pillow's own `convert("L")` clips at 255
  instead of scaling, which is why this is done here.
- "I" (32-bit signed integers; some formats open 16-bit greyscale this way): treated as
  16-bit data, scaled as above when every value lies in [0, 65535]; otherwise an error.
- "F" (32-bit float) and any other mode: an error, since there is no agreed 8-bit scale.

16-bit colour files (RGB/RGBA PNG and TIFF with 16 bits per sample) never reach us as 16-bit:
Pillow 13 decodes them straight to "RGB"/"RGBA" keeping the high byte of each sample,
`v >> 8 = floor(v / 256)`. That differs from `round(v / 257)` by at most one level and is
exact for 8-bit data stored as 16 bits (`v = 257·k`); Pillow offers no way to get the low bytes.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Modes Pillow converts to RGB correctly by itself.
_PILLOW_RGB_MODES = ("1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX")
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
# Modes whose `info["transparency"]` (a PNG tRNS colour key or a palette alpha) is an alpha channel.
_KEYED_MODES = ("1", "L", "P", "RGB")
_SIXTEEN_BIT_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
NEUTRAL_GREY = 128


class ImageLoadError(ValueError):
    """An image file or array that cannot become 8-bit RGB; the message starts with its name."""


def to_rgb_uint8(image: Image.Image, name: str) -> np.ndarray:
    """Converts a Pillow image of any supported mode to RGB (module docstring: mode by mode).

    Args:
      image: a loaded Pillow image.
      name: the file name (or other label) used in error messages.

    Returns:
      uint8 [H, W, 3], a fresh writable array.

    Raises:
      ImageLoadError: zero-sized image, float or unknown mode, or "I" values outside 16 bits.
    """
    width, height = image.size
    if width == 0 or height == 0:
        raise ImageLoadError(f"{name}: image is zero-sized ({width}x{height} pixels)")
    mode = image.mode
    keyed = mode in _KEYED_MODES and "transparency" in image.info
    if mode == "RGB" and not keyed:
        return np.array(image, dtype=np.uint8)
    if mode in _ALPHA_MODES or keyed:
        if mode == "La":  # premultiplied L + alpha: Pillow converts it to "LA" only
            image = image.convert("LA")
        return composite_on_grey(np.asarray(image.convert("RGBA")))
    if mode in _PILLOW_RGB_MODES:
        return np.array(image.convert("RGB"), dtype=np.uint8)
    if mode in _SIXTEEN_BIT_GREY_MODES:
        grey = np.asarray(image).astype(np.int64)
        low, high = int(grey.min()), int(grey.max())
        if low < 0 or high > 65535:
            raise ImageLoadError(
                f"{name}: mode {mode!r} values span [{low}, {high}], outside the 16-bit range "
                "[0, 65535] this loader scales to 8 bits"
            )
        grey8 = ((2 * grey + 257) // 514).astype(np.uint8)  # round(v / 257); never a tie
        return np.repeat(grey8[:, :, None], 3, axis=2)
    if mode == "F":
        raise ImageLoadError(
            f"{name}: mode 'F' (32-bit float pixels) has no defined 8-bit scale; "
            "convert the file to 8- or 16-bit integers first"
        )
    raise ImageLoadError(f"{name}: unsupported image mode {mode!r}")


def composite_on_grey(rgba: np.ndarray) -> np.ndarray:
    """Composites RGBA on neutral grey: `round(a·rgb + (1 − a)·128)`, `a = alpha / 255`.

    Args:
      rgba: uint8 [H, W, 4].

    Returns:
      uint8 [H, W, 3]. Integer arithmetic rounds halves up, so the result is exact.
    """
    rgba = rgba.astype(np.int32)
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    return ((rgb * alpha + NEUTRAL_GREY * (255 - alpha) + 127) // 255).astype(np.uint8)


def load_image(path: str | os.PathLike | bytes) -> np.ndarray:
    """Reads an image file as 8-bit RGB.

    The first frame of animated files is used; EXIF orientation is applied, so photos come out
    the way viewers show them. The whole file is decoded here (not lazily), so truncation is
    found now, not later.

    Args:
      path: the file (bytes are accepted because `tf.numpy_function` passes strings as bytes).

    Returns:
      uint8 [H, W, 3].

    Raises:
      ImageLoadError: missing or unreadable file, or any problem of `decode_image_bytes`.
    """
    name = os.fsdecode(path)
    if not os.path.exists(name):
        raise ImageLoadError(f"{name}: no such file")
    if os.path.isdir(name):
        raise ImageLoadError(f"{name}: is a directory, not an image file")
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ImageLoadError(f"{name}: cannot read the file ({e.strerror or e})") from e
    return decode_image_bytes(data, name)


def decode_image_bytes(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decodes an encoded image (PNG, JPEG, GIF, BMP, TIFF, WebP, ...) to 8-bit RGB.

    Nothing but an `ImageLoadError` leaves this function for bad data (docs/design.md §1.1):
    header, pixels, EXIF orientation and mode conversion are all read inside one guarded
    region, and the pixels are decoded here in full (`Image.load`), since Pillow decodes
    lazily and would otherwise fail later, outside the guard.

    Args:
      data: the encoded file contents.
      name: the file name used in error messages.

    Returns:
      uint8 [H, W, 3].

    Raises:
      ImageLoadError: empty data; not an image; over Pillow's `Image.MAX_IMAGE_PIXELS`
        (decompression-bomb guard); truncated or corrupt data; any problem of `to_rgb_uint8`.
    """
    if not data:
        raise ImageLoadError(f"{name}: file is empty (0 bytes)")
    step = "read the header"
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_pixel_limit(image, name)
            step = "decode the pixels"
            image.load()
            step = "apply the EXIF orientation"
            ImageOps.exif_transpose(image, in_place=True)
            step = f"convert mode {image.mode!r} to RGB"
            return to_rgb_uint8(image, name)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(
            f"{name}: not an image file Pillow can identify (unknown format, corrupt header "
            "or zero-sized image)"
        ) from None
    except Image.DecompressionBombError as e:  # over twice the limit: Pillow refuses by itself
        raise ImageLoadError(
            f"{name}: {e} (the limit is 2 × PIL.Image.MAX_IMAGE_PIXELS = "
            f"2 × {Image.MAX_IMAGE_PIXELS}; raise it only for files you trust)"
        ) from None
    except MemoryError:
        # The process is out of memory, not this file at fault: the pixel limit above already
        # bounds what one file may allocate. Skipping files would hide it.
        raise
    except Exception as e:
        # Pillow raises an open set of types on corrupt data. Cut and flipped files
        # (tests/data/test_image_io_fuzz.py) give OSError from `Image.open` and `load`
        # ("Truncated File Read", "could not create decoder object", "image file is
        # truncated"), ValueError from `Image.open` (a cut PNG IHDR), SyntaxError and
        # struct.error from the EXIF parser; its plugins also raise EOFError, IndexError,
        # KeyError, TypeError, ... (`Image.open` itself swallows four types while it tries
        # formats). All mean "this file cannot be decoded" to a caller; KeyboardInterrupt and
        # SystemExit are not `Exception`s and pass. The cause stays chained for
        # DCTFORMER_TRACEBACK=1.
        detail = " ".join(f"{type(e).__name__}: {e}".split())  # one line, whatever Pillow says
        raise ImageLoadError(
            f"{name}: cannot {step} ({detail}); the file is truncated or corrupt"
        ) from e


def _check_pixel_limit(image: Image.Image, name: str) -> None:
    """Refuses images over Pillow's pixel limit, where Pillow itself only warns (up to 2×).

    Pillow's `DecompressionBombWarning` is still emitted before this error: silencing it would
    take `warnings.catch_warnings`, which is not thread-safe, and tf.data decodes in threads.
    """
    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit is not None and width * height > limit:
        raise ImageLoadError(
            f"{name}: image is {width}x{height} = {width * height} pixels, over the limit "
            f"PIL.Image.MAX_IMAGE_PIXELS = {limit} (a decompression-bomb guard; raise it only "
            "for files you trust)"
        )
