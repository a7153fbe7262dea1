"""`SequenceLayout`, the ranges of a sparse sequence's numbers (docs/design.md §2.4), and
`Chunking`, how a run cuts its sequences (§2).

Plain Python and numpy, so that every backend and the numpy input path can use it.
"""

import dataclasses

import numpy as np


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
