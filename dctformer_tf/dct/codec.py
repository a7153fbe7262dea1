"""`SparseCodec`: an image <-> sparse DCT sequence, with its vocabularies (docs/design.md §1).

The codec validates its settings once, builds the tables both twins need, and offers the
numpy path (`encode`, `decode`, `encode_dense`, ...) for tools and tests, and the
TensorFlow path (`tf_*`) for graphs (`tf.data`, the SavedModel).
"""

from dataclasses import dataclass, field, fields

import numpy as np

from dctformer_tf.dct import np_ops
from dctformer_tf.dct.order import ORDERS, rank_to_raw, raw_to_rank
from dctformer_tf.dct.tables import (
    check_block_size,
    check_quality,
    max_quantized_magnitude,
    quantization_table,
)

VALUE_ENCODINGS = ("quantized", "dequantized")
UPSAMPLING = ("triangle", "nearest")


class SequenceOverflowError(ValueError):
    """A sparse sequence is longer than the configured maximum length."""


@dataclass(frozen=True)
class SparseCodec:
    """JPEG-style sparse DCT codec.

    Args:
      block_size: int. DCT block size S, one of 8, 16, 32.
      quality: int. IJG quality in [1, 100].
      clip: int. Quantized values are clipped to [−clip, clip]; V = 2·clip + 1.
      order: str. Channel order, "bands" (default, DC first) or "luma_first".
      value_encoding: str. "quantized" stores v, "dequantized" stores v·Q (clipped).
      resolution: int or None. Canvas side R (a multiple of 2S); None keeps image sizes.
      upsample: str. Chroma upsampling when decoding, "triangle" or "nearest".

    Attributes:
      dct_channels: C = 3·S².
      num_channels: channel vocabulary C + 1 (EOS included).
      eos: the EOS channel id, C.
      num_values: value vocabulary V = 2·clip + 1 (value_token = value + clip).
      num_positions: P = G² with G = R/S, or None without a resolution.
      grid: (G, G), or None without a resolution.

    Example:
      >>> codec = SparseCodec(block_size=8, quality=75, resolution=64)
      >>> triples = codec.encode(image)          # int32 [L, 3], EOS last
      >>> pixels = codec.decode(triples, 64, 64) # uint8 [64, 64, 3]
    """

    block_size: int = 8
    quality: int = 75
    clip: int = 1200
    order: str = "bands"
    value_encoding: str = "quantized"
    resolution: int | None = None
    upsample: str = "triangle"
    rank_to_raw: np.ndarray = field(init=False, repr=False, compare=False)
    raw_to_rank: np.ndarray = field(init=False, repr=False, compare=False)
    rank_table: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        s = check_block_size(self.block_size)
        check_quality(self.quality)
        if isinstance(self.clip, bool) or int(self.clip) != self.clip or self.clip < 1:
            raise ValueError(f"clip must be a positive integer, got {self.clip!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.value_encoding not in VALUE_ENCODINGS:
            raise ValueError(
                f"value_encoding must be one of {VALUE_ENCODINGS}, got {self.value_encoding!r}"
            )
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {self.upsample!r}")
        if self.resolution is not None and (
            int(self.resolution) != self.resolution
            or self.resolution < 2 * s
            or self.resolution % (2 * s)
        ):
            raise ValueError(
                f"resolution must be a positive multiple of 2·block_size = {2 * s}, "
                f"got {self.resolution!r}"
            )
        raw_table = np.concatenate(
            [
                quantization_table(self.quality, s).ravel(),
                quantization_table(self.quality, s, chroma=True).ravel(),
                quantization_table(self.quality, s, chroma=True).ravel(),
            ]
        )
        forward = rank_to_raw(self.order, s)
        object.__setattr__(self, "rank_to_raw", forward)
        object.__setattr__(self, "raw_to_rank", raw_to_rank(self.order, s))
        object.__setattr__(self, "rank_table", raw_table[forward].astype(np.int32))

    # ------------------------------------------------------------------ vocabularies

    @property
    def dct_channels(self) -> int:
        return 3 * self.block_size**2

    @property
    def num_channels(self) -> int:
        return self.dct_channels + 1

    @property
    def eos(self) -> int:
        return self.dct_channels

    @property
    def num_values(self) -> int:
        return 2 * self.clip + 1

    @property
    def max_magnitude(self) -> int:
        """The largest |stored value| any 8-bit image can reach before clipping (quantized,
        or v·Q under "dequantized"); `clip >= max_magnitude` means clipping never acts."""
        s = self.block_size
        bounds = [max_quantized_magnitude(self.quality, s, chroma=c) for c in (False, True)]
        if self.value_encoding == "dequantized":
            bounds = [b * quantization_table(self.quality, s, chroma=c)
                      for b, c in zip(bounds, (False, True), strict=True)]
        return int(max(b.max() for b in bounds))

    @property
    def grid(self) -> tuple | None:
        if self.resolution is None:
            return None
        g = self.resolution // self.block_size
        return (g, g)

    @property
    def num_positions(self) -> int | None:
        return None if self.grid is None else self.grid[0] * self.grid[1]

    def config(self) -> dict:
        """The settings, as stored beside encoded sequences."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    # ------------------------------------------------------------------ geometry

    def check_image(self, image, name: str = "image") -> np.ndarray:
        """Validate a uint8 [H, W, 3] array; errors name the input and the problem."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"{name}: expected an RGB array [H, W, 3], got shape {image.shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"{name}: expected dtype uint8, got {image.dtype}")
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            raise ValueError(f"{name}: image is empty (size {h}x{w})")
        unit = 2 * self.block_size
        if h < unit or w < unit:
            raise ValueError(
                f"{name}: image of {h}x{w} pixels is smaller than one {unit}x{unit} "
                f"macroblock (2·block_size with block_size={self.block_size})"
            )
        return image

    def canvas_grid(self, height: int, width: int) -> tuple:
        """(Gh, Gw) of the canvas that holds content of this size (after any resize)."""
        _, (hc, wc) = np_ops.canvas_size(height, width, None, self.block_size)
        if self.resolution is not None:
            hc = wc = self.resolution
        return (hc // self.block_size, wc // self.block_size)

    # ------------------------------------------------------------------ numpy path

    def content_pixels(self, image, name: str = "image") -> np.ndarray:
        """uint8 [h, w, 3]: the pixels a sequence stands for (the image after any resize)."""
        image = self.check_image(image, name)
        pixels, (h, w) = np_ops.canvas(image, self.resolution, self.block_size)
        return pixels[:h, :w]

    def encode_dense(self, image, name: str = "image") -> tuple:
        """uint8 [H, W, 3] -> (int32 [Gh, Gw, C] dense image, int32 [2] content (h, w))."""
        image = self.check_image(image, name)
        pixels, content = np_ops.canvas(image, self.resolution, self.block_size)
        return np_ops.image_to_dense(pixels, self), content

    def encode_with_size(self, image, name: str = "image") -> tuple:
        """uint8 [H, W, 3] -> (int32 [L, 3] triples with EOS, (h, w) content size)."""
        dense, content = self.encode_dense(image, name)
        return np_ops.dense_to_sparse(dense, self), (int(content[0]), int(content[1]))

    def encode(self, image, max_length: int | None = None, name: str = "image") -> np.ndarray:
        """uint8 [H, W, 3] -> int32 [L, 3] triples (channel, position, value_token), EOS last.

        Raises SequenceOverflowError when L exceeds max_length (nothing is truncated).
        """
        triples, _ = self.encode_with_size(image, name)
        self.check_length(triples.shape[0], max_length, name)
        return triples

    def round_trip(self, image, name: str = "image") -> np.ndarray:
        """uint8 [H, W, 3] -> uint8 [h, w, 3]: the image as its whole sequence decodes (what a
        model trained on this codec can at best draw). Same as `decode(encode(image), h, w)`
        without the sparse detour."""
        dense, content = self.encode_dense(image, name)
        return self.decode_dense(dense, int(content[0]), int(content[1]))

    def check_length(self, length: int, max_length: int | None, name: str = "sequence"):
        if max_length is not None and length > max_length:
            raise SequenceOverflowError(
                f"{name}: sparse sequence has {length} elements (EOS included), more than "
                f"max_length={max_length}; raise max_length or lower the quality"
            )

    def validate_triples(self, triples, grid: tuple) -> np.ndarray:
        """int [L, 3] -> int32 [L, 3], with a clear error for any out-of-range id."""
        triples = np.asarray(triples)
        if triples.ndim != 2 or triples.shape[-1] != 3:
            raise ValueError(f"triples must have shape [L, 3], got {triples.shape}")
        limits = {"channel": self.num_channels, "position": grid[0] * grid[1],
                  "value_token": self.num_values}
        for column, (name, limit) in enumerate(limits.items()):
            bad = np.flatnonzero((triples[:, column] < 0) | (triples[:, column] >= limit))
            if bad.size:
                i = int(bad[0])
                raise ValueError(
                    f"triple {i}: {name} {int(triples[i, column])} is outside [0, {limit})"
                )
        return triples.astype(np.int32)

    def decode_dense(self, dense: np.ndarray, height: int, width: int) -> np.ndarray:
        """int [Gh, Gw, C] -> uint8 [height, width, 3] (canvas cropped to the content)."""
        pixels = np_ops.dense_to_image(dense, self, self.upsample)
        return pixels[:height, :width]

    def decode(self, triples, height: int, width: int) -> np.ndarray:
        """Triples (any prefix of a sequence) -> uint8 [height, width, 3].

        height, width: the content size returned by `encode_with_size`.
        """
        grid = self.canvas_grid(height, width)
        triples = self.validate_triples(triples, grid)
        dense = np_ops.sparse_to_dense(triples, self, grid)
        return self.decode_dense(dense, height, width)

    # ------------------------------------------------------------------ TensorFlow path
    # TensorFlow is imported lazily: the numpy path (tools, tests' oracles) does not need the
    # seconds TF takes to load.

    def tf_canvas(self, image):
        """uint8 [H, W, 3] -> (uint8 [Hc, Wc, 3], int32 [2] content); see `tf_ops.canvas`."""
        from dctformer_tf.dct import tf_ops

        return tf_ops.canvas(image, self.resolution, self.block_size)

    def tf_encode_canvas(self, pixels, max_length: int, encoder: str = "auto"):
        """uint8 [..., Hc, Wc, 3] canvases -> (int32 [..., max_length, 3], int32 [...] L).

        L > max_length flags overflow (see `tf_check_length`). The encoder is the one
        `encoders.choose_encoder` gives for `encoder` and the canvases: a fast one for a
        static size, the float64 twin of the reference otherwise; all give the same
        sequences. A graph that is saved must use "ops", which needs no kernel library to
        load. None of them compiles under XLA (`jit_compile=True`): encode in the input
        pipeline or in a graph of its own.
        """
        import tensorflow as tf

        from dctformer_tf.dct.encoders import choose_encoder

        pixels = tf.convert_to_tensor(pixels)
        if pixels.shape.rank == 3:
            triples, length = self.tf_encode_canvas(pixels[None], max_length, encoder)
            return triples[0], length[0]
        static = pixels.shape[-3] is not None and pixels.shape[-2] is not None
        return choose_encoder(encoder, static_size=static).encode(pixels, self, max_length)

    def tf_check_length(self, length, max_length: int):
        """Raise InvalidArgumentError naming the length if any sequence overflowed."""
        import tensorflow as tf

        check = tf.debugging.assert_less_equal(
            length,
            tf.constant(max_length, length.dtype),
            message=(
                f"sparse sequence longer than max_length={max_length} (EOS included); "
                "raise max_length or lower the quality. Lengths"
            ),
            summarize=8,
        )
        with tf.control_dependencies([check]):  # in graphs the assert must gate the output
            return tf.identity(length)


def codec_round_trip(images, codec: SparseCodec) -> np.ndarray:
    """uint8 [N, h, w, 3] -> uint8 [N, h', w', 3]: each image as its whole DCT sequence
    decodes (`SparseCodec.round_trip`), the best a model trained on `codec` can draw it."""
    return np.stack([codec.round_trip(image) for image in np.asarray(images)])
