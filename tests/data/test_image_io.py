"""Image loading: every Pillow mode to 8-bit RGB, and a clear error for every bad file.

References are independent of the code under test: Pillow's own conversions, hand-computed
composites, palettes indexed by hand, and 16-bit PNGs written by TensorFlow's PNG encoder
(Pillow cannot write 16-bit colour).
"""

import io
import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dctformer_tf.data.image_io import (
    ImageLoadError,
    composite_on_grey,
    decode_image_bytes,
    load_image,
    to_rgb_uint8,
)


def _png_bytes(image: Image.Image, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save_args)
    return buffer.getvalue()


def _random_rgb(rng, height=6, width=5):
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------- conversions


def test_rgb_is_returned_as_a_writable_copy(rng):
    pixels = _random_rgb(rng)
    out = to_rgb_uint8(Image.fromarray(pixels), "x.png")
    assert out.dtype == np.uint8 and out.shape == (6, 5, 3)
    np.testing.assert_array_equal(out, pixels)
    out[0, 0] = 0  # must not raise: callers may modify the array


def test_bilevel_and_greyscale_are_tiled(rng):
    grey = rng.integers(0, 256, size=(4, 7), dtype=np.uint8)
    np.testing.assert_array_equal(
        to_rgb_uint8(Image.fromarray(grey), "g.png"), np.repeat(grey[:, :, None], 3, axis=2)
    )
    bits = grey > 127
    np.testing.assert_array_equal(
        to_rgb_uint8(Image.fromarray(bits), "b.png"),
        np.repeat(np.where(bits, 255, 0)[:, :, None], 3, axis=2),
    )


def test_palette_without_transparency_is_looked_up(rng):
    palette = rng.integers(0, 256, size=(256, 3), dtype=np.uint8)
    indices = rng.integers(0, 256, size=(5, 6), dtype=np.uint8)
    image = Image.fromarray(indices).convert("P")
    image.putpalette(palette.tobytes())
    np.testing.assert_array_equal(to_rgb_uint8(image, "p.png"), palette[indices])


def test_palette_with_transparent_index_becomes_grey(rng):
    palette = rng.integers(0, 256, size=(4, 3), dtype=np.uint8)
    indices = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], dtype=np.uint8)
    image = Image.fromarray(indices).convert("P")
    image.putpalette(palette.tobytes())
    loaded = Image.open(io.BytesIO(_png_bytes(image, transparency=2)))
    assert loaded.mode == "P" and loaded.info["transparency"] == 2
    expected = palette[indices]
    expected[indices == 2] = 128
    np.testing.assert_array_equal(to_rgb_uint8(loaded, "p.png"), expected)


def test_palette_with_alpha_per_entry_is_composited():
    palette = np.array([[255, 0, 10], [0, 0, 0]], dtype=np.uint8)
    image = Image.fromarray(np.array([[0, 1]], dtype=np.uint8)).convert("P")
    image.putpalette(palette.tobytes())
    loaded = Image.open(io.BytesIO(_png_bytes(image, transparency=bytes([51, 255]))))
    # entry 0, alpha 51/255 = 0.2: 0.2·(255, 0, 10) + 0.8·128 = (153.4, 102.4, 104.4)
    np.testing.assert_array_equal(to_rgb_uint8(loaded, "p.png"), [[[153, 102, 104], [0, 0, 0]]])


def test_rgba_composite_on_grey_by_hand():
    rgba = np.array(
        [[[255, 0, 10, 51], [10, 20, 30, 0], [10, 20, 30, 255], [200, 100, 0, 128]]],
        dtype=np.uint8,
    )
    # a = 0.2: 0.2·rgb + 0.8·128; a = 0: grey; a = 1: as is;
    # a = 128/255: (200·128 + 128·127)/255 = 164.15..., (100·128 + 128·127)/255 = 113.94...,
    # (0 + 128·127)/255 = 63.75...
    expected = [[[153, 102, 104], [128, 128, 128], [10, 20, 30], [164, 114, 64]]]
    np.testing.assert_array_equal(to_rgb_uint8(Image.fromarray(rgba), "a.png"), expected)


