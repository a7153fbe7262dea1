"""Compact training batches in numpy, without TensorFlow (docs/design.md §2.5).

GPU hosts that have JAX and no TensorFlow train under Keras' JAX backend, with `model.fit`
on batches of numpy arrays. This module makes there the batches that
`chunking.chunk_dataset` makes from `pipeline.encode_dataset` sequences, in the same compact
format (`compact.py`), from the same images, with the same encoder arithmetic:

    shapes seeds -> render (`shapes.shapes_arrays`)      uint8 [b, R, R, 3] per block
      -> numpy fast encoder (`numpy_encoding`)           int32 [b, max_length, 3], L [b]
      -> over-long policy ("error" names the image)
      -> examples per sequence (Eq. 11 and r)            counts [b]
      -> pack the kept sequences (`numpy_compact`)       uint8 [n, max_length, bytes]
      -> chunk index and bounds (`numpy_chunking`)       int32 [m]
      -> shuffle buffer -> batches (drop remainder)      dicts of numpy arrays

Each step is the numpy twin of the TensorFlow function of the same name (`pipeline.py`,
`compact.py`, `chunking.py`): packing is byte-identical, encoded sequences are identical, and
the random choices (length filter, examples per encode, chunk index, shuffle) follow the same
laws from a numpy `Generator`, so the batches have the same distribution but not the same
draws. This module holds the stream: worker processes, shuffle buffer and batches; it also
exports the twins' public names.

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
import multiprocessing
import os

import numpy as np

from dctformer_tf.data.layout import ChunkPolicy, SequenceLayout
from dctformer_tf.data.numpy_chunking import (
    chunk_bounds,
    compact_examples,
    examples_from_sequence,
    length_filter_keep_probability,
    sample_chunk_index,
)
from dctformer_tf.data.numpy_compact import pack_sequences
from dctformer_tf.data.numpy_encoding import (
    ON_OVERFLOW,
    check_codec,
    encode_images,
    encode_shapes,
    shapes_names,
)
from dctformer_tf.data.shapes import split_seed_range
from dctformer_tf.dct import SparseCodec
from dctformer_tf.dct.encoders import choose_encoder

__all__ = [
    "BATCH_KEYS",
    "NumpyChunkBatches",
    "chunk_bounds",
    "compact_examples",
    "encode_images",
    "encode_shapes",
    "examples_from_sequence",
    "length_filter_keep_probability",
    "pack_sequences",
    "sample_chunk_index",
]

BATCH_KEYS = ("packed", "channel_counts", "length", "content_hw", "label", "chunk_index",
              "chunk_start", "chunk_end", "window_start", "loss_from_channel", "loss_tokens")
# The int32 fields of an example, in the order of its row in `_Example.row`.
_ROW_KEYS = ("length", "content_hw", "label", "chunk_index", "chunk_start", "chunk_end",
             "window_start", "loss_from_channel", "loss_tokens")
# What BLAS libraries read when numpy loads. A worker process is one core's worth of work:
# BLAS threads in every worker would contend for the same cores and slow the encoder's small
# matrix products down.
_ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1"}

log = logging.getLogger(__name__)


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
      policy: `ChunkPolicy` (chunk law, length filter, loss prefix, shuffle, examples per
        encode). None: `ChunkPolicy(**policy_fields)`, so a caller may name only the
        fields it changes (`p_min=0.5`).
      on_overflow: str. "error" (raise, naming the image) or "skip" (drop it, warn once and
        record it in `overlong`).
      encode_batch_size: int or None. Images per encode call and per block; None: the numpy
        encoder's own (`Encoder.batch_size`).
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
                 policy: ChunkPolicy | None = None, on_overflow: str = "error",
                 encode_batch_size: int | None = None, workers: int = 0,
                 start_method: str = "spawn", repeat: bool = True, **policy_fields):
        check_codec(codec)
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
        if policy is None:
            policy = ChunkPolicy(**policy_fields)  # checks every field now, not in a worker
        elif policy_fields:
            raise TypeError(f"give a policy or its fields, not both ({policy_fields})")
        self.p_min, self.power = float(policy.p_min), float(policy.power)
        self.l_max = policy.l_max
        self.examples_per_encode = int(policy.examples_per_encode)
        self.loss_from_channel = int(policy.loss_from_channel)
        if self.loss_from_channel > self.layout.dct_channels:
            raise ValueError(f"loss_from_channel must be at most C = "
                             f"{self.layout.dct_channels}, got {self.loss_from_channel}")
        self.shuffle_buffer = int(policy.shuffle_buffer)
        if on_overflow not in ON_OVERFLOW:
            raise ValueError(f"on_overflow must be one of {ON_OVERFLOW}, got {on_overflow!r}")
        self.on_overflow = on_overflow
        if encode_batch_size is None:
            encode_batch_size = choose_encoder(tensorflow=False).batch_size(codec.resolution)
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
