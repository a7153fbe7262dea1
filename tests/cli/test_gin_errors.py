"""Gin files that a run cannot use are named with what to do: a selector of an earlier version
(`build_model.*`), a run file without what `train` is injected with."""

import argparse

import pytest

import dctformer_tf.train.experiment  # noqa: F401  (registers the selectors)
from dctformer_tf.cli.common import parse_gin
from dctformer_tf.cli.main import main


def test_a_binding_of_a_renamed_selector_says_what_it_is_now(tmp_path):
    (tmp_path / "old.gin").write_text("build_model.d_model = 8\n")
    args = argparse.Namespace(gin_file=[str(tmp_path / "old.gin")], gin_bindings=[])
    with pytest.raises(ValueError, match=r"(?s)old.gin.*`build_model.\*` is now `architecture.\*`"):
        parse_gin(args)


def test_a_run_without_train_gin_says_what_to_bind(tmp_path, capsys):
    code = main(["train", "--model_dir", str(tmp_path / "run"), "--gin_file",
                 "gin/models/tiny.gin", "--gin_file", "gin/data/shapes.gin"])
    err = capsys.readouterr().err
    assert code == 2  # a configuration error, as main reports every ValueError
    assert "include gin/runs/train.gin, or bind train.codec = @build_codec()" in err
    assert not (tmp_path / "run").exists()  # refused before anything was written