def test_rgba_composite_matches_the_float_formula(rng):
    rgba = rng.integers(0, 256, size=(16, 16, 4), dtype=np.uint8)
    a = rgba[..., 3:] / 255.0
    expected = np.floor(a * rgba[..., :3] + (1 - a) * 128 + 0.5)
    np.testing.assert_array_equal(composite_on_grey(rgba), expected)


def test_greyscale_with_alpha():
    la = Image.fromarray(np.array([[[200, 100], [7, 255]]], dtype=np.uint8))
    assert la.mode == "LA"
    # 100/255·200 + 155/255·128 = 156.23...
    np.testing.assert_array_equal(to_rgb_uint8(la, "la.png"), [[[156] * 3, [7] * 3]])


def test_rgb_with_transparent_colour_key():
    pixels = np.array([[[1, 2, 3], [9, 9, 9]]], dtype=np.uint8)
    loaded = Image.open(io.BytesIO(_png_bytes(Image.fromarray(pixels), transparency=(1, 2, 3))))
    np.testing.assert_array_equal(to_rgb_uint8(loaded, "k.png"), [[[128, 128, 128], [9, 9, 9]]])


def test_cmyk_matches_the_hand_conversion():
    # Uncomplemented CMYK: R = (255 − C)(255 − K) / 255, rounded; likewise G (M), B (Y).
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 0, 255],
                      [40, 100, 20, 30]]], np.uint8)
    image = Image.frombytes("CMYK", (5, 1), cmyk.tobytes())
    ink = cmyk.astype(np.float64)
    expected = np.floor((255 - ink[..., :3]) * (255 - ink[..., 3:]) / 255 + 0.5)
    np.testing.assert_array_equal(to_rgb_uint8(image, "c.jpg"), expected)


@pytest.mark.parametrize("mode, channels", [("CMYK", 4), ("YCbCr", 3)])
def test_colour_spaces_match_pillow(rng, mode, channels):
    data = rng.integers(0, 256, size=(5, 7, channels), dtype=np.uint8).tobytes()
    image = Image.frombytes(mode, (7, 5), data)
    np.testing.assert_array_equal(to_rgb_uint8(image, "c.jpg"), np.asarray(image.convert("RGB")))


def test_sixteen_bit_greyscale_png_is_scaled(tmp_path):
    values = np.array([[0, 1, 128, 129, 257, 1000], [32767, 32896, 40000, 65279, 65534, 65535]])
    path = tmp_path / "grey16.png"
    path.write_bytes(tf.io.encode_png(values.astype(np.uint16)[:, :, None]).numpy())
    with Image.open(path) as image:
        assert image.mode == "I;16"
    expected = np.round(values / 257).astype(np.uint8)
    np.testing.assert_array_equal(load_image(path), np.repeat(expected[:, :, None], 3, axis=2))


@pytest.mark.parametrize(
    "mode, dtype",
    [("I;16", "<u2"), ("I;16L", "<u2"), ("I;16B", ">u2"), ("I;16N", "=u2"), ("I", "=i4")],
)
def test_sixteen_bit_modes_are_scaled(mode, dtype):
    values = np.array([0, 128, 129, 300, 65535])
    image = Image.frombytes(mode, (5, 1), values.astype(dtype).tobytes())
    expected = np.repeat([[[0], [0], [1], [1], [255]]], 3, axis=2)
    np.testing.assert_array_equal(to_rgb_uint8(image, "x.tif"), expected)


