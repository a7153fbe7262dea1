"""Validity masks of the sampler: only triples a real sequence can contain (docs/design.md §5).

A sparse sequence lists the non-zero coefficients sorted by channel, then position (docs/design.md §1.8),
so given the previous element `(c', p')`:
- channel: `c >= c'`, and `c = c'` only if channel `c'` still has a valid position after
  `p'`; EOS (`C`) is always allowed (and is the only choice at the last slot of the buffer);
- position: inside the requested content area; chroma channels only at even/even cells
  (chroma block (i, j) lives at cell (2i, 2j)); within the same channel, `p > p'`;
- value: never the zero token (`clip`, i.e. v = 0): zeros are not stored.
At sequence start there is no previous element (`c' = p' = −1`).

All functions take int32 tensors with a leading batch dimension B and return bool masks.
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from dctformer_tf.dct.order import channel_components


@dataclass(frozen=True)
class MaskGeometry:
    """What the masks need to know about a codec (static numpy tables).

    Attributes:
      grid: G, the side of the (square) block grid; P = G².
      eos: the EOS channel id C.
      zero_token: the value token of v = 0 (= clip).
      num_values: V.
      is_chroma: bool [C], channel id -> chroma component.
    """

    grid: int
    eos: int
    zero_token: int
    num_values: int
    is_chroma: np.ndarray

    @classmethod
    def from_codec(cls, codec):
        if codec.grid is None:
            raise ValueError("sampling needs a codec with a resolution (a fixed block grid)")
        return cls(
            grid=codec.grid[0],
            eos=codec.eos,
            zero_token=codec.clip,
            num_values=codec.num_values,
            is_chroma=channel_components(codec.order, codec.block_size) > 0,
        )

    @property
    def num_positions(self) -> int:
        return self.grid * self.grid


def content_cells(content_hw, block_size: int) -> tf.Tensor:
    """int [B, 2] content size in pixels -> int32 [B, 2] rows/cols of blocks it covers."""
    content_hw = tf.cast(content_hw, tf.int32)
    return (content_hw + block_size - 1) // block_size


def position_allowed(geometry: MaskGeometry, cells, channel) -> tf.Tensor:
    """bool [B, P]: positions that may hold a coefficient of `channel [B]` (content area,
    chroma at even/even cells), ignoring the previous element. `cells`: int32 [B, 2]."""
    g = geometry.grid
    row = tf.range(geometry.num_positions) // g  # [P]
    col = tf.range(geometry.num_positions) % g
    inside = (row[None] < cells[:, :1]) & (col[None] < cells[:, 1:])  # [B, P]
    chroma = tf.gather(tf.constant(geometry.is_chroma), tf.minimum(channel, geometry.eos - 1))
    even = (row % 2 == 0) & (col % 2 == 0)  # [P]
    return inside & (~chroma[:, None] | even[None])


def last_allowed_position(geometry: MaskGeometry, cells) -> tf.Tensor:
    """int32 [B, C]: the largest valid position of each channel in the content area."""
    g = geometry.grid
    last_row, last_col = cells[:, 0] - 1, cells[:, 1] - 1  # [B]
    luma = last_row * g + last_col
    chroma = (last_row - last_row % 2) * g + (last_col - last_col % 2)
    is_chroma = tf.constant(geometry.is_chroma)[None, :]  # [1, C]
    return tf.where(is_chroma, chroma[:, None], luma[:, None])


def channel_allowed(geometry: MaskGeometry, cells, previous_channel, previous_position,
                    last_slot, min_channel=None) -> tf.Tensor:
    """bool [B, C + 1]: channels allowed after `(previous_channel, previous_position)`.

    Args:
      cells: int32 [B, 2] content cells.
      previous_channel, previous_position: int32 [B], −1 at sequence start.
      last_slot: bool [B], the element is the last the sequence buffer holds: only EOS.
      min_channel: int32 [B] or None. Channels below it are never drawn (EOS stays allowed):
        after a forced prefix that owns channels 0 … min_channel − 1 (super-resolution,
        colorization), where the prefix lists only their non-zero terms and the ordering
        rule alone would let the model add more.
    """
    channels = tf.range(geometry.eos + 1)[None, :]  # [1, C + 1]
    prev_c = previous_channel[:, None]
    # The previous channel stays open while a valid position after p' remains in it.
    last = last_allowed_position(geometry, cells)  # [B, C]
    # Clamped: after EOS (finished samples) nothing is drawn, but the gather must be valid.
    prev_index = tf.clip_by_value(previous_channel, 0, geometry.eos - 1)
    prev_last = tf.gather(last, prev_index, batch_dims=1)  # [B]
    same_open = (previous_channel >= 0) & (previous_position < prev_last)
    allowed = (channels > prev_c) | ((channels == prev_c) & same_open[:, None])
    if min_channel is not None:
        allowed &= channels >= min_channel[:, None]
    eos = channels == geometry.eos
    return tf.where(last_slot[:, None], eos, allowed | eos)


def position_allowed_after(geometry: MaskGeometry, cells, channel, previous_channel,
                           previous_position) -> tf.Tensor:
    """bool [B, P]: positions allowed for this element's `channel [B]` after the previous
    element: valid for the channel, and after `previous_position` in the same channel. For
    EOS only position 0 (EOS is written `(C, 0, 0)`)."""
    positions = tf.range(geometry.num_positions)[None, :]
    allowed = position_allowed(geometry, cells, channel)
    same = (channel == previous_channel)[:, None]
    allowed &= ~same | (positions > previous_position[:, None])
    is_eos = (channel == geometry.eos)[:, None]
    return tf.where(is_eos, positions == 0, allowed)


def value_allowed(geometry: MaskGeometry, channel) -> tf.Tensor:
    """bool [B, V]: every value token but zero; for EOS only token 0 (`(C, 0, 0)`)."""
    tokens = tf.range(geometry.num_values)[None, :]
    is_eos = (channel == geometry.eos)[:, None]
    return tf.where(is_eos, tokens == 0, tokens != geometry.zero_token)


def check_triples_valid(geometry: MaskGeometry, triples: np.ndarray, content_hw,
                        block_size: int) -> None:
    """numpy check of a whole sequence against the rules above (for tests and prefixes).

    Raises ValueError naming the first offending element.
    """
    rows, cols = ((np.asarray(content_hw) + block_size - 1) // block_size).tolist()
    previous = (-1, -1)
    for i, (c, p, v) in enumerate(np.asarray(triples).tolist()):
        if c == geometry.eos:
            if (p, v) != (0, 0):
                raise ValueError(f"element {i}: EOS must be ({c}, 0, 0), got ({c}, {p}, {v})")
            return
        r, q = divmod(p, geometry.grid)
        problem = None
        if not 0 <= c < geometry.eos:
            problem = f"channel {c} outside [0, {geometry.eos}]"
        elif c < previous[0] or (c == previous[0] and p <= previous[1]):
            problem = f"({c}, {p}) does not follow the previous element {previous}"
        elif not (0 <= r < rows and 0 <= q < cols):
            problem = f"position {p} (cell {r},{q}) outside the content area {rows}x{cols}"
        elif geometry.is_chroma[c] and (r % 2 or q % 2):
            problem = f"chroma channel {c} at odd cell ({r},{q})"
        elif not 0 <= v < geometry.num_values or v == geometry.zero_token:
            problem = f"value token {v} is zero or outside [0, {geometry.num_values})"
        if problem:
            raise ValueError(f"element {i}: {problem}")
        previous = (c, p)
