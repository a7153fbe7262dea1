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
