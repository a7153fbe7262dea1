"""`dctformer encode | decode | show` end to end, in-process."""

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.cli.main import main
from dctformer_tf.dct import SparseCodec
from tests.dct.images import natural


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(natural("chelsea", 96)).save(path)
    return path


def test_encode_decode_round_trip(photo, tmp_path, capsys):
    npz, png = tmp_path / "x.npz", tmp_path / "y.png"
    assert main(["encode", str(photo), "--quality", "60", "--block-size", "16", "--out", str(npz)]) == 0
    assert "triples (EOS included)" in capsys.readouterr().out
    assert main(["decode", str(npz), "--out", str(png)]) == 0
    expected_codec = SparseCodec(block_size=16, quality=60, clip=3200)
    triples, (h, w) = expected_codec.encode_with_size(natural("chelsea", 96))
    np.testing.assert_array_equal(np.load(npz)["triples"], triples)
    np.testing.assert_array_equal(np.asarray(Image.open(png)), expected_codec.decode(triples, h, w))


def test_show_writes_strip_and_reports_jpeg_bpp(photo, tmp_path, capsys):
    out = tmp_path / "fig" / "strip.png"
    assert main(["show", str(photo), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sequence length" in printed and "bits/pixel" in printed
    strip = np.asarray(Image.open(out))
    assert strip.shape == (96, 7 * 96 + 6 * 2, 3)


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert main(["encode", str(text), "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "error" in err and "Traceback" not in err
    assert main(["encode", str(text), "--quality", "0", "--out", str(tmp_path / "x.npz")]) == 2
    assert "quality must be an integer in [1, 100], got 0" in capsys.readouterr().err
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(small)
    assert main(["encode", str(small), "--out", str(tmp_path / "x.npz")]) == 2
    assert "small.png" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def _good_arrays(photo_path) -> dict:
    codec = SparseCodec(quality=75)
    triples, (h, w) = codec.encode_with_size(np.asarray(Image.open(photo_path)))
    import json

    return {"triples": triples, "content_hw": np.array([h, w], np.int32),
            "codec": json.dumps(codec.config())}


def _decode_error(path, tmp_path, capsys) -> str:
    assert main(["decode", str(path), "--out", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(path) in err
    assert "allow_pickle" not in err  # never advises loading pickles
    assert not (tmp_path / "out.png").exists()
    return err


def test_decode_names_a_file_that_is_not_a_sequence_file(photo, tmp_path, capsys):
    text = tmp_path / "bad.npz"
    text.write_text("hello, not a zip")
    assert "not a zip archive" in _decode_error(text, tmp_path, capsys)

    import zipfile

    other_zip = tmp_path / "other.npz"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "a zip, but no arrays")
    assert "no array triples, content_hw, codec" in _decode_error(other_zip, tmp_path, capsys)

    arrays = _good_arrays(photo)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{**arrays, "triples": np.array([{"x": 1}], dtype=object)})
    assert "object (pickled) array" in _decode_error(pickled, tmp_path, capsys)

    floats = tmp_path / "floats.npz"
    np.savez(floats, **{**arrays, "triples": arrays["triples"].astype(np.float32)})
    assert "'triples' must hold integers, got float32" in _decode_error(floats, tmp_path, capsys)

    flat = tmp_path / "flat.npz"
    np.savez(flat, **{**arrays, "triples": arrays["triples"].ravel()})
    assert "'triples' must have shape [L, 3]" in _decode_error(flat, tmp_path, capsys)

    codec = tmp_path / "codec.npz"
    np.savez(codec, **{**arrays, "codec": '{"quality": 900}'})
    assert "codec settings do not build" in _decode_error(codec, tmp_path, capsys)

    wide = tmp_path / "wide.npz"
    bad = arrays["triples"].copy()
    bad[0, 1] = 10**6
    np.savez(wide, **{**arrays, "triples": bad})
    assert "triple 0: position 1000000 is outside" in _decode_error(wide, tmp_path, capsys)

    cut = tmp_path / "cut.npz"
    np.savez(cut, **{**arrays, "triples": arrays["triples"][:-1]})
    assert "do not end with EOS" in _decode_error(cut, tmp_path, capsys)

    huge = tmp_path / "huge.npz"
    np.savez(huge, **{**arrays, "content_hw": np.array([2**20, 64], np.int32)})
    assert "is not an image size" in _decode_error(huge, tmp_path, capsys)

    good = tmp_path / "good.npz"
    np.savez(good, **arrays)  # the checks pass a file this project writes
    assert main(["decode", str(good), "--out", str(tmp_path / "good.png")]) == 0
