"""The gin selectors of a run's codec, chunking and architecture, without TensorFlow.

`gin/models/*.gin` binds `architecture.*` (the architecture) and `build_codec.*` /
`build_chunking.*` through their macros; `experiment.train` reads them through these
functions, and so do the tools that size a model and the JAX-backend runner
(`train/portable.py`), which must parse the same files on a host with no TensorFlow.
"""

import dataclasses
import inspect

import gin

from dctformer_tf.data.layout import Chunking, ChunkPolicy
from dctformer_tf.dct import SparseCodec
from dctformer_tf.model.configs import (
    DERIVED_FIELDS,
    ModelConfig,
    architecture_fields,
    model_config,
)
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


def keyword_signature(defaults: dict) -> inspect.Signature:
    """A signature of keyword-only parameters with these defaults (`gin.REQUIRED` for one
    without). Set as the `__signature__` of a selector that takes `**fields`, it lets gin
    refuse a misspelt binding when the file is parsed, naming file and line, and record every
    value, bound or default, in the operative config, while the fields themselves stay
    defined once, in the dataclass the selector builds."""
    return inspect.Signature([inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                                default=default)
                              for name, default in defaults.items()])


def dataclass_defaults(cls, skip=()) -> dict:
    """{field: default} of a dataclass, `gin.REQUIRED` for a field without one."""
    return {f.name: gin.REQUIRED if f.default is dataclasses.MISSING else f.default
            for f in dataclasses.fields(cls) if f.name not in skip}


def architecture(**fields) -> dict:
    """The model's architecture: the `ARCHITECTURE_FIELDS` of `ModelConfig` that
    gin/models/*.gin bind (`architecture.d_model = ...`), completed with their defaults. The
    rest of the model's configuration comes from the codec and the chunking."""
    return architecture_fields(fields)


architecture.__signature__ = keyword_signature(
    dataclass_defaults(ModelConfig, skip=DERIVED_FIELDS))
architecture = gin.configurable("architecture")(architecture)


def chunk_policy(**fields) -> ChunkPolicy:
    """The chunk law and length filter of training (`build_chunks.p_min = ...`); the fields
    and their defaults are `ChunkPolicy`'s."""
    return chunk_policy_from(fields)


chunk_policy.__signature__ = keyword_signature(dataclass_defaults(ChunkPolicy))
chunk_policy = gin.configurable("build_chunks")(chunk_policy)


def chunk_policy_from(fields: dict) -> ChunkPolicy:
    """`ChunkPolicy(**fields)`, refusing by name a field it does not have."""
    known = [f.name for f in dataclasses.fields(ChunkPolicy)]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValueError(f"build_chunks: no setting {unknown}; the settings are "
                         f"{', '.join(known)} (the chunk size is build_chunking.*)")
    return ChunkPolicy(**fields)


def gin_model_config() -> ModelConfig:
    """The model the parsed gin files describe: the architecture from `architecture.*`, the
    rest from the codec and the chunking (for tools that size gin/models/*.gin)."""
    return model_config(build_codec(), build_chunking(), **architecture())


REQUIRED = object()  # what `%gin.REQUIRED` reads as in `read_bindings`

# The selectors whose results gin/runs/train.gin injects into `train` (`train.codec =
# @build_codec()`): `read_bindings` keeps such a reference as it is, and its reader takes the
# value from the selector's own bindings.
SELECTORS = ("build_codec", "build_chunking", "architecture", "build_sequences", "build_chunks")
# What a run file may bind, for `read_bindings`: the selectors and `train` itself.
RUN_SELECTORS = ("train", *SELECTORS)
# Selectors of earlier versions, and what replaced them.
RENAMED = {"build_model": "architecture"}


def read_bindings(files, bindings=()) -> dict:
    """Every binding of gin files and binding strings, as `{"selector.arg": value}`, with
    macros resolved, whether or not the configurables are registered in this process.

    For a host that cannot import what some configurables live in (TensorFlow's
    `experiment.train`), yet must honour the same run files (`train/portable.py`). Later
    bindings win, as in gin; `include "f.gin"` reads `f.gin` as gin does (from the working
    directory), else beside the including file. What this reader cannot evaluate is refused:
    scoped bindings (`scope/selector.arg`) and configurable references (`@name`) other than
    calls of the `SELECTORS`, which are returned as they are.

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
                if statement.arg_name and statement.selector not in RUN_SELECTORS:
                    raise ValueError(f"{line}: {unknown_selector(statement.selector)}")
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
            if value.evaluate and value.name in SELECTORS:
                return value  # what `train` is injected with; read from the selector itself
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


def unknown_selector(selector: str) -> str:
    """What to tell the author of a binding to a selector no run reads."""
    if selector in RENAMED:
        return f"`{selector}.*` is now `{RENAMED[selector]}.*`"
    return (f"no run setting `{selector}.*`; a run binds {', '.join(RUN_SELECTORS)} "
            "(and macros)")


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
                       architecture(**selector_kwargs(bound, "architecture")),
                       sequences["max_length"], data)


def config_from_bindings(bound: dict) -> ModelConfig:
    """The `ModelConfig` that `read_bindings`' result describes (as `gin_model_config` does
    for the parsed, registered configuration)."""
    return model_config(build_codec(**selector_kwargs(bound, "build_codec")),
                        build_chunking(**selector_kwargs(bound, "build_chunking")),
                        **architecture(**selector_kwargs(bound, "architecture")))
