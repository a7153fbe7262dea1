import dataclasses
import pathlib

import gin
import numpy as np
import pytest

from dctformer_tf.model.configs import ModelConfig, build_model, count_parameters
from dctformer_tf.plan import PAPER_PARAMETERS
from tests.model.layer_test_case import TINY, tiny_model

GIN_MODELS = pathlib.Path(__file__).resolve().parents[2] / "gin" / "models"


class _Delegate(gin.config_parser.ParserDelegate):
    """Keeps references as `(kind, name)` tuples instead of resolving them in the registry."""

    def configurable_reference(self, scoped_name, evaluate):
        return ("configurable", scoped_name)

    def macro(self, macro_name):
        return ("macro", macro_name)


def read_gin(name):
    """`(macros, build_model bindings)` of gin/models/NAME.gin, read with gin's own parser.

    The `build_model` configurable belongs to the training entry point
    (`dctformer_tf.train.experiment`); registering a second one here would make the selector
    ambiguous, so the bindings are read, checked against `ModelConfig`, and applied by hand.
    """
    text = (GIN_MODELS / f"{name}.gin").read_text()
    macros, bindings = {}, {}
    for statement in gin.config_parser.ConfigParser(text, _Delegate()):
        if statement.selector == "architecture":
            kind, macro = statement.value
            assert kind == "macro", statement
            bindings[statement.arg_name] = macros[macro]
        else:
            assert not statement.arg_name and statement.selector.isupper(), statement
            macros[statement.selector] = statement.value
    return macros, bindings


# The ModelConfig fields that gin/runs/train.gin derives from the model file's macros
# (through build_codec and build_chunking), never bound to architecture.
DERIVED_FROM_MACROS = {"resolution": "RESOLUTION", "block_size": "BLOCK_SIZE", "clip": "CLIP",
                       "chunk_size": "CHUNK_SIZE", "chunk_overlap": "CHUNK_OVERLAP"}


def model_from_gin(name, **kwargs):
    macros, bindings = read_gin(name)
    derived = {field: macros[macro] for field, macro in DERIVED_FROM_MACROS.items()}
    return build_model(**bindings, **derived, **kwargs)


def test_every_table3_column_has_a_gin_file():
    names = {path.stem for path in GIN_MODELS.glob("*.gin")}
    assert names == set(PAPER_PARAMETERS) | {"tiny", "small"}


def test_count_matches_built_model():
    model = tiny_model()
    model.build({"partial_image": (None, 5, 5, 12), "inputs": (None, 12, 3), "label": (None,)})
    assert count_parameters(model.get_config()) == model.count_params()
    assert count_parameters(TINY) == model.count_params()


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS) + ["tiny", "small"])
def test_gin_file_parses_and_binds_every_model_field(name):
    gin.clear_config()
    try:
        gin.parse_config_file(str(GIN_MODELS / f"{name}.gin"), skip_unknown=True)
        macros, bindings = read_gin(name)
        for macro, value in macros.items():
            assert gin.query_parameter(f"%{macro}") == value
    finally:
        gin.clear_config()
    # Options outside Table 3, and remat (memory, not architecture), keep their defaults in
    # the model files (run files may set them).
    options = {"value_scale", "value_init", "position_init", "attention_bias", "input_transform",
               "layer_norm_epsilon", "remat"}
    fields = {f.name for f in dataclasses.fields(ModelConfig)} - options - set(DERIVED_FROM_MACROS)
    assert set(bindings) == fields
    for arg, value in bindings.items():
        assert macros[arg.upper()] == value


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_small_gin_files_build_and_run(name):
    model = model_from_gin(name)
    assert model.count_params() == count_parameters(model.get_config())
    batch = 2
    x = {
        "partial_image": np.zeros(
            (batch, model.grid_size, model.grid_size, model.num_channels), "int32"
        ),
        "inputs": np.zeros((batch, model.window, 3), "int32"),
        "targets": np.zeros((batch, model.window, 3), "int32"),
    }
    outputs = model(x)
    assert outputs["value_logits"].shape == (batch, model.window, model.num_values)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
def test_table3_parameter_counts_within_15_percent(name):
    model = model_from_gin(name, build=False)  # constructs the layers, creates no weights
    count = count_parameters(model.get_config())
    assert abs(count / PAPER_PARAMETERS[name] - 1.0) <= 0.15, (name, count)


def test_table3_hyperparameters_of_one_column():
    macros, _ = read_gin("ffhq")
    expected = {
        "RESOLUTION": 1024,
        "BLOCK_SIZE": 16,
        "QUALITY": 35,
        "CLIP": 3200,
        "CHUNK_SIZE": 896,
        "CHUNK_OVERLAP": 128,
        "D_MODEL": 896,
        "NUM_HEADS": 14,
        "ENCODER_SPEC": [(1, 2)] * 4,
        "CHANNEL_SPEC": [(1, 2)] * 3 + [(1, 4)],
        "POSITION_SPEC": [(1, 2)] * 3 + [(1, 4)],
        "VALUE_SPEC": [(1, 2)] * 6 + [(1, 7)],
        "CONV_KERNEL": 6,
        "CONV_STRIDE": 3,
        "BATCH_SIZE": 448,
        "DROPOUT": 0.1,
        "LEARNING_RATE": 5e-4,
        "TOKENS": 250e9,
    }
    assert {macro: macros[macro] for macro in expected} == expected
    model = model_from_gin("ffhq", build=False)
    assert (model.grid_size, model.num_channels, model.num_positions) == (64, 768, 4096)
    assert (model.num_values, model.window, model.encoder.num_tokens) == (6401, 1024, 22 * 22)