def test_sixteen_bit_rgb_png_keeps_pillow_high_byte(tmp_path, rng):
    # Pillow decodes 16-bit colour PNGs to 8 bits itself (v >> 8): within one level of
    # round(v / 257), and exact for 8-bit data stored as 16 bits.
    values = rng.integers(0, 65536, size=(4, 6, 3)).astype(np.uint16)
    values[0] = (257 * rng.integers(0, 256, size=(6, 3))).astype(np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(tf.io.encode_png(values).numpy())
    out = load_image(path)
    np.testing.assert_array_equal(out, values >> 8)
    assert np.abs(out.astype(int) - np.round(values / 257)).max() <= 1
    np.testing.assert_array_equal(out[0], values[0] // 257)


def test_sixteen_bit_rgba_png_is_composited(tmp_path):
    values = np.array([[[65535, 0, 2570, 13107]]], dtype=np.uint16)  # alpha 13107 >> 8 = 51
    path = tmp_path / "rgba16.png"
    path.write_bytes(tf.io.encode_png(values).numpy())
    np.testing.assert_array_equal(load_image(path), [[[153, 102, 104]]])


@pytest.mark.parametrize("mode", sorted(Image.MODES))
def test_every_pillow_mode_is_converted_or_refused(mode):
    image = Image.new(mode, (3, 2))
    if mode == "F":
        with pytest.raises(ImageLoadError, match=r"f\.tif: mode 'F' \(32-bit float"):
            to_rgb_uint8(image, "f.tif")
        return
    out = to_rgb_uint8(image, "x")
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)


def test_unknown_mode_names_the_file_and_mode():
    class FutureModeImage:  # a mode this loader has never heard of
        mode, size, info = "RGB;99", (2, 2), {}

    with pytest.raises(ImageLoadError, match=r"^odd\.png: unsupported image mode 'RGB;99'$"):
        to_rgb_uint8(FutureModeImage(), "odd.png")


def test_thirty_two_bit_values_outside_sixteen_bits_are_refused():
    image = Image.fromarray(np.array([[-1, 70000]], dtype=np.int32))
    with pytest.raises(ImageLoadError, match=r"i\.tif: mode 'I' values span \[-1, 70000\]"):
        to_rgb_uint8(image, "i.tif")


def test_exif_orientation_is_applied(tmp_path, rng):
    pixels = _random_rgb(rng, height=2, width=4)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    path = tmp_path / "rotated.png"
    Image.fromarray(pixels).save(path, exif=exif)
    np.testing.assert_array_equal(load_image(path), np.rot90(pixels, k=-1))


# ------------------------------------------------------------------------------------ errors


def test_error_class_is_a_value_error():
    assert issubclass(ImageLoadError, ValueError)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(ImageLoadError, match=f"^{path}: no such file$"):
        load_image(path)


def test_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="is a directory, not an image file"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match=r"empty\.jpg: file is empty \(0 bytes\)"):
        load_image(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a PNG\n" * 10)
    with pytest.raises(ImageLoadError, match=r"notes\.png: not an image file Pillow can identify"):
        load_image(path)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, rng, image_format):
    buffer = io.BytesIO()
    Image.fromarray(_random_rgb(rng, 32, 32)).save(buffer, image_format)
    path = tmp_path / f"cut.{image_format.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(
        ImageLoadError, match=rf"cut\.{image_format.lower()}: cannot decode .*truncated"
    ):
        load_image(path)


def test_decompression_bomb_over_twice_the_limit(monkeypatch):
    data = _png_bytes(Image.new("RGB", (20, 20)))  # 400 pixels > 2 × 100
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(
        ImageLoadError,
        match=r"^bomb\.png: Image size \(400 pixels\) exceeds limit of 200 pixels.*"
        r"2 × PIL\.Image\.MAX_IMAGE_PIXELS = 2 × 100",
    ):
        decode_image_bytes(data, "bomb.png")


def test_decompression_bomb_between_one_and_two_times_the_limit(monkeypatch):
    data = _png_bytes(Image.new("RGB", (12, 12)))  # 144 pixels: Pillow only warns
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.warns(Image.DecompressionBombWarning):
        with pytest.raises(
            ImageLoadError,
            match=r"^big\.png: image is 12x12 = 144 pixels, over the limit "
            r"PIL\.Image\.MAX_IMAGE_PIXELS = 100",
        ):
            decode_image_bytes(data, "big.png")


