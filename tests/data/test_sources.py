"""Sources as tf.data: shapes, image folders and TFDS, each element function run both eagerly
and inside `Dataset.map`. Nothing here touches the network: the TFDS tests build a tiny local
dataset, and sockets are disabled while they run.
"""

import io
import logging
import os
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from dctformer_tf.data.folder_source import image_folder_dataset, load_image_tf, scan_image_folder
from dctformer_tf.data.image_io import ImageLoadError, composite_on_grey, load_image
from dctformer_tf.data.shapes import SHAPE_CLASSES, SPLIT_SEEDS, render_shapes
from dctformer_tf.data.sources import get_source, shapes_dataset, shapes_example
from dctformer_tf.data.tfds_source import tfds_dataset, to_rgb_uint8_tf

TINY_TFDS_NAME = "dctformer_test_images"


def _as_numpy(dataset):
    return [{k: v.numpy() for k, v in example.items()} for example in dataset]


# ------------------------------------------------------------------------------------- shapes


def test_shapes_dataset_matches_the_generator():
    dataset = shapes_dataset("test", num_examples=3, start=2)
    assert dataset.element_spec == {
        "image": tf.TensorSpec([64, 64, 3], tf.uint8),
        "label": tf.TensorSpec([], tf.int32),
        "name": tf.TensorSpec([], tf.string),
    }
    assert dataset.cardinality().numpy() == 3
    for i, example in enumerate(_as_numpy(dataset)):
        seed = SPLIT_SEEDS["test"][0] + 2 + i
        image, label = render_shapes(seed)
        np.testing.assert_array_equal(example["image"], image)
        assert example["label"] == label
        assert example["name"].decode() == f"shapes/test/{seed}"


def test_shapes_example_eager_equals_dataset_map():
    seeds = tf.constant([5, 17], dtype=tf.int64)
    mapped = _as_numpy(tf.data.Dataset.from_tensor_slices(seeds).map(shapes_example))
    for seed, from_map in zip(seeds, mapped, strict=True):
        eager = shapes_example(seed)
        np.testing.assert_array_equal(eager["image"].numpy(), from_map["image"])
        assert eager["label"].numpy() == from_map["label"] == render_shapes(int(seed))[1]


def test_shapes_dataset_bad_split():
    with pytest.raises(ValueError, match="unknown split 'val'"):
        shapes_dataset("val", 1)


# -------------------------------------------------------------------------------- image folder


def _save(path, rng, size, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)


@pytest.fixture
def class_folder(tmp_path, rng):
    """cats/ (one image plus one in a nested folder), dogs/ (two images and bad files),
    hidden entries, a stray root image, a text file and an empty class-less folder."""
    root = tmp_path / "pets"
    _save(root / "cats" / "a.png", rng, (5, 4))
    _save(root / "cats" / "indoor" / "deep" / "b.jpg", rng, (8, 6))
    _save(root / "dogs" / "c.PNG", rng, (3, 7), mode="L")
    _save(root / "dogs" / "d.gif", rng, (6, 6), mode="P")
    _save(root / "dogs" / ".hidden.png", rng, (2, 2))
    _save(root / ".cache" / "e.png", rng, (2, 2))
    _save(root / "stray.png", rng, (2, 2))
    (root / "dogs" / "fake.jpg").write_text("not a jpeg")
    (root / "dogs" / "cut.png").write_bytes((root / "cats" / "a.png").read_bytes()[:60])
    (root / "README.txt").write_text("pets")
    (root / "empty").mkdir()
    return root


def test_scan_labels_from_first_level_folders(class_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="dctformer_tf.data.folder_source"):
        info = scan_image_folder(class_folder)
    assert info.class_names == ("cats", "dogs")
    names = [str(p.relative_to(class_folder)) for p in map(type(class_folder), info.files)]
    assert names == ["cats/a.png", "cats/indoor/deep/b.jpg", "dogs/c.PNG", "dogs/d.gif"]
    assert info.labels == (0, 0, 1, 1)
    assert info.num_examples == 4
    assert [p.split("/")[-1] for p in info.ignored] == ["README.txt"]

    skipped = {str(path): reason for path, reason in info.skipped}
    assert info.num_skipped == 3
    assert "truncated" in skipped[str(class_folder / "dogs" / "cut.png")]
    assert "not an image file" in skipped[str(class_folder / "dogs" / "fake.jpg")]
    assert "outside every class sub-folder" in skipped[str(class_folder / "stray.png")]
    for path in skipped:
        assert any(path in record.getMessage() for record in caplog.records), path
    assert "Skipped 3 of 7 image files" in caplog.text