def test_model_config_derives_sizes():
    config = ModelConfig(
        resolution=384,
        block_size=8,
        clip=1200,
        d_model=896,
        num_heads=14,
        encoder_spec=[(1, 2)],
        channel_spec=[(1, 2)],
        position_spec=[(1, 2)],
        value_spec=[(1, 2)],
        conv_kernel=4,
        conv_stride=2,
    )
    assert (config.grid_size, config.window) == (48, 1024)
    assert config.input_shapes(4)["partial_image"] == (4, 48, 48, 192)
    with pytest.raises(ValueError):
        ModelConfig(**{**config.__dict__, "resolution": 100})


def run_bindings(files):
    """`gin.config_str()` of gin/FILE... parsed as `dctformer train` parses them."""
    from dctformer_tf.train import experiment  # noqa: F401 -- registers the configurables

    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings([str(GIN_MODELS.parent / f) for f in files],
                                            ["train.model_dir = '/tmp/x'"])
        return gin.config_str()
    finally:
        gin.clear_config()


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
def test_table3_runs_enable_mixed_precision_and_the_demo_does_not(name):
    # Model files may not bind train.* (test_gin_file_parses_and_binds_every_model_field),
    # so gin/runs/accelerator.gin does.
    table3 = [f"models/{name}.gin", f"data/{name}.gin", "runs/train.gin", "runs/accelerator.gin"]
    assert "train.mixed_precision = True" in run_bindings(table3)
    demo = ["models/small.gin", "data/shapes.gin", "runs/train.gin", "runs/quickstart.gin"]
    assert "mixed_precision" not in run_bindings(demo)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMETERS))
def test_every_table3_config_builds_from_the_one_field_list(name):
    """Each Table 3 model file, read as a run reads it (`read_bindings` -> the `architecture`
    selector -> `ModelConfig`), gives a model whose constructor arguments are the config's,
    field for field, and whose `get_config` rebuilds the same model."""
    from dctformer_tf.model.dctransformer import DCTransformer, constructor_arguments
    from dctformer_tf.train.gin_model import config_from_bindings, read_bindings

    gin_dir = GIN_MODELS.parent
    bound = read_bindings([gin_dir / "models" / f"{name}.gin", gin_dir / "data" / f"{name}.gin",
                           gin_dir / "runs" / "train.gin"], ["train.model_dir = 'unused'"])
    config = config_from_bindings(bound)
    kwargs = config.model_kwargs()
    assert tuple(kwargs) == constructor_arguments()
    model = DCTransformer(**kwargs)  # layers constructed, no weights created
    rebuilt = DCTransformer.from_config(model.get_config())
    for field in constructor_arguments():
        assert getattr(rebuilt, field) == getattr(model, field), field
    assert (model.grid_size, model.window) == (config.resolution // config.block_size,
                                               config.chunk_size + config.chunk_overlap)
    assert count_parameters(model.get_config()) == count_parameters(kwargs)


def test_an_unknown_or_missing_architecture_field_is_named():
    from dctformer_tf.model.configs import architecture_fields

    with pytest.raises(ValueError, match=r"no model field \['d_modle'\]"):
        architecture_fields({"d_modle": 8})
    with pytest.raises(ValueError, match=r"architecture.conv_kernel, architecture.conv_stride "
                                         "not set"):
        architecture_fields({"d_model": 8, "num_heads": 2, "encoder_spec": [(1, 1)],
                             "channel_spec": [(1, 1)], "position_spec": [(1, 1)],
                             "value_spec": [(1, 1)]})


def test_model_kwargs_hold_layer_specs_as_the_model_does():
    """Specs read from JSON (lists) or gin (tuples) give the same constructor arguments."""
    from_json = ModelConfig(**{**TINY_FIELDS, "encoder_spec": [[1, 2]], "value_spec": [[0, 1]]})
    from_gin = ModelConfig(**{**TINY_FIELDS, "encoder_spec": [(1, 2)], "value_spec": ((0, 1),)})
    assert from_json.model_kwargs() == from_gin.model_kwargs()
    assert from_json.model_kwargs()["encoder_spec"] == [(1, 2)]


TINY_FIELDS = dict(resolution=32, block_size=8, clip=255, d_model=16, num_heads=2,
                   encoder_spec=[(1, 1)], channel_spec=[(1, 1)], position_spec=[(1, 1)],
                   value_spec=[(1, 1)], conv_kernel=2, conv_stride=2)
