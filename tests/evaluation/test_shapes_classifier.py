"""The shapes classifier: a short training run saves a file that reloads to the same
predictions; `classify` is the argmax of the logits; a missing file names the tool.

No accuracy bound in the default tier: the network stays near chance for its first 100-150
steps and passes 60 % only after about 200 (half a minute or more on 2 shared cores), so the
>= 95 % figure comes from `tools/train_shapes_classifier.py` (96.95 % on 2000 test images)
and the `slow` test below checks a shorter run.
"""

import keras
import numpy as np
import pytest

from dctformer_tf.data.shapes import shapes_arrays
from dctformer_tf.dct import codec_round_trip
from dctformer_tf.evaluation.shapes_classifier import (
    build_shapes_classifier,
    classify,
    load_shapes_classifier,
    resize_to_input,
    shapes_codec,
    split_accuracy,
    train_shapes_classifier,
)


def test_short_run_saves_a_model_that_reloads_to_the_same_predictions(tmp_path):
    path = str(tmp_path / "classifier.keras")
    result = train_shapes_classifier(path, num_train=96, epochs=1, seed=0)
    assert result["num_train"] == 96 and result["train_seconds"] > 0
    images, _ = shapes_arrays("test", 16)
    trained = load_shapes_classifier(path)
    assert trained.count_params() < 200_000
    untrained = build_shapes_classifier()
    logits = np.asarray(trained(images.astype(np.float32)))
    labels = classify(trained, images)
    np.testing.assert_array_equal(labels, logits.argmax(-1))
    assert set(labels) <= {0, 1, 2}
    # Training changed the weights: a fresh network does not give these logits.
    assert not np.allclose(np.asarray(untrained(images.astype(np.float32))), logits, atol=1e-3)


def test_image_size_trains_on_shapes_drawn_at_that_size(tmp_path, monkeypatch):
    from dctformer_tf.evaluation import shapes_classifier as module

    drawn = []
    original = module.shapes_arrays

    def spy(split, num, start=0, size=64):
        drawn.append(size)
        return original(split, num, start=start, size=size)

    monkeypatch.setattr(module, "shapes_arrays", spy)
    path = str(tmp_path / "classifier_32.keras")
    train_shapes_classifier(path, num_train=32, epochs=1, seed=0, image_size=32)
    model = load_shapes_classifier(path)
    assert model.input_shape[1:] == (32, 32, 3)
    accuracy = split_accuracy(model, num=8)
    assert drawn == [32, 32]  # training images and the test split, both drawn at 32²
    images, labels = original("test", 8, size=32)
    assert accuracy == np.mean(classify(model, images) == labels)


def test_codec_quality_shows_a_coded_half_of_the_images_each_epoch(tmp_path, monkeypatch):
    """With `codec_quality`, every epoch fits on clean images and their codec round trips
    (each a flip/turn of one or the other), about half and half."""
    images, _ = shapes_arrays("train", 48, size=32)
    coded = codec_round_trip(images, shapes_codec(32, 75))
    fitted = []
    original_fit = keras.Model.fit

    def spy(self, x, *args, **kwargs):
        fitted.append(np.array(x))
        return original_fit(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    train_shapes_classifier(str(tmp_path / "c.keras"), num_train=48, epochs=2, image_size=32,
                            codec_quality=75)
    assert len(fitted) == 2
    for shown in fitted:
        from_coded = []
        for i, view in enumerate(shown):
            candidates = {False: images[i], True: coded[i]}
            matches = [is_coded for is_coded, image in candidates.items()
                       if any(np.array_equal(view, t) for t in _symmetries(image))]
            assert len(matches) == 1, f"image {i} is neither its clean nor its coded version"
            from_coded.append(matches[0])
        assert 0.2 < np.mean(from_coded) < 0.8


def _symmetries(image):
    """The 8 flips/quarter turns of an [S, S, 3] image."""
    for flipped in (image, image[:, ::-1]):
        for k in range(4):
            yield np.rot90(flipped, k, axes=(0, 1))


def test_split_accuracy_with_a_codec_classifies_the_round_trips():
    model = build_shapes_classifier(image_size=32)
    codec = shapes_codec(32, 75)
    images, labels = shapes_arrays("test", 12, size=32)
    coded = codec_round_trip(images, codec)
    assert coded.shape == images.shape and not np.array_equal(coded, images)
    np.testing.assert_array_equal(coded[3], codec.decode(*_triples_and_size(codec, images[3])))
    assert split_accuracy(model, num=12, codec=codec) == np.mean(classify(model, coded) == labels)


def _triples_and_size(codec, image):
    triples, (h, w) = codec.encode_with_size(image)
    return triples, h, w


def test_classify_is_the_argmax_of_the_logits():
    model = build_shapes_classifier()
    dense = model.get_layer("logits")
    kernel, _ = dense.get_weights()
    dense.set_weights([np.zeros_like(kernel), np.array([0.0, 0.0, 1.0], np.float32)])
    images, _ = shapes_arrays("test", 4)
    np.testing.assert_array_equal(classify(model, images), [2, 2, 2, 2])
    with pytest.raises(ValueError, match=r"images must be \[N, 64, 64, 3\]"):
        classify(model, images[:, :32])


def test_square_images_of_another_size_are_resized_bilinear():
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = build_shapes_classifier()
    small, _ = shapes_arrays("test", 6, size=32)
    by_hand = tf.image.resize(small.astype(np.float32), (64, 64), method="bilinear")
    by_hand = np.clip(np.round(by_hand.numpy()), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(classify(model, small), classify(model, by_hand))
    np.testing.assert_array_equal(resize_to_input(small, model), by_hand)


def test_missing_file_names_the_training_tool(tmp_path):
    with pytest.raises(FileNotFoundError, match="tools/train_shapes_classifier.py"):
        load_shapes_classifier(str(tmp_path / "absent.keras"))
    with pytest.raises(ValueError, match=r"must end in \.keras"):
        train_shapes_classifier(str(tmp_path / "model.h5"), num_train=8, epochs=1)


@pytest.mark.slow
def test_a_few_thousand_images_reach_well_above_chance(tmp_path):
    path = str(tmp_path / "classifier.keras")
    keras.utils.set_random_seed(0)
    train_shapes_classifier(path, num_train=6000, epochs=3, seed=0)
    assert split_accuracy(load_shapes_classifier(path), num=1000) >= 0.8
