"""Transformer encoder over the partial DCT image, and the pixel -> encoder-token geometry."""

import math
from collections.abc import Sequence

import keras
from keras import ops

from dctformer_tf.model.par_stack import PARStack, normalize_layer_spec

VALUE_SCALES = ("quantized", "dequantized")
# How the scaled values enter the conv: "linear" is docs/design.md §3's `v / scale`; "signed_log" is
# `sign(v)·log(1 + |v|) / log(1 + scale)`, also in [-1, 1], which lifts the small AC values
# (|v| of 1–10 are 0.001–0.01 of a clip of 1200 linearly, 0.1–0.34 here) to the DC's range.
INPUT_TRANSFORMS = ("linear", "signed_log")


def encoder_grid_size(grid_size: int, conv_stride: int) -> int:
    """Side `Ge = ceil(G / stride)` of the encoder token grid; the encoder has `N = Ge**2`."""
    return -(-grid_size // conv_stride)


def encoder_padding(grid_size: int, conv_kernel: int, conv_stride: int) -> tuple[int, int]:
    """Zero padding `(before, after)` applied to both spatial axes before the valid conv.

    `before = (k - s) // 2` and `after = Ge*s - G + (k - s) - before`. The padded side is
    `Ge*s + k - s`, so the valid conv yields exactly `Ge` tokens per side, and token `i` sees
    input cells `[i*s - before, i*s - before + k)`, a window that contains its whole stride
    block `[i*s, (i + 1)*s)` because `0 <= before <= k - s`. When `s` divides `G` this is
    exactly TF/Keras `"same"` padding; otherwise the extra cells go at the bottom/right, where
    `"same"` would shift every window up/left and break the containment for `k = s`.
    """
    if conv_kernel < conv_stride:
        raise ValueError(f"conv_kernel ({conv_kernel}) must be >= conv_stride ({conv_stride})")
    before = (conv_kernel - conv_stride) // 2
    after = encoder_grid_size(grid_size, conv_stride) * conv_stride - grid_size
    return before, after + conv_kernel - conv_stride - before


def encoder_cell_index(positions, grid_size: int, conv_stride: int):
    """Index in `[0, N)` of the encoder token whose stride block contains each position.

    Position `p` is luma-grid cell `(row, col) = (p // G, p % G)`; with the padding of
    `encoder_padding` it lies in the stride block of token
    `(row // s, col // s)`, flattened row-major over the `Ge x Ge` token grid:
    `(row // s) * Ge + col // s`. The last row/column map to token row/column `Ge - 1`.

    Args:
        positions: int tensor of any shape, values in `[0, G**2)`.
        grid_size: int. Luma block-grid side `G`.
        conv_stride: int. Stride `s` of the encoder's conv.

    Returns:
        int32 tensor of the same shape as `positions`.
    """
    positions = ops.cast(positions, "int32")
    rows = positions // grid_size // conv_stride
    cols = positions % grid_size // conv_stride
    return rows * encoder_grid_size(grid_size, conv_stride) + cols


@keras.saving.register_keras_serializable(package="dctformer_tf")
class PartialImageEncoder(keras.layers.Layer):
    """Transformer encoder of the partial DCT image (paper Sec. 3.2, App. B).

    `partial_image [B, G, G, C]` (signed quantized values `v`, channel axis in sequence-rank
    order) is scaled to about `[-1, 1]` in float32 (`v / clip` for `"quantized"` inputs,
    `v / (S * 128)` for `"dequantized"` ones), zero-padded (see `encoder_padding`), reduced by
    a strided valid `Conv2D` to a `Ge x Ge` grid, `Ge = ceil(G / stride)`, flattened to
    `N = Ge**2` tokens, summed with learned row and column embeddings (and a class embedding
    when `num_classes > 0`), and run through an unmasked `PARStack` and a final layer norm.
    Returns float32 `[B, N, D]`. Under a mixed policy the conv runs in the compute dtype;
    the scaling, the embeddings, the residual stream and the output stay float32.

    Args:
        grid_size: int. Luma block-grid side `G = R / S`.
        block_size: int. DCT block size `S`; `C = 3 * S**2`.
        clip: int. Clip value of the quantized coefficients.
        d_model: int. Model width `D`.
        num_heads: int. Number of attention heads.
        layer_spec: list of `(n_attention, n_dense)` tuples for the `PARStack`.
        conv_kernel: int. Kernel side `k` of the downsampling conv.
        conv_stride: int. Stride `s` of the downsampling conv (`k >= s`).
        key_size: int. Size of each attention head.
        dropout: float. Dropout rate on the residual branches.
        num_classes: int. Number of classes for the class embedding; 0 = unconditional.
        value_scale: str. `"quantized"` or `"dequantized"`: what the partial image holds.
        input_transform: str. `"linear"` (`v / scale`, docs/design.md §3) or `"signed_log"`
            (`sign(v)·log(1 + |v|) / log(1 + scale)`; see `INPUT_TRANSFORMS`).
        layer_norm_epsilon: float. Epsilon of the layer norms.
        remat: bool. Whether the stack's residuals recompute their activations in the
            backward pass (`PARStack`).

    Example:
    ```python
    encoder = PartialImageEncoder(grid_size=8, block_size=8, clip=1200, d_model=32,
                                  num_heads=2, layer_spec=[(1, 1)], conv_kernel=4,
                                  conv_stride=2)
    tokens = encoder(np.zeros((2, 8, 8, 192), "int32"))  # [2, 16, 32]
    ```
    """

    def __init__(
        self,
        grid_size: int,
        block_size: int,
        clip: int,
        d_model: int,
        num_heads: int,
        layer_spec: Sequence[Sequence[int]],
        conv_kernel: int,
        conv_stride: int,
        key_size: int = 64,
        dropout: float = 0.0,
        num_classes: int = 0,
        value_scale: str = "quantized",
        input_transform: str = "linear",
        layer_norm_epsilon: float = 1e-6,
        remat: bool = False,
        **kwargs,
    ):
        super().__init__(autocast=False, **kwargs)  # float partial images stay float32
        if value_scale not in VALUE_SCALES:
            raise ValueError(f"value_scale must be one of {VALUE_SCALES}, got {value_scale!r}")
        if input_transform not in INPUT_TRANSFORMS:
            raise ValueError(
                f"input_transform must be one of {INPUT_TRANSFORMS}, got {input_transform!r}"
            )
        self.grid_size = grid_size
        self.block_size = block_size
        self.clip = clip
        self.d_model = d_model
        self.num_heads = num_heads
        self.layer_spec = normalize_layer_spec(layer_spec)
        self.conv_kernel = conv_kernel
        self.conv_stride = conv_stride
        self.key_size = key_size
        self.dropout = dropout
        self.num_classes = num_classes
        self.value_scale = value_scale
        self.input_transform = input_transform
        self.layer_norm_epsilon = layer_norm_epsilon
        self.remat = remat

        self.token_grid_size = encoder_grid_size(grid_size, conv_stride)
        self.padding = encoder_padding(grid_size, conv_kernel, conv_stride)
        self.conv = keras.layers.Conv2D(
            d_model,
            conv_kernel,
            strides=conv_stride,
            padding="valid",
            dtype=self.dtype_policy,
            name="conv",
        )
        embedding_init = keras.initializers.RandomNormal(stddev=0.02)
        self.row_embedding = keras.layers.Embedding(
            self.token_grid_size,
            d_model,
            embeddings_initializer=embedding_init,
            dtype="float32",
            name="row_embedding",
        )
        self.column_embedding = keras.layers.Embedding(
            self.token_grid_size,
            d_model,
            embeddings_initializer=embedding_init,
            dtype="float32",
            name="column_embedding",
        )
        self.class_embedding = None
        if num_classes:
            self.class_embedding = keras.layers.Embedding(
                num_classes,
                d_model,
                embeddings_initializer=embedding_init,
                dtype="float32",
                name="class_embedding",
            )
        self.stack = PARStack(
            self.layer_spec,
            num_heads,
            key_size=key_size,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            remat=remat,
            dtype=self.dtype_policy,
            name="stack",
        )
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype="float32", name="output_norm"
        )

    @property
    def num_tokens(self) -> int:
        """Number of encoder tokens `N = Ge**2`."""
        return self.token_grid_size**2

    def build(self, partial_image_shape, label_shape=None):
        padded = self.grid_size + sum(self.padding)
        self.conv.build((None, padded, padded, partial_image_shape[-1]))
        self.row_embedding.build((None,))
        self.column_embedding.build((None,))
        if self.class_embedding is not None:
            self.class_embedding.build((None,))
        tokens_shape = (None, self.num_tokens, self.d_model)
        self.stack.build(tokens_shape)
        self.output_norm.build(tokens_shape)
        self.built = True

    def call(self, partial_image, label=None, training=None):
        scale = self.clip if self.value_scale == "quantized" else self.block_size * 128
        image = ops.cast(partial_image, "float32")  # [B, G, G, C]
        if self.input_transform == "signed_log":
            image = ops.sign(image) * ops.log1p(ops.abs(image)) / math.log1p(scale)
        else:
            image = image / float(scale)
        before, after = self.padding
        image = ops.pad(image, ((0, 0), (before, after), (before, after), (0, 0)))
        tokens = ops.cast(self.conv(image), "float32")  # -> [B, Ge, Ge, D]
        grid = ops.arange(self.token_grid_size)
        tokens = (
            tokens
            + self.row_embedding(grid)[:, None, :]  # [Ge, 1, D]
            + self.column_embedding(grid)[None, :, :]  # [1, Ge, D]
        )
        tokens = ops.reshape(tokens, (-1, self.num_tokens, self.d_model))  # -> [B, N, D]
        if self.class_embedding is not None:
            tokens = tokens + self.class_embedding(label)[:, None, :]  # [B, 1, D]
        tokens = self.stack(tokens, training=training)
        return self.output_norm(tokens)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid_size": self.grid_size,
                "block_size": self.block_size,
                "clip": self.clip,
                "d_model": self.d_model,
                "num_heads": self.num_heads,
                "layer_spec": self.layer_spec,
                "conv_kernel": self.conv_kernel,
                "conv_stride": self.conv_stride,
                "key_size": self.key_size,
                "dropout": self.dropout,
                "num_classes": self.num_classes,
                "value_scale": self.value_scale,
                "input_transform": self.input_transform,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "remat": self.remat,
            }
        )
        return config
