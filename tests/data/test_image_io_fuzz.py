"""Corrupt image files: every cut and byte flip of a real file either decodes to `uint8 [H, W, 3]`
or raises `ImageLoadError` naming the file; no other exception escapes `load_image`
(docs/design.md §1.1).

The files are written by Pillow here: 48×40 images with gradients and a solid rectangle, in
every format a photo folder may hold, plus the variants whose extra parts have their own
parsers (EXIF, palette transparency, LZW strips). Cuts fall inside the header, around the
start of the first scan (the first byte of pixel data, as Pillow's own parser or the format's
marker places it), through the pixel data and in the last bytes; flips are seeded.
"""

import io
import re

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.data.image_io import ImageLoadError, load_image

# Pillow's own notices about what it skipped ("Corrupt EXIF data", "Tag data larger than file").
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

HEIGHT, WIDTH = 40, 48


def _structured_image() -> Image.Image:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1).astype(np.uint8)
    pixels[10:25, 12:30] = (200, 30, 60)
    pixels[28:36, 4:44] = np.random.default_rng(0).integers(0, 256, size=(8, 40, 3))  # texture
    return Image.fromarray(pixels)


def _orientation_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "dctformer"  # make: a string the parser must follow an offset to
    return exif


# name: (Pillow format, file extension, mode, save options)
VARIANTS = {
    "jpeg": ("JPEG", "jpg", "RGB", {"quality": 90}),
    "jpeg-progressive-exif": ("JPEG", "jpeg", "RGB", {"progressive": True, "exif": "EXIF"}),
    "png": ("PNG", "png", "RGB", {}),
    "png-palette-transparent": ("PNG", "png", "P", {"transparency": 0}),
    "gif": ("GIF", "gif", "P", {}),
    "webp": ("WEBP", "webp", "RGB", {"quality": 80}),
    "webp-lossless-alpha-exif": ("WEBP", "webp", "RGBA", {"lossless": True, "exif": "EXIF"}),
    "tiff": ("TIFF", "tif", "RGB", {}),
    "tiff-lzw": ("TIFF", "tiff", "RGB", {"compression": "tiff_lzw"}),
    "bmp": ("BMP", "bmp", "RGB", {}),
}
MIN_CASES_PER_VARIANT = 70


def _encode(variant: str) -> bytes:
    image_format, _, mode, options = VARIANTS[variant]
    options = {k: _orientation_exif() if v == "EXIF" else v for k, v in options.items()}
    buffer = io.BytesIO()
    _structured_image().convert(mode).save(buffer, image_format, **options)
    return buffer.getvalue()


def _first_scan_offset(data: bytes, image_format: str) -> int:
    """Where the pixel data starts: JPEG's SOS marker, WebP's VP8/VP8L chunk, TIFF's first strip
    (tag StripOffsets), else the offset of Pillow's first tile."""
    if image_format == "JPEG":
        return data.index(b"\xff\xda")
    if image_format == "WEBP":
        return re.search(rb"VP8[ L]", data).start()
    with Image.open(io.BytesIO(data)) as image:
        return image.tag_v2[273][0] if image_format == "TIFF" else image.tile[0].offset


def corrupt_cases(variant: str, seed: int = 0) -> list[tuple[str, bytes]]:
    """(label, bytes) of cut and byte-flipped copies of `variant`'s file."""
    data = _encode(variant)
    scan = _first_scan_offset(data, VARIANTS[variant][0])
    size = len(data)
    assert 0 < scan < size - 16, (variant, scan, size)  # LZW TIFF: strips first, IFD last
    cuts = set(np.linspace(1, scan - 1, 14).astype(int))  # inside the header
    cuts |= {scan - 1, scan, scan + 1, scan + 2, scan + 8}  # at the first scan
    cuts |= set(np.linspace(scan + 16, size - 16, 8).astype(int))  # through the pixel data
    cuts |= {size - 8, size - 3, size - 2, size - 1}  # the last bytes
    cases = [(f"cut{cut}", data[:cut]) for cut in sorted(cuts)]

    rng = np.random.default_rng(seed)
    for i in range(48):
        corrupt = bytearray(data)
        within = scan + 8 if i % 2 else size  # half of them hit the header
        for position in rng.integers(0, within, size=rng.integers(1, 5)):
            corrupt[position] ^= int(rng.integers(1, 256))  # a nonzero XOR: always a change
        cases.append((f"flip{i}", bytes(corrupt)))
    return cases


def decode_or_escape(path: str) -> str | None:
    """None if `load_image(path)` keeps its contract on this file, else what went wrong."""
    try:
        pixels = load_image(path)
    except ImageLoadError as error:
        if not str(error).startswith(f"{path}: "):
            return f"ImageLoadError not naming the file first: {error}"
        return None
    except Exception as error:  # what this test hunts: anything else escaping
        return f"{type(error).__name__}: {error}"
    ok = pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    return None if ok and min(pixels.shape[:2]) > 0 else f"decoded to {pixels.dtype} {pixels.shape}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_intact_file_decodes(tmp_path, variant):
    path = tmp_path / f"intact.{VARIANTS[variant][1]}"
    path.write_bytes(_encode(variant))
    rotated = "exif" in variant  # orientation 6: displayed 90° clockwise
    assert load_image(path).shape == ((WIDTH, HEIGHT, 3) if rotated else (HEIGHT, WIDTH, 3))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cut_or_flipped_file_decodes_or_raises_image_load_error(tmp_path, variant):
    cases = corrupt_cases(variant)
    assert len(cases) >= MIN_CASES_PER_VARIANT
    escapes = []
    for label, data in cases:
        path = tmp_path / f"{variant}-{label}.{VARIANTS[variant][1]}"
        path.write_bytes(data)
        problem = decode_or_escape(str(path))
        if problem is not None:
            escapes.append(f"{label}: {problem}")
    assert not escapes, f"{len(escapes)} of {len(cases)} cases escaped:\n" + "\n".join(escapes)
