"""dctformer_tf.plan's tables against the files that document the same facts: the paper's
parameter count in each model file's header, and each data file's measured lengths (its
comments), which also set its max_length; and which gin files make a config."""

import pathlib
import re

import pytest

from dctformer_tf.plan import ASSUMED_LENGTHS, PAPER_PARAMETERS, TABLE3, config_files
from dctformer_tf.train.gin_model import read_bindings

GIN = pathlib.Path(__file__).resolve().parents[2] / "gin"


def test_every_table3_config_has_its_files_and_its_numbers():
    assert set(PAPER_PARAMETERS) == set(ASSUMED_LENGTHS) == set(TABLE3)
    for name in TABLE3:
        assert [p.name for p in config_files(GIN, name)] == [f"{name}.gin", f"{name}.gin",
                                                             "train.gin"]


def test_cpu_models_train_on_shapes():
    models, data, train = config_files(GIN, "tiny")
    assert (models.parent.name, data.name, train.name) == ("models", "shapes.gin", "train.gin")
    with pytest.raises(FileNotFoundError, match=r"no model file .*nope\.gin.*lsun, ffhq"):
        config_files(GIN, "nope")


@pytest.mark.parametrize("name", TABLE3)
def test_paper_parameters_match_the_model_files_header(name):
    header = (GIN / "models" / f"{name}.gin").read_text()
    paper = float(re.search(r"# Parameters: paper ([0-9.e]+);", header).group(1))
    assert PAPER_PARAMETERS[name] == paper


@pytest.mark.parametrize("name", TABLE3)
def test_assumed_lengths_are_the_data_files_measurement(name):
    """The first "mean" and "over max_length=M: a of b" lines of gin/data/NAME.gin (photo
    crops at the config's geometry); the kept mean lies within l_max, and max_length
    leaves room above the mean of every image that is not over it."""
    text = (GIN / "data" / f"{name}.gin").read_text()
    assumed = ASSUMED_LENGTHS[name]
    assert assumed.mean_length == int(re.search(r"#\s+mean (\d+),", text).group(1))
    over, measured = map(int, re.search(r"over max_length=\d+: (\d+) of (\d+)", text).groups())
    assert assumed.overlong_fraction == pytest.approx(over / measured, abs=0.005)
    bound = read_bindings([GIN / "data" / f"{name}.gin"])
    max_length, l_max = bound["build_sequences.max_length"], bound["build_chunks.l_max"]
    assert 0 < assumed.kept_length <= l_max <= max_length
    if not over:
        assert assumed.mean_length < max_length