def test_zero_sized_image():
    with pytest.raises(ImageLoadError, match=r"^z\.png: image is zero-sized \(0x3 pixels\)$"):
        to_rgb_uint8(Image.new("RGB", (0, 3)), "z.png")


def test_zero_sized_png_file_is_refused():
    # Pillow will not write one, so build a valid PNG whose header says width 0.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
    with pytest.raises(ImageLoadError, match="zero-sized"):
        decode_image_bytes(data + chunk(b"IEND", b""), "zero.png")


def test_bytes_default_name():
    with pytest.raises(ImageLoadError, match="^<bytes>: not an image"):
        decode_image_bytes(b"GIF? no")


def test_jpeg_cut_inside_its_header_names_the_file(tmp_path):
    # Pillow's JPEG parser raises a plain OSError("Truncated File Read") from `Image.open`.
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, "JPEG")
    path = tmp_path / "header.jpg"
    path.write_bytes(buffer.getvalue()[:100])  # the quantization tables end past byte 100
    with pytest.raises(
        ImageLoadError,
        match=rf"^{path}: cannot read the header \(OSError: Truncated File Read\); "
        "the file is truncated or corrupt$",
    ):
        load_image(path)


def test_png_with_a_cut_ihdr_chunk_names_the_file():
    # Pillow's PNG parser raises a plain ValueError from `Image.open` for this one.
    data = bytearray(_png_bytes(Image.new("RGB", (4, 4))))
    data[8:12] = struct.pack(">I", 3)  # IHDR length 3 instead of 13; no CRC check before it
    with pytest.raises(ImageLoadError, match=r"^ihdr\.png: cannot read the header \(ValueError"):
        decode_image_bytes(bytes(data), "ihdr.png")


def test_corrupt_exif_block_names_the_file():
    # The EXIF block is parsed by `exif_transpose`, after the pixels: still inside the guard.
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (8, 4)).save(buffer, "WEBP", exif=exif)
    data = buffer.getvalue().replace(b"MM\x00*", b"Mk\x00*")  # not a TIFF header any more
    with pytest.raises(
        ImageLoadError,
        match=r"^e\.webp: cannot apply the EXIF orientation \(SyntaxError: not a TIFF file",
    ):
        decode_image_bytes(data, "e.webp")


@pytest.mark.parametrize(
    "error",
    [OSError("broken data stream"), SyntaxError("bad marker"), ValueError("bad tile"),
     struct.error("unpack requires 4 bytes"), EOFError(), IndexError("out of range"),
     TypeError("bad argument"), KeyError(42), ZeroDivisionError("division by zero"),
     RuntimeError("anything a plugin raises")],
    ids=lambda e: type(e).__name__,
)
def test_any_decoder_error_becomes_one_line_image_load_error(monkeypatch, error):
    data = _png_bytes(Image.new("RGB", (4, 4)))

    def fail(self):
        raise error

    monkeypatch.setattr(Image.Image, "load", fail)
    with pytest.raises(ImageLoadError, match=r"^x\.png: cannot decode the pixels \(") as caught:
        decode_image_bytes(data, "x.png")
    assert caught.value.__cause__ is error
    assert type(error).__name__ in str(caught.value)


def test_multi_line_decoder_messages_become_one_line(monkeypatch):
    data = _png_bytes(Image.new("RGB", (4, 4)))

    def fail(self):
        raise OSError("first line\nsecond line")

    monkeypatch.setattr(Image.Image, "load", fail)
    with pytest.raises(ImageLoadError, match=r"\(OSError: first line second line\)"):
        decode_image_bytes(data, "x.png")


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, MemoryError])
def test_interrupts_and_memory_errors_are_not_swallowed(monkeypatch, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(Image, "open", fail)
    with pytest.raises(error):
        decode_image_bytes(b"\x89PNG\r\n\x1a\n", "x.png")
