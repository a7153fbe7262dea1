"""Over-long images in a training run: with on_overflow="skip" each is named in a warning and
counted in TensorBoard (`data/overlong_skipped`) and in the run's last lines; with "error" the
run stops with an error naming it."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dctformer_tf.data.photos import photo_crops
from dctformer_tf.dct import SparseCodec
from tests.train.test_experiment import _train

MAX_LENGTH = 600  # photos at 32 px (tiny.gin) stay under it, noise does not


@pytest.fixture
def photo_folder(tmp_path, rng):
    """Six photo crops and, first in file order, one noise image far over MAX_LENGTH."""
    folder = tmp_path / "photos"
    folder.mkdir()
    codec = SparseCodec(quality=75, resolution=32)
    for i, crop in enumerate(photo_crops(96, 6)):
        Image.fromarray(crop).save(folder / f"photo_{i}.png")
        assert len(codec.encode(crop)) <= MAX_LENGTH
    noise = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "a_noise.png")
    return folder, len(codec.encode(noise))


def _bindings(folder, on_overflow):
    return [f"build_sequences.source = 'folder:{folder}'",
            f"build_sequences.max_length = {MAX_LENGTH}",
            f"build_sequences.on_overflow = '{on_overflow}'",
            "train.total_steps = 2", "train.steps_per_epoch = 2"]


def test_a_skipped_image_is_named_and_counted(tmp_path, photo_folder, caplog):
    folder, noise_length = photo_folder
    noise = str(folder / "a_noise.png")
    caplog.set_level(logging.INFO, logger="dctformer_tf")
    _train(tmp_path / "run", *_bindings(folder, "skip"))

    messages = [record.getMessage() for record in caplog.records]
    named = [m for m in messages if m.startswith("Skipping image")]
    assert named == [f"Skipping image {noise}: its sparse sequence has {noise_length} elements "
                     f"(EOS included), more than max_length={MAX_LENGTH}"]  # once, though read often
    done = next(i for i, m in enumerate(messages) if m.startswith("Done at step 2"))
    assert messages[done + 1] == (f"Skipped 1 training image longer than "
                                  f"max_length={MAX_LENGTH} (named above)")

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "train"),
                              size_guidance={"tensors": 0}).Reload()
    counts = {e.step: float(tf.make_ndarray(e.tensor_proto))
              for e in events.Tensors("data/overlong_skipped")}
    assert counts == {1: 1.0, 2: 1.0}


def test_an_over_long_image_stops_the_run_by_name(tmp_path, photo_folder):
    folder, noise_length = photo_folder
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"(?s)longer than max_length={MAX_LENGTH}.*a_noise\.png.*"
                             rf"{noise_length}"):
        _train(tmp_path / "run", *_bindings(folder, "error"))
