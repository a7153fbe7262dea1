"""The tf.data encoding graph against the numpy codec, eagerly and in the dataset."""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data.pipeline import encode_dataset
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


def test_overflow_errors_or_skips_with_the_length(rng, capfd):
    codec = SparseCodec(quality=90, resolution=64)
    images = [np.full((64, 64, 3), 128, np.uint8), random_image(rng, 64, 64)]
    long_length = len(codec.encode(images[1]))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"(?s)longer than max_length=50.*{long_length}"):
        list(encode_dataset(_source(images, [0, 1]), codec, 50))
    kept = list(encode_dataset(_source(images, [0, 1]), codec, 50, on_overflow="skip"))
    assert [int(ex["label"]) for ex in kept] == [0]
    assert f"length {long_length} > max_length = 50" in capfd.readouterr().err
    with pytest.raises(ValueError, match="on_overflow must be one of .* got 'truncate'"):
        encode_dataset(_source(images, [0, 1]), codec, 50, on_overflow="truncate")


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
