"""Compact training batches in numpy, without TensorFlow (docs/design.md §2.5).

GPU hosts that have JAX and no TensorFlow train under Keras' JAX backend, with `model.fit`
on batches of numpy arrays. This module makes there the batches that
`chunking.chunk_dataset` makes from `pipeline.encode_dataset` sequences, in the same compact
format (`compact.py`), from the same images, with the same encoder arithmetic:

    shapes seeds -> render (`shapes.shapes_arrays`)      uint8 [b, R, R, 3] per block
      -> numpy fast encoder (`dct.np_fast`)              int32 [b, max_length, 3], L [b]
      -> over-long policy ("error" names the image)
      -> examples per sequence (Eq. 11 and r)            counts [b]
      -> pack the kept sequences                         uint8 [n, max_length, bytes]
      -> chunk index and bounds per example              int32 [m]
      -> shuffle buffer -> batches (drop remainder)      dicts of numpy arrays

Each function is the numpy twin of the TensorFlow one of the same name (`compact.py`,
`chunking.py`): packing is byte-identical, encoded sequences are identical, and the random
choices (length filter, examples per encode, chunk index, shuffle) follow the same laws from
a numpy `Generator`, so the batches have the same distribution but not the same draws.

The stream is cut into blocks of `encode_batch_size` images; block j of pass e draws its
randomness from the seed `[seed, e, j]`, so worker processes can encode blocks in any order
and the batches depend on the seed only, not on the number of workers.

Imports numpy, the standard library, `dctformer_tf.dct` and the TensorFlow-free modules of
this package only (tested in a fresh interpreter).

Letters: B batch, b images per block, n kept sequences, m examples, L_max = max_length,
C channels.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import multiprocessing
import os

import numpy as np

from dctformer_tf.data.layout import SequenceLayout
from dctformer_tf.data.shapes import shapes_arrays, split_seed_range
from dctformer_tf.dct import SequenceOverflowError, SparseCodec, np_fast, np_ops

ON_OVERFLOW = ("error", "skip")
BATCH_KEYS = ("packed", "channel_counts", "length", "content_hw", "label", "chunk_index",
              "chunk_start", "chunk_end", "window_start", "loss_from_channel", "loss_tokens")
# The int32 fields of an example, in the order of its row in `_Example.row`.
_ROW_KEYS = ("length", "content_hw", "label", "chunk_index", "chunk_start", "chunk_end",
             "window_start", "loss_from_channel", "loss_tokens")
# Canvas pixels per encode call: where `np_fast.encode_canvas` is fastest per image on
# shapes canvases (its arrays stay in cache); at most 64 images.
_ENCODE_PIXELS = 2**17
# What BLAS libraries read when numpy loads. A worker process is one core's worth of work:
# BLAS threads in every worker would contend for the same cores (the encoder's small
# matrix products ran 2.6x slower so on a 2-core host).
_ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1"}

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# packing (twin of compact.py)


def pack_sequences(triples, length, layout: SequenceLayout) -> dict:
    """Sequences in compact form: `compact.pack_sequence` on each row, byte for byte.

    Args:
      triples: int [B, L_max, 3] (zero after EOS).
      length: int [B], EOS included.
      layout: the sequences' `SequenceLayout`.
    Returns:
      {"packed": uint8 [B, L_max, layout.bytes_per_element] (the little-endian bytes of
       `token·2^position_bits + position`, zero at EOS and after),
       "channel_counts": layout.count_dtype [B, C] (EOS not counted),
       "length": int32 [B]}.
    """
    triples = np.asarray(triples)
    length = np.asarray(length, np.int32)
    batch, max_length, _ = triples.shape
    channels = layout.dct_channels
    n = np.clip(length - 1, 0, max_length)  # coefficients: EOS and padding excluded
    # Only the columns that hold a coefficient are worked on: a sequence fills a fraction
    # of its buffer.
    used = triples[:, :int(n.max(initial=0))]  # [B, W, 3]
    coefficient = np.arange(used.shape[1])[None, :] < n[:, None]  # [B, W]
    word = used[..., 2].astype(np.int64) * (1 << layout.position_bits) + used[..., 1]
    word = np.where(coefficient, word, 0).astype("<u4")  # explicit byte order: any host
    packed = np.zeros((batch, max_length, layout.bytes_per_element), np.uint8)
    packed[:, :used.shape[1]] = word[..., None].view(np.uint8)[..., :layout.bytes_per_element]
    # One bincount over (row, channel) pairs counts every row's channels at once.
    flat = (np.arange(batch)[:, None] * channels + used[..., 0])[coefficient]
    counts = np.bincount(flat, minlength=batch * channels).reshape(batch, channels)
    return {"packed": packed, "channel_counts": counts.astype(layout.count_dtype),
            "length": length}


def pack_sequence(triples, length, layout: SequenceLayout) -> dict:
    """One sequence in compact form, as `compact.pack_sequence`.

    Args:
      triples: int [L_max, 3]; length: int, EOS included.
    Returns:
      {"packed": uint8 [L_max, bytes], "channel_counts": layout.count_dtype [C],
       "length": int32 []}.
    """
    packed = pack_sequences(np.asarray(triples)[None], [length], layout)
    return {key: value[0] for key, value in packed.items()}


def prefix_elements(channel_counts, loss_from_channel) -> np.ndarray:
    """int32 [...]: elements whose channel is below `loss_from_channel` (they come first).

    Args:
      channel_counts: int [..., C].
      loss_from_channel: int, or int [...].
    """
    counts = np.asarray(channel_counts, np.int32)
    below = np.arange(counts.shape[-1]) < np.asarray(loss_from_channel)[..., None]
    return np.where(below, counts, 0).sum(axis=-1, dtype=np.int32)


# ---------------------------------------------------------------------------------------------
# chunk law and bounds (twins of chunking.py)


def num_chunks(length, chunk_size: int) -> np.ndarray:
    """`ceil(L / chunk_size)`: chunks in a sequence of `length` elements (EOS included)."""
    return (np.asarray(length, np.int64) + chunk_size - 1) // chunk_size


def sample_chunk_index(length, chunk_size: int, p_min: float, power: float,
                       rng: np.random.Generator) -> np.ndarray:
    """One chunk index per length, `P(k) ∝ max((k+1)^−power, p_min)` over
    `k < ceil(L / chunk_size)`.

    Args:
      length: int [...] L >= 1, EOS included.
      rng: the draws' generator (one uniform per length).
    Returns:
      int32 [...].
    """
    n = num_chunks(length, chunk_size)
    if n.size == 0:
        return np.zeros(n.shape, np.int32)
    if n.min() < 1:
        raise ValueError(f"sequence lengths must be at least 1 (EOS), got {int(n.min())} chunks")
    # The weights do not depend on L, only how many of them count: one cumulative table,
    # cut at each sequence's last chunk by its total.
    weights = np.maximum((np.arange(n.max()) + 1.0) ** -power, p_min)  # [K]
    cumulative = np.cumsum(weights)
    draw = rng.random(n.shape) * cumulative[n - 1]
    index = np.searchsorted(cumulative, draw, side="right")
    return np.minimum(index, n - 1).astype(np.int32)  # a draw rounded up to the total


def length_filter_keep_probability(length, l_max) -> np.ndarray:
    """Eq. 11: keep a sequence of length L with probability `min(1, L / L_max)`: float64 [...]."""
    if not l_max or l_max <= 0:
        raise ValueError(f"l_max must be a positive length (or None to disable), got {l_max!r}")
    return np.minimum(1.0, np.asarray(length, np.float64) / float(l_max))


def examples_from_sequence(length, l_max, examples_per_encode: int,
                           rng: np.random.Generator) -> np.ndarray:
    """int32 [...]: training examples per encoded sequence, as `chunking.examples_from_sequence`:
    `floor(r·q)` plus one with probability `frac(r·q)`, `q = min(1, L / l_max)` (1 without
    an l_max), so the mean is `r·q`.

    Args:
      length: int [...]; examples_per_encode: r >= 1; rng: one uniform per length.
    """
    length = np.asarray(length)
    q = np.ones(length.shape) if l_max is None else length_filter_keep_probability(length, l_max)
    mean = examples_per_encode * q
    whole = np.floor(mean)
    return (whole + (rng.random(length.shape) < mean - whole)).astype(np.int32)


def chunk_bounds(length, chunk_index, chunk_size: int, overlap: int) -> tuple:
    """Where chunk k lies in its sequence (`chunking.chunk_bounds`), elementwise.

    Args:
      length: int [...] L; chunk_index: int [...] k with k·chunk_size < L.
    Returns:
      (chunk_start, chunk_end, window_start), each int32 [...].
    """
    length = np.asarray(length, np.int32)
    chunk_start = np.asarray(chunk_index, np.int32) * np.int32(chunk_size)
    if np.any(chunk_start >= length):
        raise ValueError("chunk_index must satisfy chunk_index·chunk_size < length; got "
                         f"chunk_start {chunk_start.tolist()} for length {length.tolist()}")
    chunk_end = np.minimum(chunk_start + chunk_size, length)
    window_start = np.maximum(chunk_start - overlap, 0).astype(np.int32)
    return chunk_start, chunk_end, window_start


def compact_examples(packed: dict, chunk_index, chunk_size: int, overlap: int,
                     loss_from_channel: int = 0) -> dict:
    """Examples in compact form, `chunking.compact_example` with a leading axis.

    Args:
      packed: dict of arrays [M, ...] with at least "length" int [M] and
        "channel_counts" int [M, C] (`pack_sequences`' keys plus "content_hw", "label").
      chunk_index: int [M].
    Returns:
      packed's keys plus int32 [M] "chunk_index", "chunk_start", "chunk_end",
      "window_start", "loss_from_channel" and "loss_tokens".
    """
    chunk_start, chunk_end, window_start = chunk_bounds(packed["length"], chunk_index,
                                                        chunk_size, overlap)
    # Channels never decrease: the first `prefix` elements are exactly those below
    # loss_from_channel, so the loss tokens are the chunk's elements past that prefix.
    prefix = prefix_elements(packed["channel_counts"], loss_from_channel)
    loss_tokens = np.maximum(chunk_end - np.maximum(chunk_start, prefix), 0)
    return {**packed, "chunk_index": np.asarray(chunk_index, np.int32),
            "chunk_start": chunk_start, "chunk_end": chunk_end, "window_start": window_start,
            "loss_from_channel": np.full(chunk_start.shape, loss_from_channel, np.int32),
            "loss_tokens": loss_tokens.astype(np.int32)}


# ---------------------------------------------------------------------------------------------
# encoding (twin of pipeline.encode_dataset)


def encode_images(images, codec: SparseCodec, max_length: int) -> dict:
    """Images of one size -> padded sparse sequences, as `encode_dataset` encodes them.

    Canvas-sized images go to the encoder as they are, others are placed on their canvas
    first (`np_ops.canvas`, the twin of the tf.data graph's `tf_ops.canvas`).

    Args:
      images: uint8 [B, H, W, 3].
      codec: a `SparseCodec` with a resolution.
      max_length: the sequence buffer (EOS included).
    Returns:
      {"triples": int32 [B, max_length, 3] (zero after EOS), "length": int32 [B],
       "content_hw": int32 [B, 2]}. A length over `max_length` marks an over-long sequence,
      whose triples are cut (`fitting` applies the policy).
    """
    _check_codec(codec)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [B, H, W, 3], got {images.dtype} {images.shape}")
    r = codec.resolution
    if images.shape[1:3] == (r, r):
        content = np.full((len(images), 2), r, np.int32)
    else:
        placed = [np_ops.canvas(image, r, codec.block_size) for image in images]
        images = np.stack([pixels for pixels, _ in placed]).reshape(-1, r, r, 3)
        content = np.stack([hw for _, hw in placed]).reshape(-1, 2).astype(np.int32)
    triples, length = np_fast.encode_canvas(images, codec, max_length)
    return {"triples": triples, "length": length, "content_hw": content}


def fitting(length, names, max_length: int, on_overflow: str = "error") -> np.ndarray:
    """bool [B]: which sequences fit in `max_length`, under `encode_dataset`'s policy.

    Args:
      length: int [B]; names: B image names, for the error.
      on_overflow: "error" raises SequenceOverflowError naming every over-long image and its
        length; "skip" only reports them in the mask.
    """
    if on_overflow not in ON_OVERFLOW:
        raise ValueError(f"on_overflow must be one of {ON_OVERFLOW}, got {on_overflow!r}")
    keep = np.asarray(length) <= max_length
    if on_overflow == "error" and not keep.all():
        over = ", ".join(f"{names[i]} ({int(length[i])})" for i in np.flatnonzero(~keep))
        raise SequenceOverflowError(
            f"sparse sequence longer than max_length={max_length} (EOS included); raise "
            f"max_length, lower the quality or skip such images (on_overflow='skip'). "
            f"Images (lengths): {over}")
    return keep


def shapes_names(split: str, start: int, num: int) -> list[str]:
    """The names `sources.shapes_dataset` gives examples `start ... start + num − 1`."""
    first, end = split_seed_range(split, num, start)
    return [f"shapes/{split}/{seed}" for seed in range(first, end)]


def encode_shapes(codec: SparseCodec, max_length: int, split: str = "train",
                  num_examples: int = 1, start: int = 0, image_size: int = 64,
                  on_overflow: str = "error") -> dict:
    """`encode_dataset(get_source("shapes", split, num_examples=..., start=..., size=...),
    codec, max_length, on_overflow=...)` in numpy, stacked.

    Args:
      on_overflow: "error" raises SequenceOverflowError naming each over-long image;
        "skip" keeps its row, with "fits" False, for the caller to drop and report.
    Returns:
      {"triples": int32 [N, max_length, 3], "length": int32 [N], "content_hw": int32 [N, 2],
       "label": int32 [N], "fits": bool [N]}.
    """
    images, labels = shapes_arrays(split, num_examples, start, image_size)
    encoded = encode_images(images, codec, max_length)
    fits = fitting(encoded["length"], shapes_names(split, start, num_examples), max_length,
                   on_overflow)
    return {**encoded, "label": labels, "fits": fits}


def _check_codec(codec) -> None:
    if not isinstance(codec, SparseCodec):
        raise TypeError(f"codec must be a SparseCodec, got {type(codec).__name__}")
    if codec.resolution is None:
        raise ValueError("the numpy input path needs a codec with a resolution (a static "
                         f"grid), got resolution=None in {codec}")


# ---------------------------------------------------------------------------------------------
# the batch stream


class _Example(collections.namedtuple("_Example", ["packed", "channel_counts", "row"])):
    """One compact example in the shuffle buffer: its sequence's uint8 [L_max, bytes] and
    [C] counts (shared by the examples of one encode) and int32 [10] of `_ROW_KEYS`."""

    __slots__ = ()


class NumpyChunkBatches:
    """Endless compact training batches of the `shapes` data, in numpy: what
    `chunk_dataset(encode_dataset(get_source("shapes", split), codec, max_length), ...)`
    yields, for `model.fit` on a host without TensorFlow.

    Iterating gives a generator of dicts (as `chunk_dataset` yields; `model.fit` wants a
    generator of tuples, so wrap each as `(batch,)`, and pass `steps_per_epoch`: the stream
    is endless) with the keys `BATCH_KEYS`: "packed" uint8
    [B, L_max, bytes], "channel_counts" int16/int32 [B, C], "content_hw" int32 [B, 2], the
    others int32 [B]. Every batch is full (drop remainder), so the shapes are static. Every
    `iter()` starts the same stream again: same seed, same batches, whatever `workers`.

    Workers are processes, each encoding whole blocks of `encode_batch_size` images; the
    parent shuffles and batches. With `start_method="spawn"` (the default: safe beside the
    threads of JAX) a script that iterates must guard its entry point with
    `if __name__ == "__main__":`, as `multiprocessing` requires. Spawned workers get one
    BLAS thread each (unless OMP/OPENBLAS/MKL_NUM_THREADS say otherwise); with `workers=0`
    set OPENBLAS_NUM_THREADS=1 before numpy loads for the same reason.

    Args:
      codec: SparseCodec. With a resolution (the static grid G).
      chunk_size: int. Target elements per chunk.
      overlap: int. Context elements before a chunk's targets.
      max_length: int. Sequence buffer L_max (EOS included).
      batch_size: int. Examples per batch.
      seed: int. Seeds every random choice; same seed, same batches.
      split: str. "train" or "test" (`shapes.SPLIT_SEEDS`).
      num_examples: int or None. The first N images of the split (then again, with fresh
        draws, if `repeat`); None: the whole split.
      start: int. Index of the first image within the split.
      image_size: int. Side of the rendered shapes images (placed on the R x R canvas).
      p_min, power: float. Chunk law `P(k) ∝ max((k+1)^−power, p_min)`.
      l_max: int or None. Length filter `min(1, L / l_max)` (paper Eq. 11); None: off.
      examples_per_encode: int. r, the mean examples per encoded sequence before the filter.
      loss_from_channel: int. Only targets of channel >= this carry loss (EOS always does).
      shuffle_buffer: int. Examples in the shuffle buffer; 0: no shuffle.
      on_overflow: str. "error" (raise, naming the image) or "skip" (drop it, warn once and
        record it in `overlong`).
      encode_batch_size: int or None. Images per encode call and per block; None: about
        2^17 canvas pixels, at most 64 images.
      workers: int. Worker processes; 0 encodes in this process.
      start_method: str. The `multiprocessing` start method of the workers.
      repeat: bool. Pass over the images again and again (True) or once.

    Attributes:
      layout: the `SequenceLayout` of the packed sequences.
      overlong: dict name -> length of the images skipped for being over `max_length`.

    Example:
      >>> codec = SparseCodec(quality=75, clip=255, resolution=64)
      >>> batches = NumpyChunkBatches(codec, 128, 32, 4096, batch_size=16, seed=0, workers=8)
      >>> model.fit(((batch,) for batch in batches), steps_per_epoch=100, epochs=10)
    """

    def __init__(self, codec: SparseCodec, chunk_size: int, overlap: int, max_length: int,
                 batch_size: int, seed: int, split: str = "train",
                 num_examples: int | None = None, start: int = 0, image_size: int = 64,
                 p_min: float = 0.1, power: float = 3.0, l_max: int | None = None,
                 examples_per_encode: int = 1, loss_from_channel: int = 0,
                 shuffle_buffer: int = 1024, on_overflow: str = "error",
                 encode_batch_size: int | None = None, workers: int = 0,
                 start_method: str = "spawn", repeat: bool = True):
        _check_codec(codec)
        self.codec = codec
        self.layout = SequenceLayout.of_codec(codec)
        self.chunk_size = _integer("chunk_size", chunk_size, 1)
        self.overlap = _integer("overlap", overlap, 0)
        self.max_length = _integer("max_length", max_length, 1)
        self.batch_size = _integer("batch_size", batch_size, 1)
        self.seed = _integer("seed", seed, 0)
        first, end = split_seed_range(split, num_examples, _integer("start", start, 0))
        self.split, self.num_examples, self.start = split, end - first, start
        if self.num_examples < 1:
            raise ValueError(f"num_examples must be at least 1, got {num_examples!r}")
        self.image_size = _integer("image_size", image_size, 2 * codec.block_size)
        for name, value in (("p_min", p_min), ("power", power)):
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        self.p_min, self.power = float(p_min), float(power)
        if l_max is not None:
            length_filter_keep_probability(1, l_max)  # checks l_max now, not in a worker
        self.l_max = l_max
        self.examples_per_encode = _integer("examples_per_encode", examples_per_encode, 1)
        self.loss_from_channel = _integer("loss_from_channel", loss_from_channel, 0)
        if self.loss_from_channel > self.layout.dct_channels:
            raise ValueError(f"loss_from_channel must be at most C = "
                             f"{self.layout.dct_channels}, got {loss_from_channel}")
        self.shuffle_buffer = _integer("shuffle_buffer", shuffle_buffer, 0)
        if on_overflow not in ON_OVERFLOW:
            raise ValueError(f"on_overflow must be one of {ON_OVERFLOW}, got {on_overflow!r}")
        self.on_overflow = on_overflow
        if encode_batch_size is None:
            encode_batch_size = min(64, max(1, _ENCODE_PIXELS // codec.resolution**2))
        self.encode_batch_size = _integer("encode_batch_size", encode_batch_size, 1)
        self.workers = _integer("workers", workers, 0)
        if start_method not in multiprocessing.get_all_start_methods():
            raise ValueError(f"start_method must be one of "
                             f"{multiprocessing.get_all_start_methods()}, got {start_method!r}")
        self.start_method = start_method
        self.repeat = bool(repeat)
        self.overlong: dict[str, int] = {}

    @property
    def num_blocks(self) -> int:
        """Blocks of `encode_batch_size` images in one pass."""
        return -(-self.num_examples // self.encode_batch_size)

    def __iter__(self):
        return self._batches()

    def block_examples(self, epoch: int, block: int) -> dict:
        """The compact examples of block `block` of pass `epoch`, in stream order.

        Runs in a worker: renders and encodes the block's images, applies the over-long
        policy and the examples-per-sequence law, packs the kept sequences once and draws a
        chunk per example, all from the generator seeded `[seed, epoch, block]`.

        Returns:
          {"packed": uint8 [n, L_max, bytes], "channel_counts": [n, C] of the n kept
           sequences; "source": int [m], each example's sequence; "rows": int32 [m, 10] of
           `_ROW_KEYS`; "images": b, the block's images; "skipped": [(name, length)] of
           the over-long ones}.
        """
        first = block * self.encode_batch_size
        count = min(self.encode_batch_size, self.num_examples - first)
        encoded = encode_shapes(self.codec, self.max_length, self.split, count,
                                self.start + first, self.image_size, self.on_overflow)
        length, labels, keep = encoded["length"], encoded["label"], encoded["fits"]
        rng = np.random.default_rng([self.seed, epoch, block])
        repeats = examples_from_sequence(length, self.l_max, self.examples_per_encode, rng)
        kept = np.flatnonzero(keep & (repeats > 0))
        # Packed once per kept sequence, before its repeats (as chunk_dataset does).
        packed = pack_sequences(encoded["triples"][kept], length[kept], self.layout)
        source = np.repeat(np.arange(len(kept)), repeats[kept])  # [m]
        picked = kept[source]
        examples = compact_examples(
            {"channel_counts": packed["channel_counts"][source], "length": length[picked],
             "content_hw": encoded["content_hw"][picked], "label": labels[picked]},
            sample_chunk_index(length[picked], self.chunk_size, self.p_min, self.power, rng),
            self.chunk_size, self.overlap, self.loss_from_channel)
        rows = np.concatenate([np.reshape(examples[key], (len(source), _width(key)))
                               for key in _ROW_KEYS], axis=1).astype(np.int32)
        names = shapes_names(self.split, self.start + first, count)
        skipped = [(names[i], int(length[i])) for i in np.flatnonzero(~keep)]
        return {"packed": packed["packed"], "channel_counts": packed["channel_counts"],
                "source": source, "rows": rows, "images": count, "skipped": skipped}

    def _blocks(self):
        """(epoch, block) in stream order: endless if `repeat`."""
        epoch = 0
        while epoch == 0 or self.repeat:
            for block in range(self.num_blocks):
                yield epoch, block
            epoch += 1

    def _block_results(self):
        """`block_examples` of every block in stream order, from the workers if any."""
        if not self.workers:
            for epoch, block in self._blocks():
                yield self.block_examples(epoch, block)
            return
        context = multiprocessing.get_context(self.start_method)
        with _environment_defaults(_ONE_BLAS_THREAD):  # read by spawned workers only
            pool = context.Pool(self.workers)
        with pool:
            # A bounded queue in stream order: Pool.imap would drain an endless task list.
            pending = collections.deque()
            for epoch, block in self._blocks():
                pending.append(pool.apply_async(self.block_examples, (epoch, block)))
                if len(pending) > 2 * self.workers:
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()

    def _examples(self):
        """The stream's examples in order, each holding copies of its sequence's rows (a view
        would keep a whole block alive in the shuffle buffer)."""
        fitting_in_pass = 0
        for index, result in enumerate(self._block_results()):
            self._record_skipped(result["skipped"])
            sequences = [(packed.copy(), counts.copy()) for packed, counts
                         in zip(result["packed"], result["channel_counts"], strict=True)]
            for source, row in zip(result["source"], result["rows"], strict=True):
                yield _Example(*sequences[source], row)
            fitting_in_pass += result["images"] - len(result["skipped"])
            if (index + 1) % self.num_blocks == 0:
                if not fitting_in_pass:  # the stream would spin forever without an example
                    raise ValueError(
                        f"every one of the {self.num_examples} images of shapes split "
                        f"{self.split!r} is over max_length={self.max_length}")
                fitting_in_pass = 0

    def _record_skipped(self, skipped: list) -> None:
        for name, length in skipped:
            if name not in self.overlong:
                self.overlong[name] = length
                log.warning("Skipping image %s: its sparse sequence has %d elements (EOS "
                            "included), more than max_length=%d", name, length,
                            self.max_length)

    def _batches(self):
        """Shuffled (a tf.data-style buffer: each new example takes the place of a random
        one, which leaves) and batched."""
        rng = np.random.default_rng([self.seed, 2**32])  # apart from every block's seed
        buffer, batch = [], []
        for example in self._examples():
            if len(buffer) < self.shuffle_buffer:
                buffer.append(example)
                continue
            if self.shuffle_buffer:
                i = rng.integers(len(buffer))
                buffer[i], example = example, buffer[i]
            batch.append(example)
            if len(batch) == self.batch_size:
                yield self._stack(batch)
                batch = []
        while buffer:  # the end of a single pass: the buffer in random order
            i = rng.integers(len(buffer))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            batch.append(buffer.pop())
            if len(batch) == self.batch_size:
                yield self._stack(batch)
                batch = []

    def _stack(self, examples: list) -> dict:
        rows = np.stack([example.row for example in examples])  # [B, 10]
        fields = {"packed": np.stack([example.packed for example in examples]),
                  "channel_counts": np.stack([example.channel_counts for example in examples])}
        column = 0
        for key in _ROW_KEYS:
            width = _width(key)
            value = np.ascontiguousarray(rows[:, column:column + width])
            fields[key] = value if width == 2 else value[:, 0]
            column += width
        return {key: fields[key] for key in BATCH_KEYS}


def _width(key: str) -> int:
    """Columns of a `_ROW_KEYS` field in an example's row."""
    return 2 if key == "content_hw" else 1


@contextlib.contextmanager
def _environment_defaults(values: dict):
    """Sets the environment variables of `values` that are not set, for the block only."""
    added = [key for key in values if key not in os.environ]
    os.environ.update({key: values[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _integer(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
