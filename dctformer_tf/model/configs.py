"""Plain-Python model configuration: derived sizes, an analytic parameter count, a builder.

No gin here: `gin/models/*.gin` bind the arguments of `build_model` (through the
configurable that the training entry point registers), and tools may register it directly.
"""

import dataclasses
from collections.abc import Sequence

from dctformer_tf.model.dctransformer import DCTransformer
from dctformer_tf.model.par_stack import normalize_layer_spec
from dctformer_tf.model.partial_image_encoder import encoder_grid_size

LayerSpec = Sequence[Sequence[int]]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes a DCTransformer's architecture, in the terms of paper Table 3.

    Args:
        resolution: int. Canvas side `R` in pixels.
        block_size: int. DCT block size `S`; `R` must be a multiple of it.
        clip: int. Clip value of the quantized coefficients.
        d_model: int. Model width `D` ("hidden units").
        num_heads: int. Number of attention heads.
        encoder_spec: layer spec of the encoder, `[(n_attention, n_dense), ...]`.
        channel_spec: layer spec of the channel decoder.
        position_spec: layer spec of the position decoder.
        value_spec: layer spec of the value decoder.
        conv_kernel: int. Kernel side of the encoder's downsampling conv.
        conv_stride: int. Stride of the encoder's downsampling conv.
        chunk_size: int. Target chunk size (896 in the paper).
        chunk_overlap: int. Target chunk overlap (128 in the paper).
        num_classes: int. Number of classes; 0 = unconditional.
        key_size: int. Size of each attention head.
        dropout: float. Dropout rate on the residual branches.
        value_scale: str. `"quantized"` or `"dequantized"` partial-image values.
        value_init: str. `"normal"` or `"sinusoidal"` start of the value embedding and
            logits (`value_init.py`).
        position_init: str. `"normal"` or `"sinusoidal_2d"` start of the position embeddings
            and logits (`position_init.py`).
        attention_bias: str. `"none"` or `"grid_2d"` (the value decoder's grid-offset
            attention bias, `grid_attention_bias.py`).
        input_transform: str. `"linear"` or `"signed_log"` encoder input (`PartialImageEncoder`).
        remat: bool. Recompute every residual block's activations in the backward pass
            instead of storing them (`DCTransformer`); no effect on the weights.
    """

    resolution: int
    block_size: int
    clip: int
    d_model: int
    num_heads: int
    encoder_spec: LayerSpec
    channel_spec: LayerSpec
    position_spec: LayerSpec
    value_spec: LayerSpec
    conv_kernel: int
    conv_stride: int
    chunk_size: int = 896
    chunk_overlap: int = 128
    num_classes: int = 0
    key_size: int = 64
    dropout: float = 0.0
    value_scale: str = "quantized"
    value_init: str = "normal"
    position_init: str = "normal"
    attention_bias: str = "none"
    input_transform: str = "linear"
    remat: bool = False

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
        """The `DCTransformer` constructor arguments of this configuration."""
        return dict(
            block_size=self.block_size,
            grid_size=self.grid_size,
            clip=self.clip,
            d_model=self.d_model,
            num_heads=self.num_heads,
            encoder_spec=normalize_layer_spec(self.encoder_spec),
            channel_spec=normalize_layer_spec(self.channel_spec),
            position_spec=normalize_layer_spec(self.position_spec),
            value_spec=normalize_layer_spec(self.value_spec),
            conv_kernel=self.conv_kernel,
            conv_stride=self.conv_stride,
            window=self.window,
            num_classes=self.num_classes,
            key_size=self.key_size,
            dropout=self.dropout,
            value_scale=self.value_scale,
            value_init=self.value_init,
            position_init=self.position_init,
            attention_bias=self.attention_bias,
            input_transform=self.input_transform,
            remat=self.remat,
        )

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


DERIVED_FIELDS = ("resolution", "block_size", "clip", "value_scale", "chunk_size",
                  "chunk_overlap")
ARCHITECTURE_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig)
                            if f.name not in DERIVED_FIELDS)



def model_config(codec, chunking, **architecture) -> ModelConfig:
    """The `ModelConfig` of an architecture on a codec and a chunking: the vocabularies and
    grid come from the codec (a `SparseCodec`), the window from the chunking (a
    `data.layout.Chunking`).

    Args:
      architecture: the `ARCHITECTURE_FIELDS` of `ModelConfig` (d_model, num_heads, ...).
    """
    derived = set(architecture) & set(DERIVED_FIELDS)
    if derived:
        raise ValueError(f"model settings {sorted(derived)} come from the codec and the "
                         "chunking (build_codec.*, build_chunking.*); do not set them")
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
