"""The fast encoder's plan: what `np_fast` and `tf_fast` share (docs/design.md §1.10).

The fast encoder computes the same sequences as `np_ops` (the float64 reference) with float32
arithmetic, which is fast, and a guard band, which keeps it exact: every coefficient whose
float32 value lies closer to a rounding boundary than the float32 error can reach is
recomputed in float64 from its pixels. Everything else rounds the same in float32 as in
float64, so the sequences equal the reference's whatever order either twin sums in.

The plan holds, built once per codec and canvas size in numpy:
  - the float32 DCT matrix and, per component, the rows of its S² coefficients in sequence
    (rank) order, their reciprocal quantization steps and guard bands;
  - the layout of the *flat* vector: each channel's plane (P luma positions, or P/4 chroma
    positions) in sequence order, cut in segments of P/4 entries. A row-major scan of its
    non-zeros lists the sequence in order, so compaction needs no sort and never visits
    the zero chroma cells of the dense image;
  - the float64 row/column weights of the exact recomputation of one coefficient from the
    2S x 2S macroblock of pixels that holds its block.

Letters: S block size, Gh x Gw luma block grid, P = Gh·Gw, F = 3/2·S²·P flat entries.
"""

import functools
from dataclasses import dataclass

import numpy as np

from dctformer_tf.dct import np_ops
from dctformer_tf.dct.tables import dct_matrix

# Unit roundoff of float32.
UNIT_ROUNDOFF = 2.0**-24
# Marks a guarded (near-tie) coefficient in the float32 result; no quantized value reaches it.
UNSAFE = -32768
# The guard band is this many times the proven float32 error bound.
GUARD_MARGIN = 2.0
# Kinds of row/column weights in the exact recomputation (index into `exact_weights`).
LUMA_EVEN, LUMA_ODD, CHROMA = 0, 1, 2


@dataclass(frozen=True, eq=False)
class FastPlan:
    """Tables of the fast encoder for one codec and one canvas grid.

    Attributes:
      block_size: S.
      grid: (Gh, Gw) luma block grid (both even).
      dct: float32 [S, S], the orthonormal DCT-II matrix A; dct64 the same in float64.
      colour: float32 [3, 3], RGB -> level-shifted YCbCr (rows Y, Cb, Cr).
      rows: int32 [3, S²]: for component k, the in-block index u·S + v of each of its
        coefficients, in sequence order.
      component_step: float64 [3, S²]: the quantization step of those coefficients.
      inv_step: float32 [3, S²]: its reciprocal.
      guard: float32 [3, S²]: the guard band of those coefficients, in quantized units.
      flat_size: F.
      segment: P/4. The flat vector is a sequence of F / segment = 6·S² segments of P/4
        entries, each inside one channel's plane (a chroma plane is one segment, a luma
        plane four).
      segment_source: int32 [6·S²]: where each segment comes from in the stack of the
        components' planes cut in segments: Y rows (4 segments each), then Cb, then Cr rows.
      segment_channel: int32 [6·S²]: the channel id of each segment.
      segment_start: int32 [6·S²]: the position of a luma segment's first entry, or
        −1 for chroma.
      chroma_position: int32 [P/4]: the position (on the luma grid, cell (2i, 2j)) of each
        entry of a chroma plane.
      component: int32 [C]: the component (0 Y, 1 Cb, 2 Cr) of each channel id.
      exact_weights: float64 [3, S, 2S]: row (or column) weights of coefficient frequency u
        over a 2S macroblock, for a luma block in the even half, the odd half, or chroma.
      colour64: float64 [3, 3], the reference's colour matrix.
      step: float64 [C]: quantization step of each channel id.
      raw: int32 [C]: raw index k·S² + u·S + v of each channel id.
    """

    block_size: int
    grid: tuple
    dct: np.ndarray
    dct64: np.ndarray
    colour: np.ndarray
    rows: np.ndarray
    component_step: np.ndarray
    inv_step: np.ndarray
    guard: np.ndarray
    flat_size: int
    segment: int
    segment_source: np.ndarray
    segment_channel: np.ndarray
    segment_start: np.ndarray
    chroma_position: np.ndarray
    component: np.ndarray
    exact_weights: np.ndarray
    colour64: np.ndarray
    step: np.ndarray
    raw: np.ndarray


