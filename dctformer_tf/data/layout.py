"""`SequenceLayout`, the ranges of a sparse sequence's numbers (docs/design.md §2.4), and
`Chunking`, how a run cuts its sequences (§2).

Plain Python and numpy, so that every backend and the numpy input path can use it.
"""

import dataclasses
import math

import numpy as np


def start_triple(num_channels: int, num_positions: int, num_values: int) -> tuple[int, int, int]:
    """The START triple that precedes the first element of a sequence in decoder inputs.

    Decoder inputs are the window triples shifted right by one; at sequence start the first
    input is this triple. Its ids lie just past the target vocabularies, so the input
    embeddings have `C + 2` channel ids (`C` = EOS, `C + 1` = START), `P + 1` position ids
    (`P` = START) and `V + 1` value ids (`V` = START).

    Args:
        num_channels: int. Number of DCT channels `C = 3 * S**2` (EOS excluded).
        num_positions: int. Number of positions `P = G**2`.
        num_values: int. Value vocabulary `V = 2 * clip + 1`.

    Returns:
        `(C + 1, P, V)`: channel, position and value_token ids of the START triple.
    """
    return num_channels + 1, num_positions, num_values


@dataclasses.dataclass(frozen=True)
class SequenceLayout:
    """The ranges of a sparse sequence's numbers, from the three settings that fix them.

    It stands in for a `SparseCodec` where only these matter (packing, the dense scatter of
    `expansion.scatter_dense`), so that a model, which knows `block_size`, `grid_size` and
    `clip` but not the quality, can unpack its batches.

    Args:
      block_size: int. DCT block size S.
      grid_size: int. Luma block grid side G.
      clip: int. Largest quantized magnitude.
    """

    block_size: int
    grid_size: int
    clip: int

    @classmethod
    def of_codec(cls, codec) -> "SequenceLayout":
        if codec.grid is None:
            raise ValueError("a compact sequence needs a codec with a resolution (static grid)")
        return cls(codec.block_size, codec.grid[0], codec.clip)

    @property
    def dct_channels(self) -> int:
        return 3 * self.block_size**2

    @property
    def eos(self) -> int:
        return self.dct_channels

    @property
    def num_positions(self) -> int:
        return self.grid_size**2

    @property
    def num_values(self) -> int:
        return 2 * self.clip + 1

    @property
    def grid(self) -> tuple:
        return (self.grid_size, self.grid_size)

    @property
    def position_bits(self) -> int:
        return max(1, (self.num_positions - 1).bit_length())

    @property
    def value_bits(self) -> int:
        return max(1, (self.num_values - 1).bit_length())

    @property
    def bytes_per_element(self) -> int:
        bits = self.position_bits + self.value_bits
        if bits > 31:  # unpacked in int32 arithmetic
            raise ValueError(f"positions ({self.num_positions}) and values ({self.num_values}) "
                             "need more than 31 bits per element")
        return -(-bits // 8)

    @property
    def count_dtype(self) -> str:
        """The dtype of the per-channel counts: a count never exceeds P."""
        return "int16" if self.num_positions <= np.iinfo(np.int16).max else "int32"


@dataclasses.dataclass(frozen=True)
class Chunking:
    """How a run cuts its sequences: the one setting that the data, the model's window, the
    sampler, likelihood scoring and export all share (docs/design.md §2).

    Args:
      chunk_size: int. Target elements per chunk (paper: 896).
      overlap: int. Context elements before the targets of a chunk (paper: 128).
    """

    chunk_size: int
    overlap: int

    def __post_init__(self):
        if isinstance(self.chunk_size, bool) or int(self.chunk_size) != self.chunk_size \
                or self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if isinstance(self.overlap, bool) or int(self.overlap) != self.overlap \
                or self.overlap < 0:
            raise ValueError(f"overlap must be a non-negative integer, got {self.overlap!r}")

    @property
    def window(self) -> int:
        """Decoder window `T = chunk_size + overlap`."""
        return self.chunk_size + self.overlap


@dataclasses.dataclass(frozen=True)
class ChunkPolicy:
    """Which chunks of which sequences training sees (`build_chunks.*` in gin): the chunk law
    and the length filter, shared by the tf.data input (`chunking.chunk_dataset`) and the
    numpy one (`numpy_input.NumpyChunkBatches`).

    Args:
      p_min, power: float. Chunk law `P(k) ∝ max((k+1)^−power, p_min)` (paper: 0.1, 3).
      l_max: int or None. Length filter: a sequence of length L yields an example with
        probability `min(1, L / l_max)` (paper Eq. 11); None: no filter.
      shuffle_buffer: int. Examples in the shuffle buffer; 0: no shuffle. The examples of one
        sequence arrive together, so it should be several times `examples_per_encode` larger
        than the batch.
      loss_from_channel: int. Only targets of channel >= this carry loss, EOS always does
        (super-resolution / colorization fine-tuning, `gin/runs/*_shapes.gin`).
      examples_per_encode: int. r, the mean examples one encoded sequence yields before the
        length filter; 1 is the paper's one chunk per sequence.
    """

    p_min: float = 0.1
    power: float = 3.0
    l_max: int | None = None
    shuffle_buffer: int = 1024
    loss_from_channel: int = 0
    examples_per_encode: int = 1

    def __post_init__(self):
        for name in ("p_min", "power"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value <= 0:
                raise ValueError(f"build_chunks.{name} must be a positive finite number, "
                                 f"got {value!r}")
        if self.l_max is not None and (isinstance(self.l_max, bool) or self.l_max <= 0):
            raise ValueError("build_chunks.l_max must be a positive length (or None to "
                             f"disable), got {self.l_max!r}")
        for name, least in (("shuffle_buffer", 0), ("loss_from_channel", 0),
                            ("examples_per_encode", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < least:
                raise ValueError(f"build_chunks.{name} must be an integer >= {least}, "
                                 f"got {value!r}")
