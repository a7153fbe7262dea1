"""The tf.data encoding graph against the numpy codec, eagerly and in the dataset; over-long
sequences named in the error, or skipped, logged and counted; lengths without a limit."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.pipeline import OverlongLog, encode_dataset, encode_lengths
from dctformer_tf.data.shapes import SPLIT_SEEDS
from dctformer_tf.data.sources import get_source
from dctformer_tf.dct import SparseCodec
from tests.dct.images import random_image


def _source(images, labels):
    return tf.data.Dataset.from_generator(
        lambda: ({"image": im, "label": lb} for im, lb in zip(images, labels, strict=True)),
        output_signature={"image": tf.TensorSpec([None, None, 3], tf.uint8),
                          "label": tf.TensorSpec([], tf.int32)},
    )


@pytest.mark.parametrize("resolution", (64, None))
def test_encode_dataset_matches_numpy_codec(resolution, rng):
    codec = SparseCodec(quality=75, resolution=resolution)
    images = [random_image(rng, h, w) for h, w in ((64, 64), (80, 48), (40, 64), (64, 64), (50, 50))]
    labels = [3, 1, 4, 1, 5]
    examples = list(encode_dataset(_source(images, labels), codec, 6000, encode_batch_size=2))
    assert len(examples) == len(images)  # the short final batch is kept
    for image, label, example in zip(images, labels, examples, strict=True):
        expected, (h, w) = codec.encode_with_size(image)
        length = int(example["length"])
        assert length == len(expected) and int(example["label"]) == label
        np.testing.assert_array_equal(example["triples"][:length].numpy(), expected)
        assert tuple(example["content_hw"].numpy()) == (h, w)
    if resolution:
        spec = encode_dataset(_source(images, labels), codec, 6000).element_spec
        assert spec["triples"].shape == (6000, 3)


def _named(images, names):
    return tf.data.Dataset.from_tensor_slices(
        {"image": np.stack(images), "label": np.arange(len(images), dtype=np.int32),
         "name": names})


@pytest.mark.parametrize("resolution", (64, None))
def test_overflow_error_names_the_image_and_its_length(resolution, rng):
    codec = SparseCodec(quality=90, resolution=resolution)
    images = [np.full((64, 64, 3), 128, np.uint8), random_image(rng, 64, 64)]
    long_length = len(codec.encode(images[1]))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"(?s)longer than max_length=50.*\[/photos/b\.png\].*{long_length}"):
        list(encode_dataset(_named(images, ["/photos/a.png", "/photos/b.png"]), codec, 50))
    # A source without names: the example's index names it.
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"(?s)\[example 1\].*{long_length}"):
        list(encode_dataset(_source(images, [0, 1]), codec, 50))


def test_overflow_skip_logs_each_image_once_and_counts_it(rng, caplog):
    codec = SparseCodec(quality=90, resolution=64)
    images = [np.full((64, 64, 3), 128, np.uint8), random_image(rng, 64, 64)]
    long_length = len(codec.encode(images[1]))
    overlong = OverlongLog()
    sequences = encode_dataset(_named(images, ["flat.png", "noise.png"]), codec, 50,
                               on_overflow="skip", overlong=overlong)
    assert set(sequences.element_spec) == {"triples", "length", "content_hw", "label"}
    with caplog.at_level(logging.WARNING, logger="dctformer_tf.data.pipeline"):
        for _ in range(2):  # an uncached dataset meets the image again every epoch
            assert [int(ex["label"]) for ex in sequences] == [0]
    assert (overlong.count, overlong.names, overlong.skips) == (1, ("noise.png",), 2)
    assert overlong.lengths == {"noise.png": long_length}
    warnings = [r.getMessage() for r in caplog.records if "Skipping image" in r.getMessage()]
    assert warnings == [f"Skipping image noise.png: its sparse sequence has {long_length} "
                        "elements (EOS included), more than max_length=50"]
    # Without a log of its own the skip is still logged.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dctformer_tf.data.pipeline"):
        kept = list(encode_dataset(_source(images, [0, 1]), codec, 50, on_overflow="skip"))
    assert [int(ex["label"]) for ex in kept] == [0]
    assert "Skipping image example 1" in caplog.text
    with pytest.raises(ValueError, match="on_overflow must be one of .* got 'truncate'"):
        encode_dataset(_source(images, [0, 1]), codec, 50, on_overflow="truncate")


def test_names_and_skips_are_per_image_across_encode_batches(rng, caplog):
    # Canvas-sized images are named and length-checked per encode batch; the names must still
    # be the source indices, and a skip must drop only its own image, in any batch.
    codec = SparseCodec(quality=90, resolution=64)
    flat = np.full((64, 64, 3), 128, np.uint8)
    images = [flat, flat, flat, random_image(rng, 64, 64), flat]
    long_length = len(codec.encode(images[3]))
    source = _source(images, list(range(5)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"(?s)\[example 3\].*{long_length}"):
        list(encode_dataset(source, codec, 50, encode_batch_size=2))
    with caplog.at_level(logging.WARNING, logger="dctformer_tf.data.pipeline"):
        kept = list(encode_dataset(source, codec, 50, encode_batch_size=2, on_overflow="skip"))
    assert [int(ex["label"]) for ex in kept] == [0, 1, 2, 4]
    assert all(ex["triples"].shape == (50, 3) for ex in kept)
    assert "Skipping image example 3" in caplog.text


@pytest.mark.parametrize("resolution", (64, None))
def test_encode_lengths_are_the_true_lengths_over_any_max_length(resolution, rng):
    codec = SparseCodec(quality=90, resolution=resolution)
    images = [random_image(rng, h, w) for h, w in ((64, 64), (80, 48), (40, 64))]
    images.append(np.full((64, 64, 3), 128, np.uint8))
    names = [f"im{i}" for i in range(len(images))]
    source = tf.data.Dataset.from_generator(
        lambda: ({"image": im, "name": n} for im, n in zip(images, names, strict=True)),
        output_signature={"image": tf.TensorSpec([None, None, 3], tf.uint8),
                          "name": tf.TensorSpec([], tf.string)})
    found = list(encode_lengths(source, codec, encode_batch_size=3).as_numpy_iterator())
    assert [ex["name"].decode() for ex in found] == names
    assert [int(ex["length"]) for ex in found] == [len(codec.encode(im)) for im in images]
    assert max(int(ex["length"]) for ex in found) > 1000  # far over the buffer of one


def test_names_flow_from_the_shapes_source_into_the_error():
    codec = SparseCodec(quality=90, resolution=64)
    images, _ = get_source("shapes", "test", num_examples=2)
    first = SPLIT_SEEDS["test"][0]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"(?s)\[shapes/test/{first} shapes/test/{first + 1}\]"):
        list(encode_dataset(images, codec, 2))
    lengths = list(encode_lengths(images, codec).as_numpy_iterator())
    assert [ex["name"].decode() for ex in lengths] == [f"shapes/test/{first + i}" for i in (0, 1)]


@pytest.mark.parametrize("resolution", (64, None))
def test_images_smaller_than_a_macroblock_are_an_error_in_the_pipeline(resolution):
    codec = SparseCodec(resolution=resolution)
    tiny = np.full((4, 5, 3), 90, np.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than one 16x16 macroblock"):
        list(encode_dataset(_source([tiny], [0]), codec, 100))


def test_canvas_sized_source_skips_placing_and_matches_numpy(rng):
    """A source of static [R, R, 3] images goes straight to the batched fast encoder; the short
    final batch is kept and the sequences equal the float64 reference's."""
    codec = SparseCodec(quality=90, resolution=64)
    images = np.stack([random_image(rng, 64, 64) for _ in range(5)])
    source = tf.data.Dataset.from_tensor_slices({"image": images, "label": np.arange(5)})
    examples = list(encode_dataset(source, codec, 4000, encode_batch_size=3))
    assert [int(ex["label"]) for ex in examples] == list(range(5))
    for image, example in zip(images, examples, strict=True):
        expected = codec.encode(image)
        length = int(example["length"])
        assert length == len(expected) and tuple(example["content_hw"].numpy()) == (64, 64)
        np.testing.assert_array_equal(example["triples"][:length].numpy(), expected)
        assert not example["triples"][length:].numpy().any()
