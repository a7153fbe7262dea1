"""Plain-Python model configuration: derived sizes, an analytic parameter count, a builder.

No gin here: `gin/models/*.gin` bind the architecture fields through the `architecture`
selector (`train/gin_model.py`), which checks them with `architecture_fields`.
"""

import dataclasses
import inspect
from collections.abc import Sequence

from dctformer_tf.model.dctransformer import DCTransformer, constructor_arguments
from dctformer_tf.model.par_stack import normalize_layer_spec
from dctformer_tf.model.partial_image_encoder import encoder_grid_size

LayerSpec = Sequence[Sequence[int]]

# `DCTransformer.__init__` is the one list of the model's fields: their names, order and
# defaults. A `ModelConfig` holds the same fields with the canvas side `resolution` in place of
# the grid side and `chunk_size` + `chunk_overlap` in place of the window, because a run is
# configured in those terms (paper Table 3) and the grid and window follow from them.
_CONSTRUCTOR = {name: inspect.signature(DCTransformer.__init__).parameters[name]
                for name in constructor_arguments()}
_REPLACED = {"grid_size": ("resolution",), "window": ("chunk_size", "chunk_overlap")}
_RUN_DEFAULTS = {"chunk_size": 896, "chunk_overlap": 128}  # the paper's chunks (Table 3)

# The fields that the codec and the chunking decide. They are derived, never bound: that is
# what keeps data, model, sampler, scoring and export on one grid and one window.
DERIVED_FIELDS = ("resolution", "block_size", "clip", "value_scale", "chunk_size",
                  "chunk_overlap")


def _config_fields() -> list:
    required, optional = [], []
    for name, parameter in _CONSTRUCTOR.items():
        for field in _REPLACED.get(name, (name,)):
            if field in _RUN_DEFAULTS:
                optional.append((field, int, dataclasses.field(default=_RUN_DEFAULTS[field])))
            elif parameter.default is parameter.empty:
                required.append((field, parameter.annotation))
            else:
                optional.append((field, parameter.annotation,
                                 dataclasses.field(default=parameter.default)))
    return required + optional


class _ModelConfigMethods:
    def __post_init__(self):
        if self.resolution % self.block_size:
            raise ValueError(f"resolution {self.resolution} is not a multiple of {self.block_size}")

    @property
    def grid_size(self) -> int:
        """Luma block-grid side `G = R / S`."""
        return self.resolution // self.block_size

    @property
    def window(self) -> int:
        """Decoder window `T = chunk_size + chunk_overlap`."""
        return self.chunk_size + self.chunk_overlap

    def model_kwargs(self) -> dict:
        """The `DCTransformer` constructor arguments of this configuration, its layer specs
        as lists of int tuples (as the model holds them, whether read from JSON or gin)."""
        return {name: normalize_layer_spec(getattr(self, name)) if name.endswith("_spec")
                else getattr(self, name) for name in _CONSTRUCTOR}

    def input_shapes(self, batch_size: int | None = None) -> dict:
        """Shapes of the `DCTransformer` inputs for one window, for `model.build`."""
        shapes = {
            "partial_image": (batch_size, self.grid_size, self.grid_size, 3 * self.block_size**2),
            "inputs": (batch_size, self.window, 3),
            "targets": (batch_size, self.window, 3),
        }
        if self.num_classes:
            shapes["label"] = (batch_size,)
        return shapes


ModelConfig = dataclasses.make_dataclass(
    "ModelConfig", _config_fields(), bases=(_ModelConfigMethods,), frozen=True)
ModelConfig.__module__ = __name__
ModelConfig.__doc__ = """Everything that fixes a DCTransformer's architecture, in the terms of paper Table 3.

    The fields are `DCTransformer`'s constructor arguments (see its docstring), with
    `resolution` (canvas side `R`, a multiple of `block_size`) for `grid_size`, and
    `chunk_size` and `chunk_overlap` (the paper's 896 and 128 by default) for `window`.
    `model_kwargs()` gives the constructor arguments back.
    """

ARCHITECTURE_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig)
                            if f.name not in DERIVED_FIELDS)
REQUIRED_ARCHITECTURE_FIELDS = tuple(
    f.name for f in dataclasses.fields(ModelConfig)
    if f.name in ARCHITECTURE_FIELDS and f.default is dataclasses.MISSING)


