"""Pillow's JPEG as the reference codec: sizes to compare the sparse sequences against."""

import io

import numpy as np
from PIL import Image


def jpeg_bytes(image: np.ndarray, quality: int, optimize: bool = True) -> bytes:
    """uint8 [H, W, 3] -> JPEG file bytes (baseline, 4:2:0, Huffman-optimized by default)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=2, optimize=optimize)
    return buffer.getvalue()


def entropy_coded_size(jpeg: bytes) -> int:
    """Bytes of entropy-coded scan data in a JPEG file: headers and tables excluded.

    Walks the marker segments; for each SOS it counts the bytes after the SOS header up to
    the next marker that is not a stuffed 0xFF00 or a restart marker (RST0-7).
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file: missing SOI marker")
    total, i = 0, 2
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF:
            raise ValueError(f"corrupt JPEG: expected a marker at byte {i}")
        marker = jpeg[i + 1]
        if marker == 0xD9:  # EOI
            break
        length = int.from_bytes(jpeg[i + 2 : i + 4], "big")
        i += 2 + length
        if marker == 0xDA:  # SOS: scan data follows the header
            start = i
            while i + 1 < len(jpeg) and not (
                jpeg[i] == 0xFF and jpeg[i + 1] != 0x00 and not 0xD0 <= jpeg[i + 1] <= 0xD7
            ):
                i += 1
            total += i - start
    return total


def jpeg_bits_per_pixel(image: np.ndarray, quality: int, entropy_coded_only: bool = False) -> float:
    """Bits per pixel of Pillow's optimized JPEG of `image`, whole file or scan data only."""
    data = jpeg_bytes(image, quality)
    size = entropy_coded_size(data) if entropy_coded_only else len(data)
    return 8.0 * size / (image.shape[0] * image.shape[1])
