"""The gin selectors of a run's codec, chunking and architecture, without TensorFlow.

`gin/models/*.gin` binds `build_model.*` (the architecture) and `build_codec.*` /
`build_chunking.*` through their macros; `experiment.train` reads them through these
functions, and so do the tools that size a model and the JAX-backend runner
(`train/portable.py`), which must parse the same files on a host with no TensorFlow.
"""

import gin

from dctformer_tf.data.layout import Chunking
from dctformer_tf.dct import SparseCodec
from dctformer_tf.model.configs import ModelConfig, model_config
from dctformer_tf.runs import DataSettings, RunSettings


@gin.configurable
def build_codec(
    resolution: int = gin.REQUIRED,
    block_size: int = gin.REQUIRED,
    quality: int = gin.REQUIRED,
    clip: int = gin.REQUIRED,
    order: str = "bands",
    value_encoding: str = "quantized",
) -> SparseCodec:
    return SparseCodec(block_size=block_size, quality=quality, clip=clip, order=order,
                       value_encoding=value_encoding, resolution=resolution)


@gin.configurable
def build_chunking(chunk_size: int = gin.REQUIRED, overlap: int = gin.REQUIRED) -> Chunking:
    return Chunking(chunk_size, overlap)


@gin.configurable("build_model")
def model_architecture(
    d_model: int = gin.REQUIRED,
    num_heads: int = gin.REQUIRED,
    encoder_spec=gin.REQUIRED,
    channel_spec=gin.REQUIRED,
    position_spec=gin.REQUIRED,
    value_spec=gin.REQUIRED,
    conv_kernel: int = gin.REQUIRED,
    conv_stride: int = gin.REQUIRED,
    num_classes: int = 0,
    key_size: int = 64,
    dropout: float = 0.0,
    value_init: str = "normal",
    position_init: str = "normal",
    attention_bias: str = "none",
    input_transform: str = "linear",
    remat: bool = False,
) -> dict:
    """The architecture fields of `ModelConfig` (gin/models/*.gin bind them); the rest of the
    model's configuration comes from the codec and the chunking."""
    return dict(d_model=d_model, num_heads=num_heads, encoder_spec=encoder_spec,
                channel_spec=channel_spec, position_spec=position_spec, value_spec=value_spec,
                conv_kernel=conv_kernel, conv_stride=conv_stride, num_classes=num_classes,
                key_size=key_size, dropout=dropout, value_init=value_init,
                position_init=position_init, attention_bias=attention_bias,
                input_transform=input_transform, remat=remat)


def gin_model_config() -> ModelConfig:
    """The model the parsed gin files describe: the architecture from `build_model.*`, the
    rest from the codec and the chunking (for tools that size gin/models/*.gin)."""
    return model_config(build_codec(), build_chunking(), **model_architecture())


REQUIRED = object()  # what `%gin.REQUIRED` reads as in `read_bindings`


