"""Training without TensorFlow's input pipeline (`train/portable.py`) reads the gin files as
`dctformer train` does, and its run comes home to the TensorFlow commands. Here on the
TensorFlow backend (the same code); tests/tools/test_accelerator_check.py runs it on JAX."""

import inspect

import gin
import pytest

from dctformer_tf.data.layout import ChunkPolicy
from dctformer_tf.runs import build_run_model, load_trained_model, read_run_file, write_run_file
from dctformer_tf.train import experiment
from dctformer_tf.train.gin_model import REQUIRED, read_bindings
from dctformer_tf.train.portable import PortableSettings, import_weights, train_portable
from dctformer_tf.train.trainer import DCTransformerTrainer

QUICKSTART = ["gin/models/small.gin", "gin/data/shapes.gin", "gin/runs/train.gin",
              "gin/runs/quickstart.gin"]


def test_read_bindings_resolves_macros_includes_and_later_bindings(tmp_path):
    (tmp_path / "base.gin").write_text("WIDTH = 8\nSPEC = [(1, 2)]\narchitecture.d_model = %WIDTH\n")
    (tmp_path / "run.gin").write_text(
        'include "base.gin"\nWIDTH = 16  # macros are read at the end: the last one wins\n'
        "architecture.encoder_spec = %SPEC\ntrain.model_dir = %gin.REQUIRED\n"
        "train.steps = 3\n")
    bound = read_bindings([tmp_path / "run.gin"], ["train.steps = 5"])
    assert bound == {"architecture.d_model": 16, "architecture.encoder_spec": [(1, 2)],
                     "train.model_dir": REQUIRED, "train.steps": 5}


def test_read_bindings_names_an_undefined_macro(tmp_path):
    (tmp_path / "bad.gin").write_text("\ntrain.batch_size = %NOWHERE\n")
    with pytest.raises(ValueError, match=r"bad.gin:2: macro %NOWHERE is not defined"):
        read_bindings([tmp_path / "bad.gin"])


def test_the_portable_run_settings_equal_dctformer_trains():
    bindings = ["train.model_dir = 'unused'", "train.batch_size = 8"]
    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings(QUICKSTART, bindings)
        run, _ = experiment.build_run_settings()
        learning_rate = gin.query_parameter("%LEARNING_RATE")
    finally:
        gin.clear_config()
    settings = PortableSettings.from_gin(QUICKSTART, bindings)
    assert settings.run == run
    assert (settings.batch_size, settings.learning_rate) == (8, learning_rate)
    assert (settings.chunks.p_min, settings.adam_beta_2, settings.num_examples) == (1.0, 0.98, 4000)


def test_unbound_settings_take_the_defaults_of_train_and_build_chunks():
    """The portable defaults are a copy of `experiment.train`'s: kept equal here. The chunk
    policy is `ChunkPolicy` itself, on both paths."""
    defaults = {k: p.default for k, p in inspect.signature(experiment.train).parameters.items()}
    portable = {k: p.default for k, p in inspect.signature(PortableSettings).parameters.items()
                if k not in ("run", "batch_size", "num_examples", "chunks")}
    assert portable == {k: defaults[k] for k in portable}
    assert PortableSettings.__dataclass_fields__["chunks"].default == ChunkPolicy()


def test_only_the_shapes_data_trains_without_tensorflow():
    with pytest.raises(ValueError, match="build_sequences.source = 'lsun/bedroom'"):
        PortableSettings.from_gin(["gin/models/lsun.gin", "gin/data/lsun.gin",
                                   "gin/runs/train.gin"])


@pytest.mark.slow  # trained under JAX by the dry run of tests/tools/test_accelerator_check.py
def test_a_portable_run_trains_and_comes_home(tmp_path):
    settings = PortableSettings.from_gin(
        ["gin/models/tiny.gin", "gin/data/shapes.gin", "gin/runs/train.gin"],
        ["train.batch_size = 4", "train.warmup_steps = 2", "train.learning_rate = 3e-3",
         "build_sequences.num_examples = 32"])
    summary = train_portable(str(tmp_path), settings, total_steps=8, steps_per_epoch=4,
                             jit_compile=False)
    assert summary["steps"] == 8 and summary["tokens_seen"] > 0
    assert summary["loss"][-1] < summary["loss"][0]
    assert read_run_file(str(tmp_path)).model.model_kwargs() == settings.run.model.model_kwargs()
    assert import_weights(str(tmp_path)).endswith("ckpt-8")
    model, run = load_trained_model(str(tmp_path))
    assert run.codec == settings.run.codec and model.count_params() == summary["parameters"] - 1


def test_a_run_directory_with_weights_is_not_trained_into_again(tmp_path):
    settings = PortableSettings.from_gin(
        ["gin/models/tiny.gin", "gin/data/shapes.gin", "gin/runs/train.gin"],
        ["train.batch_size = 2"])
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "step-5.weights.h5").write_text("an earlier run's")
    with pytest.raises(ValueError, match="already holds weights: use a new --model_dir"):
        train_portable(str(tmp_path), settings, total_steps=2)
    assert not (tmp_path / "run.json").exists()  # nothing written, nothing overwritten


def test_import_names_a_missing_or_foreign_weights_file(tmp_path):
    def run_dir(name, *bindings):
        settings = PortableSettings.from_gin(
            ["gin/models/tiny.gin", "gin/data/shapes.gin", "gin/runs/train.gin"],
            ["train.batch_size = 2", *bindings])
        folder = tmp_path / name
        (folder / "weights").mkdir(parents=True)
        write_run_file(str(folder), settings.run)
        return folder, build_run_model(settings.run, model_class=DCTransformerTrainer)

    empty, _ = run_dir("empty")
    with pytest.raises(FileNotFoundError, match="no step-STEP.weights.h5 file in"):
        import_weights(str(empty))
    narrow, _ = run_dir("narrow")
    _, wide_model = run_dir("wide", "architecture.d_model = 48")
    wide = tmp_path / "wide" / "weights" / "step-3.weights.h5"
    wide_model.save_weights(str(wide))
    with pytest.raises(ValueError, match="does not fit the architecture"):
        import_weights(str(narrow), str(wide))
    unnamed = tmp_path / "wide" / "weights" / "latest.weights.h5"
    wide_model.save_weights(str(unnamed))
    with pytest.raises(ValueError, match="expected a file named step-STEP.weights.h5"):
        import_weights(str(tmp_path / "wide"), str(unnamed))


@pytest.mark.parametrize("text, message", [
    ("eval/train.steps = 3\n", "scoped binding eval/train"),
    ("train.callback = @my_callback\n", "@my_callback is a configurable reference"),
    ("A = %B\nB = %A\ntrain.steps = %A\n", "is defined in terms of itself"),
    ("build_model.d_model = 8\n", r"run.gin:1: `build_model.\*` is now `architecture.\*`"),
    ("architecure.d_model = 8\n", r"run.gin:1: no run setting `architecure.\*`"),
])
def test_read_bindings_refuses_what_it_cannot_evaluate(tmp_path, text, message):
    (tmp_path / "run.gin").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_bindings([tmp_path / "run.gin"])


def test_a_chunk_setting_that_does_not_exist_is_named():
    with pytest.raises(ValueError, match=r"build_chunks: no setting \['chunk_size'\]"):
        PortableSettings.from_gin(["gin/models/tiny.gin", "gin/data/shapes.gin",
                                   "gin/runs/train.gin"],
                                  ["train.model_dir = 'unused'", "build_chunks.chunk_size = 8"])