def test_scan_skips_every_kind_of_broken_file_with_one_warning_each(tmp_path, rng, caplog):
    """Files that made Pillow raise a plain OSError, ValueError or SyntaxError: skipped too."""
    root = tmp_path / "photos"
    _save(root / "ok.png", rng, (8, 8))
    jpeg, png, webp = io.BytesIO(), io.BytesIO(), io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (16, 16)).save(jpeg, "JPEG")
    Image.new("RGB", (16, 16)).save(png, "PNG")
    Image.new("RGB", (16, 16)).save(webp, "WEBP", exif=exif)
    broken = {
        "header.jpg": jpeg.getvalue()[:100],  # OSError from Image.open
        "ihdr.png": png.getvalue()[:8] + b"\0\0\0\x03" + png.getvalue()[12:],  # ValueError
        "exif.webp": webp.getvalue().replace(b"MM\0*", b"Mk\0*"),  # SyntaxError, EXIF parser
        "cut.webp": webp.getvalue()[:40],  # OSError: could not create decoder object
    }
    for name, data in broken.items():
        (root / name).write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="dctformer_tf.data.folder_source"):
        info = scan_image_folder(root)
    assert [os.path.basename(p) for p in info.files] == ["ok.png"]
    assert sorted(os.path.basename(p) for p, _ in info.skipped) == sorted(broken)
    for name in broken:
        path = str(root / name)
        assert sum(path in record.getMessage() for record in caplog.records) == 1, name
    assert f"Skipped 4 of 5 image files under {root}" in caplog.text


def test_a_folder_is_scanned_once_until_its_files_change(class_folder, rng, caplog):
    with caplog.at_level(logging.WARNING, logger="dctformer_tf.data.folder_source"):
        first = scan_image_folder(class_folder)
        caplog.clear()
        assert scan_image_folder(class_folder) is first  # the held-out split of the same folder
        assert get_source(f"folder:{class_folder}", "test")[1] == first.class_names
        assert not caplog.records  # no second round of warnings
        _save(class_folder / "dogs" / "new.png", rng, (4, 4))
        second = scan_image_folder(class_folder)
    assert second.num_examples == first.num_examples + 1
    assert "Skipped 3 of 8 image files" in caplog.text
    (class_folder / "dogs" / "new.png").write_bytes(b"now broken")  # same name, new size
    assert scan_image_folder(class_folder).num_examples == first.num_examples


def test_folder_dataset_yields_variable_size_images(class_folder):
    dataset, info = image_folder_dataset(class_folder)
    assert dataset.element_spec == {
        "image": tf.TensorSpec([None, None, 3], tf.uint8),
        "label": tf.TensorSpec([], tf.int32),
        "name": tf.TensorSpec([], tf.string),
    }
    examples = _as_numpy(dataset)
    assert [e["image"].shape for e in examples] == [(4, 5, 3), (6, 8, 3), (7, 3, 3), (6, 6, 3)]
    for path, label, example in zip(info.files, info.labels, examples, strict=True):
        np.testing.assert_array_equal(example["image"], load_image(path))
        assert example["label"] == label
        assert example["name"].decode() == path  # the file's path names the image


def test_folder_shuffle_keeps_every_file(class_folder):
    dataset, info = image_folder_dataset(class_folder, shuffle_files=True, seed=3)
    first, second = _as_numpy(dataset), _as_numpy(dataset)

    def key(examples):
        return sorted((int(e["label"]), e["image"].tobytes()) for e in examples)

    assert key(first) == key(second) == key(_as_numpy(image_folder_dataset(class_folder)[0]))


def test_load_image_tf_eager_equals_dataset_map(class_folder):
    paths = [str(class_folder / "cats" / "a.png"), str(class_folder / "dogs" / "c.PNG")]
    mapped = list(tf.data.Dataset.from_tensor_slices(paths).map(load_image_tf))
    for path, from_map in zip(paths, mapped, strict=True):
        eager = load_image_tf(tf.constant(path)).numpy()
        np.testing.assert_array_equal(eager, from_map.numpy())
        np.testing.assert_array_equal(eager, load_image(path))


