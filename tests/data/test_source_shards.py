"""Sharded reading (`data.sources.Shard`): each source kind deals its first `num_examples`
out to the shards before decoding anything; the shards are disjoint, together the whole
set, balanced to one example, and too many shards fail naming the source and the count."""

import hashlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from dctformer_tf.data.sources import Shard, get_source, shapes_dataset

SHARD_TFDS_NAME = "dctformer_shard_images"


def _digests(dataset) -> list[str]:
    """A content hash per example (image pixels and label), in dataset order."""
    return [hashlib.sha1(example["image"].numpy().tobytes()
                         + example["label"].numpy().tobytes()).hexdigest()
            for example in dataset]


def _assert_partition(shards: list[list[str]], whole: list[str]) -> None:
    """The shards are disjoint, together `whole` (each example once) and balanced."""
    assert len(set(whole)) == len(whole), "test data with duplicate examples"
    dealt = [digest for shard in shards for digest in shard]
    assert sorted(dealt) == sorted(whole)
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1, sizes


# ----------------------------------------------------------------------------------- Shard


@pytest.mark.parametrize("index, count, error", [
    (0, 0, "Shard.count must be at least 1, got 0"),
    (-1, 2, r"Shard.index must be in \[0, 2\) for Shard.count = 2, got -1"),
    (2, 2, r"Shard.index must be in \[0, 2\) for Shard.count = 2, got 2"),
])
def test_shard_bounds_are_checked(index, count, error):
    with pytest.raises(ValueError, match=error):
        Shard(index, count)


@pytest.mark.parametrize("index, count", [("0", 2), (0, 2.0), (True, 2), (0, None)])
def test_shard_fields_are_ints(index, count):
    with pytest.raises(TypeError, match=r"Shard\.(index|count) must be an int, got"):
        Shard(index, count)


def test_shard_ranges_split_every_count_evenly_and_in_order():
    assert str(Shard(1, 3)) == "shard 1 of 3" and Shard(np.int64(1), 3) == Shard(1, 3)
    for num in range(12):
        for count in range(1, 6):
            bounds = [Shard(i, count).bounds(num) for i in range(count)]
            assert [i for start, stop in bounds for i in range(start, stop)] == list(range(num))
            sizes = [stop - start for start, stop in bounds]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


# ---------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("count", [1, 2, 3])
def test_shapes_shards_partition_the_first_examples(count):
    whole = _digests(shapes_dataset("test", 7, size=16))
    shards = [_digests(get_source("shapes", "test", num_examples=7, size=16,
                                  shard=Shard(i, count))[0]) for i in range(count)]
    _assert_partition(shards, whole)
    assert [d for shard in shards for d in shard] == whole  # contiguous seed ranges, in order


def test_shapes_shards_of_a_whole_split_cover_it():
    whole = shapes_dataset("test").cardinality().numpy()
    sizes = [shapes_dataset("test", shard=Shard(i, 3)).cardinality().numpy() for i in range(3)]
    assert sum(sizes) == whole and max(sizes) - min(sizes) <= 1


def test_too_many_shapes_shards_fail_naming_the_split_and_the_count():
    for index in (0, 2):  # every shard fails, not only the empty one: no worker goes on alone
        with pytest.raises(ValueError, match=r"shapes split 'test' \(num_examples=2\) has 2 "
                                             r"examples, fewer than its 3 shards.*"
                                             rf"this is shard {index} of 3.*at most 2 workers"):
            get_source("shapes", "test", num_examples=2, shard=Shard(index, 3))


# ---------------------------------------------------------------------------- image folder


@pytest.fixture
def seven_images(tmp_path):
    """train/ with 4 images in a/ and 3 in b/, each a distinct colour."""
    root = tmp_path / "images"
    for i in range(7):
        path = root / "train" / ("a" if i < 4 else "b") / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((4, 5, 3), 30 * i, dtype=np.uint8)).save(path)
    return root


@pytest.mark.parametrize("count, num_examples", [(1, None), (2, None), (3, None), (3, 5)])
def test_folder_shards_partition_the_files(seven_images, count, num_examples):
    source = f"folder:{seven_images}"
    whole = _digests(get_source(source, "train")[0])[:num_examples]
    shards = [_digests(get_source(source, "train", num_examples=num_examples,
                                  shard=Shard(i, count))[0]) for i in range(count)]
    _assert_partition(shards, whole)


