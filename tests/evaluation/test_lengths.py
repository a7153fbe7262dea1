"""`dctformer lengths` on a folder of photos: its lengths are the numpy codec's, its
percentiles numpy's of those, the over-long images are named, and the histogram is a PNG of
the figure's size."""

import json

import numpy as np
import pytest
from PIL import Image

from dctformer_tf.cli.main import main
from dctformer_tf.data.image_io import load_image
from dctformer_tf.data.photos import photo_crops
from dctformer_tf.dct import SparseCodec
from dctformer_tf.evaluation.lengths import PERCENTILES, length_statistics, measure_lengths
from dctformer_tf.evaluation.plots import HISTOGRAM_COLORS, length_histogram_figure


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Eight photo crops, some not square (the canvas resizes them), one noise image."""
    folder = tmp_path_factory.mktemp("photos")
    for i, crop in enumerate(photo_crops(96, 8)):
        Image.fromarray(crop if i % 2 else crop[:, 16:80]).save(folder / f"photo_{i}.png")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    return folder


def _numpy_lengths(folder, codec) -> dict:
    """{path: length} by the float64 numpy codec, independently of tf.data."""
    return {str(path): len(codec.encode(load_image(str(path))))
            for path in sorted(folder.glob("*.png"))}


def test_cli_reports_numpy_percentiles_names_the_over_long_and_draws(photo_folder, tmp_path,
                                                                    capsys):
    codec = SparseCodec(quality=75, resolution=64)
    expected = _numpy_lengths(photo_folder, codec)
    max_length = 2500
    over = {path: n for path, n in expected.items() if n > max_length}
    assert over and len(over) < len(expected)  # the noise image, at least, and not all

    png, numbers = tmp_path / "out" / "lengths.png", tmp_path / "out" / "lengths.json"
    assert main(["lengths", f"folder:{photo_folder}", "--resolution", "64", "--quality", "75",
                 "--max_length", str(max_length), "--out", str(png), "--json",
                 str(numbers)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(numbers.read_text())

    lengths = np.array(list(expected.values()))
    assert report["count"] == len(expected)
    assert report["mean"] == pytest.approx(lengths.mean())
    for p in PERCENTILES:
        assert report[f"p{p}"] == pytest.approx(np.percentile(lengths, p)), p
    assert (report["min"], report["max"]) == (lengths.min(), lengths.max())
    assert report["over_max_length"] == len(over)
    assert report["fraction_over"] == pytest.approx(len(over) / len(expected))
    assert {e["name"]: e["length"] for e in report["over"]} == over
    assert report["codec"]["resolution"] == 64
    for path in over:
        assert path in printed
    assert f"p50 {np.percentile(lengths, 50):.0f}" in printed
    assert f"over max_length={max_length}: {len(over)} of {len(expected)}" in printed

    with Image.open(png) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (720, 420), "RGB")
        pixels = np.asarray(image)
    for color in ("bar", "over"):
        assert (pixels == HISTOGRAM_COLORS[color]).all(axis=-1).any(), color


def test_measure_lengths_takes_the_first_images_of_shapes():
    codec = SparseCodec(quality=75, resolution=64)
    names, lengths = measure_lengths("shapes", codec, "test", num=3)
    assert len(names) == len(lengths) == 3 and names[0].startswith("shapes/test/")


def test_statistics_without_a_max_length_and_their_errors():
    stats = length_statistics([10, 20, 30, 40])
    assert stats["p50"] == 25.0 and "over_max_length" not in stats
    with pytest.raises(ValueError, match="non-empty list of lengths"):
        length_statistics([])


def test_cli_needs_a_resolution(capsys):
    with pytest.raises(SystemExit):
        main(["lengths", "shapes"])
    assert "--resolution" in capsys.readouterr().err


def test_histogram_figure_size_and_errors():
    figure = length_histogram_figure([5, 7, 9], max_length=8, width=300, height=200)
    assert figure.size == (300, 200)
    with pytest.raises(ValueError, match="too small"):
        length_histogram_figure([5, 7, 9], width=60, height=200)
    with pytest.raises(ValueError, match="no lengths"):
        length_histogram_figure([])