def read_bindings(files, bindings=()) -> dict:
    """Every binding of gin files and binding strings, as `{"selector.arg": value}`, with
    macros resolved, whether or not the configurables are registered in this process.

    For a host that cannot import what some configurables live in (TensorFlow's
    `experiment.train`), yet must honour the same run files (`train/portable.py`). Later
    bindings win, as in gin; `include "f.gin"` reads `f.gin` as gin does (from the working
    directory), else beside the including file. What this reader cannot evaluate is refused:
    scoped bindings (`scope/selector.arg`) and configurable references (`@name`).

    Args:
      files: paths of .gin files.
      bindings: binding strings ("train.batch_size = 8").
    Returns:
      dict "selector.arg" -> value (`REQUIRED` for `%gin.REQUIRED`).
    Raises:
      ValueError naming the file and line: a macro never defined or defined in a cycle, a
      scoped binding, a configurable reference.
    """
    import os

    from gin import config_parser

    class Delegate(config_parser.ParserDelegate):
        def configurable_reference(self, scoped_name, evaluate):
            return _Reference(scoped_name, evaluate)

        def macro(self, name):
            return _Macro(name)

    statements = []

    def parse(text: str, where: str):
        for statement in config_parser.ConfigParser(text, Delegate()):
            line = f"{where}:{statement.location.line_num}"
            if isinstance(statement, config_parser.IncludeStatement):
                path = statement.filename
                if not os.path.exists(path):
                    path = os.path.join(os.path.dirname(where), statement.filename)
                with open(path, encoding="utf-8") as f:
                    parse(f.read(), path)
            elif isinstance(statement, config_parser.BindingStatement):
                if statement.scope:
                    raise ValueError(f"{line}: scoped binding {statement.scope}/"
                                     f"{statement.selector}: not read without gin's registry")
                statements.append((statement, where))

    for path in files:
        with open(path, encoding="utf-8") as f:
            parse(f.read(), str(path))
    for text in bindings:
        parse(text, "<bindings>")

    macros = {s.selector: s.value for s, _ in statements if not s.arg_name}

    def resolve(value, statement, where, seen=()):
        line = f"{where}:{statement.location.line_num}"
        if isinstance(value, _Macro):
            if value.name == "gin.REQUIRED":
                return REQUIRED
            if value.name not in macros:
                raise ValueError(f"{line}: macro %{value.name} is not defined in "
                                 f"{[str(f) for f in files]}")
            if value.name in seen:
                raise ValueError(f"{line}: macro %{value.name} is defined in terms of itself")
            return resolve(macros[value.name], statement, where, (*seen, value.name))
        if isinstance(value, _Reference):
            raise ValueError(f"{line}: {value!r} is a configurable reference, which a run "
                             "without gin's registry cannot call")
        if isinstance(value, list | tuple):
            return type(value)(resolve(v, statement, where, seen) for v in value)
        if isinstance(value, dict):
            return {k: resolve(v, statement, where, seen) for k, v in value.items()}
        return value

    return {f"{s.selector}.{s.arg_name}": resolve(s.value, s, where)
            for s, where in statements if s.arg_name}


class _Macro:
    def __init__(self, name: str):
        self.name = name


class _Reference:
    """`@configurable` or `@configurable()`, refused when a binding uses it."""

    def __init__(self, name: str, evaluate: bool):
        self.name, self.evaluate = name, evaluate

    def __repr__(self):
        return f"@{self.name}{'()' if self.evaluate else ''}"


def selector_kwargs(bound: dict, selector: str) -> dict:
    """The arguments `read_bindings` found for one configurable: {arg: value}."""
    prefix = selector + "."
    return {key[len(prefix):]: value for key, value in bound.items() if key.startswith(prefix)}


def run_from_bindings(bound: dict, data: DataSettings | None = None) -> RunSettings:
    """The `RunSettings` that `read_bindings`' result describes (as
    `experiment.build_run_settings` does for the registered configuration); `data` default:
    the `build_sequences.source` and `data_dir` bound."""
    sequences = selector_kwargs(bound, "build_sequences")
    if "max_length" not in sequences:
        raise ValueError("build_sequences.max_length is not bound (gin/data/*.gin sets it)")
    if data is None:
        data = DataSettings(sequences.get("source", "shapes"), sequences.get("data_dir"))
    return RunSettings(build_codec(**selector_kwargs(bound, "build_codec")),
                       build_chunking(**selector_kwargs(bound, "build_chunking")),
                       model_architecture(**selector_kwargs(bound, "build_model")),
                       sequences["max_length"], data)


def config_from_bindings(bound: dict) -> ModelConfig:
    """The `ModelConfig` that `read_bindings`' result describes (as `gin_model_config` does
    for the parsed, registered configuration)."""
    return model_config(build_codec(**selector_kwargs(bound, "build_codec")),
                        build_chunking(**selector_kwargs(bound, "build_chunking")),
                        **model_architecture(**selector_kwargs(bound, "build_model")))