def test_load_image_tf_error_names_the_file(class_folder):
    path = str(class_folder / "dogs" / "fake.jpg")
    with pytest.raises(ImageLoadError, match=r"fake\.jpg: not an image file"):
        load_image_tf(tf.constant(path))
    with pytest.raises(tf.errors.OpError, match=r"fake\.jpg: not an image file"):
        list(tf.data.Dataset.from_tensors(path).map(load_image_tf))


def test_flat_folder_is_unlabelled(tmp_path, rng):
    for name in ("x.png", "y.bmp", "Z.JPEG"):
        _save(tmp_path / name, rng, (4, 4))
    dataset, info = image_folder_dataset(tmp_path)
    assert info.class_names == () and info.labels == (0, 0, 0) and not info.skipped
    assert [int(e["label"]) for e in _as_numpy(dataset)] == [0, 0, 0]


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist or is not a folder"):
        scan_image_folder(tmp_path / "missing")
    (tmp_path / "junk.jpg").write_text("junk")
    with pytest.raises(ValueError, match=r"holds no readable image file .*1 skipped, 0 ignored"):
        scan_image_folder(tmp_path)


# --------------------------------------------------------------------------------------- TFDS


class DctformerTestImages(tfds.core.GeneratorBasedBuilder):
    """Six tiny examples, nothing to download: greyscale "image" of varying height, RGBA "rgba",
    class "label" and a non-scalar "tags"."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 1)),
                    "rgba": tfds.features.Image(shape=(4, 4, 4)),
                    "label": tfds.features.ClassLabel(names=["zero", "one", "two"]),
                    "tags": tfds.features.Tensor(shape=(2,), dtype=np.int64),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(0)
        for i in range(6):
            example = {
                "image": rng.integers(0, 256, size=(3 + i, 5, 1), dtype=np.uint8),
                "rgba": rng.integers(0, 256, size=(4, 4, 4), dtype=np.uint8),
                "label": i % 3,
                "tags": np.array([i, i + 1], dtype=np.int64),
            }
            yield i, example


@pytest.fixture(scope="module")
def tiny_tfds_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    DctformerTestImages(data_dir=data_dir).download_and_prepare()
    return data_dir


def test_tfds_greyscale_is_tiled_and_labels_kept(tiny_tfds_dir, no_network):
    dataset = tfds_dataset(TINY_TFDS_NAME, "train", data_dir=tiny_tfds_dir)
    assert dataset.element_spec == {
        "image": tf.TensorSpec([None, None, 3], tf.uint8),
        "label": tf.TensorSpec([], tf.int32),
        "name": tf.TensorSpec([], tf.string),
    }
    read_ids = tfds.ReadConfig(add_tfds_id=True)
    raw = _as_numpy(tfds.builder(TINY_TFDS_NAME, data_dir=tiny_tfds_dir)
                    .as_dataset("train", read_config=read_ids))
    examples = _as_numpy(dataset)
    assert len(examples) == 6
    for original, example in zip(raw, examples, strict=True):
        np.testing.assert_array_equal(example["image"], np.repeat(original["image"], 3, axis=2))
        assert example["label"] == original["label"]
        assert example["name"] == original["tfds_id"]  # the record's TFDS id names the image
    assert sorted(e["label"] for e in examples) == [0, 0, 1, 1, 2, 2]
    names = [e["name"].decode() for e in examples]
    assert len(set(names)) == 6 and all(n.startswith(f"{TINY_TFDS_NAME}-train") for n in names)


def test_tfds_rgba_without_labels(tiny_tfds_dir, no_network):
    dataset, class_names = get_source(
        TINY_TFDS_NAME, "train", data_dir=tiny_tfds_dir, image_key="rgba", label_key="no_such"
    )
    assert class_names == ()
    raw = _as_numpy(tfds.builder(TINY_TFDS_NAME, data_dir=tiny_tfds_dir).as_dataset("train"))
    for original, example in zip(raw, _as_numpy(dataset), strict=True):
        np.testing.assert_array_equal(example["image"], composite_on_grey(original["rgba"]))
        assert example["label"] == 0


def test_tfds_class_names_and_bad_keys(tiny_tfds_dir, no_network):
    _, class_names = get_source(TINY_TFDS_NAME, "train", data_dir=tiny_tfds_dir)
    assert class_names == ("zero", "one", "two")
    with pytest.raises(ValueError, match=r"has no feature 'img'; its features are \['image'"):
        tfds_dataset(TINY_TFDS_NAME, "train", data_dir=tiny_tfds_dir, image_key="img")
    with pytest.raises(ValueError, match=r"feature 'tags' has shape \(2,\), not a single class"):
        tfds_dataset(TINY_TFDS_NAME, "train", data_dir=tiny_tfds_dir, label_key="tags")


def test_tfds_unprepared_dataset_fails_fast_without_download(tmp_path, no_network):
    started = time.monotonic()
    with pytest.raises(FileNotFoundError) as error:
        tfds_dataset("mnist", "train", data_dir=str(tmp_path))
    assert time.monotonic() - started < 20
    message = str(error.value)
    assert "'mnist' is not prepared" in message and str(tmp_path) in message
    assert f"tfds build mnist --data_dir={tmp_path}" in message


def test_tfds_unknown_name(tmp_path, no_network):
    with pytest.raises(ValueError, match="unknown TFDS dataset 'no_such_dataset_xyz'"):
        tfds_dataset("no_such_dataset_xyz", "train", data_dir=str(tmp_path))


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_to_rgb_uint8_tf_eager_equals_dataset_map_and_numpy(rng, channels, dtype):
    high = 256 if dtype == np.uint8 else 65536
    images = rng.integers(0, high, size=(2, 3, 5, channels)).astype(dtype)
    mapped = list(tf.data.Dataset.from_tensor_slices(images).map(to_rgb_uint8_tf))
    for image, from_map in zip(images, mapped, strict=True):
        eager = to_rgb_uint8_tf(tf.constant(image)).numpy()
        np.testing.assert_array_equal(eager, from_map.numpy())
        eight_bit = image if dtype == np.uint8 else np.round(image / 257).astype(np.uint8)
        if channels == 1:
            expected = np.repeat(eight_bit, 3, axis=2)
        elif channels == 4:
            expected = composite_on_grey(eight_bit)
        else:
            expected = eight_bit
        np.testing.assert_array_equal(eager, expected)


def test_to_rgb_uint8_tf_refuses_other_shapes_and_types():
    with pytest.raises(ValueError, match="1, 3 or 4 channels"):
        to_rgb_uint8_tf(tf.zeros([2, 2, 2], tf.uint8))
    with pytest.raises(ValueError, match="uint8 or uint16 image, got float32"):
        to_rgb_uint8_tf(tf.zeros([2, 2, 3], tf.float32))


# ------------------------------------------------------------------------------------ by name


def test_get_source_shapes():
    dataset, class_names = get_source("shapes", "test", num_examples=2)
    assert class_names == SHAPE_CLASSES
    assert dataset.cardinality().numpy() == 2


def test_get_source_folders(tmp_path, rng):
    _save(tmp_path / "train" / "a" / "1.png", rng, (4, 4))
    _save(tmp_path / "train" / "b" / "2.png", rng, (4, 4))
    _save(tmp_path / "test" / "a" / "3.png", rng, (4, 4))
    _, class_names = get_source(f"folder:{tmp_path}", "train")
    assert class_names == ("a", "b")  # the train/ sub-folder
    dataset, class_names = get_source(str(tmp_path), "test")
    assert class_names == ("a",) and dataset.cardinality().numpy() == 1
    _, class_names = get_source(str(tmp_path / "train"), "validation")  # no such sub-folder
    assert class_names == ("a", "b")


def test_get_source_errors(tmp_path, no_network):
    with pytest.raises(ValueError, match="empty source name"):
        get_source("", "train")
    with pytest.raises(FileNotFoundError, match="folder .* does not exist"):
        get_source(f"folder:{tmp_path / 'missing'}", "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_source(str(tmp_path / "missing"), "train")
    with pytest.raises(ValueError, match="unknown TFDS dataset 'no_such_dataset_xyz'"):
        get_source("no_such_dataset_xyz", "train", data_dir=str(tmp_path))
    with pytest.raises(TypeError):
        get_source("shapes", "train", no_such_argument=1)