def test_folder_shards_deal_the_files_out_in_turn(seven_images):
    """files[i::count]: with sorted paths, every shard gets files of both class folders."""
    labels = [[int(e["label"]) for e in get_source(f"folder:{seven_images}", "train",
                                                   shard=Shard(i, 3))[0]] for i in range(3)]
    assert labels == [[0, 0, 1], [0, 1], [0, 1]]


def test_too_many_folder_shards_fail_naming_the_folder_and_the_file_count(seven_images):
    with pytest.raises(ValueError, match=rf"image folder '{seven_images}/train' "
                                         r"\(num_examples=2\) has 2 image files, fewer than its "
                                         r"3 shards.*this is shard 0 of 3"):
        get_source(f"folder:{seven_images}", "train", num_examples=2, shard=Shard(0, 3))
    with pytest.raises(ValueError, match=r"has 7 image files, fewer than its 8 shards"):
        get_source(f"folder:{seven_images}", "train", shard=Shard(7, 8))


# ------------------------------------------------------------------------------------ TFDS


class DctformerShardImages(tfds.core.GeneratorBasedBuilder):
    """Seven tiny examples in "train", two in "test", nothing to download; example i is an
    image filled with i and label i."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(2, 3, 3)),
                "label": tfds.features.ClassLabel(num_classes=7),
            }),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(7), "test": self._generate_examples(2)}

    def _generate_examples(self, num):
        for i in range(num):
            yield i, {"image": np.full((2, 3, 3), i, dtype=np.uint8), "label": i}


@pytest.fixture(scope="module")
def shard_tfds_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    DctformerShardImages(data_dir=data_dir).download_and_prepare()
    return data_dir


def _labels(dataset) -> list[int]:
    return [int(example["label"]) for example in dataset]


@pytest.mark.parametrize("count, num_examples, expected", [
    (1, None, 7), (2, None, 7), (3, None, 7), (3, 5, 5), (2, 100, 7)])
def test_tfds_shards_partition_the_split(shard_tfds_dir, no_network, count, num_examples,
                                         expected):
    def read(shard):
        return get_source(SHARD_TFDS_NAME, "train", data_dir=shard_tfds_dir,
                          num_examples=num_examples, shard=shard)[0]

    whole = _labels(read(None))
    assert len(whole) == expected  # unsharded: the first N examples (TFDS's own order)
    shards = [_labels(read(Shard(i, count))) for i in range(count)]
    _assert_partition(shards, whole)


def test_tfds_shards_of_a_split_expression(shard_tfds_dir, no_network):
    shards = [_labels(get_source(SHARD_TFDS_NAME, "train[2:]", data_dir=shard_tfds_dir,
                                 shard=Shard(i, 2))[0]) for i in range(2)]
    _assert_partition(shards, _labels(get_source(SHARD_TFDS_NAME, "train[2:]",
                                                 data_dir=shard_tfds_dir)[0]))
    with pytest.raises(ValueError, match=r"cannot cut the split expression 'train\[2:\]' to its "
                                         r"first 3 examples before sharding it \(shard 0 of 2\)"):
        get_source(SHARD_TFDS_NAME, "train[2:]", data_dir=shard_tfds_dir, num_examples=3,
                   shard=Shard(0, 2))


def test_too_many_tfds_shards_fail_naming_the_dataset_and_the_count(shard_tfds_dir, no_network):
    with pytest.raises(ValueError, match=rf"TFDS dataset '{SHARD_TFDS_NAME}' split 'test' has 2 "
                                         r"examples, fewer than its 3 shards.*shard 1 of 3"):
        get_source(SHARD_TFDS_NAME, "test", data_dir=shard_tfds_dir, shard=Shard(1, 3))


def test_an_unprepared_tfds_dataset_still_fails_fast_when_sharded(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match="'mnist' is not prepared"):
        get_source("mnist", "train", data_dir=str(tmp_path), shard=Shard(0, 2))