@functools.lru_cache(maxsize=32)
def fast_plan(codec, grid: tuple) -> FastPlan:
    """The plan for `codec` on a canvas of (Gh, Gw) luma blocks (Gh, Gw even)."""
    s, s2 = codec.block_size, codec.block_size**2
    gh, gw = int(grid[0]), int(grid[1])
    if gh % 2 or gw % 2:
        raise ValueError(f"the block grid must be even in both axes, got {gh}x{gw}")
    raw = codec.rank_to_raw.astype(np.int32)  # [C]
    component = raw // s2
    rows = np.stack([raw[component == k] % s2 for k in range(3)]).astype(np.int32)  # [3, S²]
    step = codec.rank_table.astype(np.float64)  # [C] quantization step per channel id
    steps = np.stack([step[component == k] for k in range(3)])  # [3, S²]
    segment = gh * gw // 4
    source, channel, start = _segments(raw, rows, segment)
    cells = np.arange(gh * gw // 4)
    chroma_position = 2 * (cells // (gw // 2)) * gw + 2 * (cells % (gw // 2))
    return FastPlan(
        block_size=s,
        grid=(gh, gw),
        dct=dct_matrix(s).astype(np.float32),
        dct64=dct_matrix(s),
        colour=np_ops.RGB_TO_YCBCR.astype(np.float32),
        rows=rows,
        component_step=steps,
        inv_step=(1.0 / steps).astype(np.float32),
        guard=_guard_band(s, rows, steps),
        flat_size=6 * s2 * segment,
        segment=segment,
        segment_source=source,
        segment_channel=channel,
        segment_start=start,
        chroma_position=chroma_position.astype(np.int32),
        component=component.astype(np.int32),
        exact_weights=_exact_weights(s),
        colour64=np_ops.RGB_TO_YCBCR,
        step=step,
        raw=raw,
    )


def plan_for(pixels, codec) -> FastPlan:
    """The plan for canvases [..., H, W, 3] of static size (an array, or a tensor)."""
    h, w = pixels.shape[-3], pixels.shape[-2]
    if h is None or w is None:
        raise ValueError("the fast encoder needs canvases of static size; set a resolution")
    return fast_plan(codec, (h // codec.block_size, w // codec.block_size))


def _guard_band(s: int, rows: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """float32 [3, S²]: a bound on |float32 − exact| of each quantized coefficient, x margin.

    Level-shifted samples are at most 128 in magnitude and the colour rows have L1 norm
    ≤ 1, so a colour plane is off by at most 4u·128 (3 products, 2 sums, rounded
    constants; u = 2^-24), a chroma 2x2 mean by 3u·128 more. Each of the two DCT passes sums
    S products of rounded weights, adding (S + 1)u relative to the sum of magnitudes, and
    scales earlier errors by the row's L1 norm ‖A[u]‖₁. So the coefficient (u, v) is off by
    at most ‖A[u]‖₁‖A[v]‖₁·128·u·(7 + 2(S + 1)) before the multiply by 1/Q, which adds
    2u of the value (≤ 128‖A[u]‖₁‖A[v]‖₁/Q). The bound holds in any summation order and
    with or without fused multiply-adds, so it covers BLAS, Eigen and XLA alike.
    """
    norms = np.abs(dct_matrix(s)).sum(axis=1)  # [S] ‖A[u]‖₁
    peak = 128.0 * (norms[:, None] * norms[None, :]).ravel()  # [S²] max |coefficient|
    relative = UNIT_ROUNDOFF * (7 + 2 * (s + 1) + 2)
    # ROUND_EPS: the reference rounds up from 0.5 − ROUND_EPS, not from 0.5.
    return (GUARD_MARGIN * relative * peak[rows] / steps + np_ops.ROUND_EPS).astype(np.float32)


def _segments(raw: np.ndarray, rows: np.ndarray, segment: int) -> tuple:
    """int32 [6·S²] source, channel id and luma start position of each segment (in order)."""
    s2 = rows.shape[1]
    source, channel, start = [], [], []
    for c, index in enumerate(raw):
        k, row = index // s2, int(np.flatnonzero(rows[index // s2] == index % s2)[0])
        quarters = range(4) if k == 0 else [None]
        for quarter in quarters:
            source.append(4 * row + quarter if k == 0 else 4 * s2 + (k - 1) * s2 + row)
            channel.append(c)
            start.append(quarter * segment if k == 0 else -1)
    return tuple(np.array(x, np.int32) for x in (source, channel, start))


def _exact_weights(s: int) -> np.ndarray:
    """float64 [3, S, 2S]: weights of frequency u over the 2S samples of a macroblock side.

    Luma blocks fill one half of the macroblock (even or odd block index); chroma averages
    sample pairs (the 2x2 mean is ½ per axis) before its DCT.
    """
    a = dct_matrix(s)
    weights = np.zeros((3, s, 2 * s))
    weights[LUMA_EVEN, :, :s] = a
    weights[LUMA_ODD, :, s:] = a
    weights[CHROMA] = np.repeat(a, 2, axis=1) / 2.0
    return weights