def architecture_fields(fields: dict, where: str = "architecture") -> dict:
    """`fields` checked as a model architecture and completed with the defaults.

    Args:
      fields: some of `ARCHITECTURE_FIELDS`, by name.
      where: how the error messages name the settings (the gin selector).
    Returns:
      dict with every field of `ARCHITECTURE_FIELDS`.
    Raises:
      ValueError naming the field: one that the codec or chunking decides, one that no
      model has, or a required one missing.
    """
    derived = sorted(set(fields) & set(DERIVED_FIELDS))
    if derived:
        raise ValueError(f"model settings {derived} come from the codec and the chunking "
                         "(build_codec.*, build_chunking.*); do not set them")
    unknown = sorted(set(fields) - set(ARCHITECTURE_FIELDS))
    if unknown:
        raise ValueError(f"{where}: no model field {unknown}; the fields are "
                         f"{', '.join(ARCHITECTURE_FIELDS)}")
    missing = [name for name in REQUIRED_ARCHITECTURE_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"{where}: {', '.join(f'{where}.{name}' for name in missing)} "
                         "not set (gin/models/*.gin sets them)")
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)
                if f.name in ARCHITECTURE_FIELDS and f.default is not dataclasses.MISSING}
    return {**defaults, **fields}


def model_config(codec, chunking, **architecture) -> ModelConfig:
    """The `ModelConfig` of an architecture on a codec and a chunking: the vocabularies and
    grid come from the codec (a `SparseCodec`), the window from the chunking (a
    `data.layout.Chunking`).

    Args:
      architecture: the `ARCHITECTURE_FIELDS` of `ModelConfig` (d_model, num_heads, ...).
    """
    architecture = architecture_fields(architecture)
    if codec.resolution is None:
        raise ValueError("the codec has no resolution: a model needs a fixed canvas "
                         "(set build_codec.resolution)")
    return ModelConfig(resolution=codec.resolution, block_size=codec.block_size,
                       clip=codec.clip, value_scale=codec.value_encoding,
                       chunk_size=chunking.chunk_size, chunk_overlap=chunking.overlap,
                       **architecture)


def count_parameters(model_config: dict) -> int:
    """Number of trainable parameters of a `DCTransformer`, counted from the architecture
    (paper App. B) without creating any weight.

    Args:
        model_config: the `DCTransformer` constructor arguments, e.g. `model.get_config()` or
            `ModelConfig.model_kwargs()`.
    """
    c = model_config
    d, hk = c["d_model"], c["num_heads"] * c.get("key_size", 64)
    channels, positions = 3 * c["block_size"] ** 2, c["grid_size"] ** 2
    values = 2 * c["clip"] + 1
    num_classes, window = c.get("num_classes", 0), c["window"]
    residual = 2 * d + 1  # layer norm scale and offset, ReZero alpha
    attention = 3 * (d * hk + hk) + hk * d + d + residual  # q, k, v, output projections
    dense = d * 4 * d + 4 * d + 4 * d * d + d + residual
    layer_norm = 2 * d

    def stack(spec, cross):
        n_attention = sum(a for a, _ in spec) * (2 if cross else 1)
        return n_attention * attention + sum(n for _, n in spec) * dense

    def head(vocabulary):
        return layer_norm + d * vocabulary + vocabulary

    side = encoder_grid_size(c["grid_size"], c["conv_stride"])
    encoder = (
        c["conv_kernel"] ** 2 * channels * d
        + d
        + 2 * side * d
        + num_classes * d
        + stack(c["encoder_spec"], cross=False)
        + layer_norm
    )
    channel_decoder = (
        (channels + 2 + positions + 1 + values + 1 + window + num_classes) * d
        + stack(c["channel_spec"], cross=True)
        + head(channels + 1)
    )
    position_decoder = (channels + 1) * d + stack(c["position_spec"], cross=True)
    position_decoder += head(positions)
    value_decoder = positions * d + stack(c["value_spec"], cross=True) + head(values)
    if c.get("attention_bias", "none") == "grid_2d":  # one table per head and grid offset
        value_decoder += c["num_heads"] * ((2 * c["grid_size"] - 1) ** 2 + 1)
    return encoder + channel_decoder + position_decoder + value_decoder


def build_model(
    input_batch_size: int | None = None, build: bool = True, **config_kwargs
) -> DCTransformer:
    """Builds a `DCTransformer` from `ModelConfig(**config_kwargs)`.

    Args:
        input_batch_size: int or None. Batch size the weights are built for (None = any).
        build: bool. Whether to create the weights now (from `ModelConfig.input_shapes`).
        **config_kwargs: the fields of `ModelConfig`.

    Returns:
        The model, built unless `build=False`.
    """
    config = ModelConfig(**config_kwargs)
    model = DCTransformer(**config.model_kwargs())
    if build:
        model.build(config.input_shapes(input_batch_size))
    return model
