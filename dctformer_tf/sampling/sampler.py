"""Chunk-by-chunk generation with cached decoders (docs/design.md §5, paper §3.3).

The sequence buffer `[B, L_max, 3]` is filled chunk by chunk on exactly the grid of training
(`data.chunking`): chunk k holds elements `[k·chunk, (k+1)·chunk)`; its partial image is the
dense scatter of the elements before it; its decoder window starts at
`max(0, k·chunk − overlap)` with the START triple as first input only at sequence start. The
window's context elements (already in the buffer) are fed through the decoders to fill their
caches, then each new element is drawn channel → position → value, masked
(`sampling.masks`) and processed (`sampling.processors`).

Samples are independent: a sample that drew EOS stops changing; the others go on until all
are done or `max_chunks` is reached (a sample that never drew EOS is reported unfinished).
A forced prefix (super-resolution, colorization) is copied into the buffer; its elements are
fed, never drawn, and chunks that lie wholly inside every sample's prefix are skipped.

Randomness is stateless: the draw of head h at window step t of chunk k uses the seed
`fold_in((seed, batch_index), (k·T + t)·3 + h)`, so the same seed gives the same samples and
the Python driver (`Sampler.sample`) and the graph driver (`Sampler.generate_graph`, used by
the SavedModel signature) give identical triples.
"""

import dataclasses
import math
import time

import numpy as np
import tensorflow as tf

from dctformer_tf.data.chunking import chunk_bounds
from dctformer_tf.data.layout import start_triple
from dctformer_tf.dct import tf_ops
from dctformer_tf.runs import load_trained_model
from dctformer_tf.sampling import masks
from dctformer_tf.sampling.decoding import CachedDecoding, NoCacheDecoding
from dctformer_tf.sampling.processors import (
    HEADS,
    SamplingSettings,
    process_logits,
    sample_categorical,
)


@dataclasses.dataclass
class SampleResult:
    """What `Sampler.sample` returns, for N samples.

    Attributes:
      images: list of N uint8 [h, w, 3] arrays, cropped to each sample's content size.
      triples: int32 [N, L_max, 3], zero-padded after EOS.
      length: int32 [N], elements per sequence (EOS included when finished).
      finished: bool [N], whether the sample drew EOS within the chunk limit.
      chunks: int32 [N], chunks the sample was generated over.
      seconds: float64 [N], wall time from the start until the sample's last chunk ended.
      content_hw: int32 [N, 2].
      label: int32 [N].
    """

    images: list
    triples: np.ndarray
    length: np.ndarray
    finished: np.ndarray
    chunks: np.ndarray
    seconds: np.ndarray
    content_hw: np.ndarray
    label: np.ndarray

    def statistics(self) -> list:
        """Per-sample dicts of length, chunks, seconds, finished (for JSON)."""
        return [
            {"length": int(n), "chunks": int(c), "seconds": round(float(s), 3),
             "finished": bool(f), "label": int(y)}
            for n, c, s, f, y in zip(self.length, self.chunks, self.seconds, self.finished,
                                     self.label, strict=True)
        ]


def settings_tensors(settings: SamplingSettings) -> tuple:
    """(temperature float32 [3], top_k int32 [3], top_p float32 [3]) in HEADS order."""
    heads = [settings.head(name) for name in HEADS]
    return (tf.constant([h.temperature for h in heads], tf.float32),
            tf.constant([h.top_k for h in heads], tf.int32),
            tf.constant([h.top_p for h in heads], tf.float32))


class Sampler:
    """Generates sparse DCT sequences and images from a trained `DCTransformer`.

    Args:
      model: a built `DCTransformer`.
      codec: its `SparseCodec` (with a resolution).
      chunk_size, overlap: the chunking the model was trained with.
      max_length: L_max, the sequence buffer (EOS included); the last slot only takes EOS.
      cache: True for cached decoding; False for the no-cache reference loop.
      jit_compile: compile each chunk with XLA (faster on CPU and accelerators).

    Example:
      >>> sampler = Sampler.from_model_dir("runs/shapes")
      >>> result = sampler.sample(8, seed=0, settings=SamplingSettings.uniform(top_p=0.9))
      >>> result.images[0].shape
      (64, 64, 3)
    """

    def __init__(self, model, codec, chunk_size: int, overlap: int, max_length: int,
                 cache: bool = True, jit_compile: bool = True):
        if chunk_size + overlap > model.window:
            raise ValueError(f"chunk_size + overlap = {chunk_size + overlap} exceeds the "
                             f"model's window {model.window}")
        self.model = model
        self.codec = codec
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.window = chunk_size + overlap
        self.max_length = max_length
        self.geometry = masks.MaskGeometry.from_codec(codec)
        self.decoding = (CachedDecoding if cache else NoCacheDecoding)(model, self.window)
        self.start = tf.constant(start_triple(codec.dct_channels, self.geometry.num_positions,
                                              codec.num_values), tf.int32)
        self._chunk_fn = tf.function(self.sample_chunk, jit_compile=jit_compile)

    @classmethod
    def for_run(cls, model, run, max_length: int | None = None, **kwargs):
        """A sampler of `model` on a run's codec, chunking and max_length (`runs.RunSettings`)."""
        return cls(model, run.codec, run.chunking.chunk_size, run.chunking.overlap,
                   max_length or run.max_length, **kwargs)

    @classmethod
    def from_model_dir(cls, model_dir: str, checkpoint: str | None = None,
                       max_length: int | None = None, **kwargs):
        """A sampler for the latest (or given) checkpoint of a training run."""
        model, run = load_trained_model(model_dir, checkpoint)
        return cls.for_run(model, run, max_length, **kwargs)

    @property
    def num_chunks(self) -> int:
        """Chunks that cover the whole buffer."""
        return math.ceil(self.max_length / self.chunk_size)

    # ------------------------------------------------------------------ one chunk

    @staticmethod
    def _draw_or_feed(logits, allowed, fed, given, key, temperature, top_k, top_p):
        """int32 [B]: `given` where `fed`, else a draw from the processed logits with the
        stateless `key`. The processing (a sort over V for top-p) is skipped at steps where
        every sample is fed (window context, long prefixes)."""
        def sample():
            processed = process_logits(logits, allowed, temperature, top_k, top_p)
            return tf.where(fed, given, sample_categorical(processed, key))

        return tf.cond(tf.reduce_all(fed), lambda: given, sample)

    def sample_chunk(self, state: dict, k, seed, temperature, top_k, top_p) -> dict:
        """Generate chunk `k` of every unfinished sample.

        Args:
          state: {"triples" int32 [B, L_max, 3], "length" int32 [B], "done" bool [B],
            "forced_length" int32 [B], "cells" int32 [B, 2], "label" int32 [B],
            "min_channel" int32 [B]}.
          k: int32 [] chunk index.
          seed: int32 [2] the batch's stateless seed.
          temperature, top_k, top_p: per-head settings, [3] each (HEADS order).
        Returns:
          the updated state (same structure).
        """
        triples, cells, label = state["triples"], state["cells"], state["label"]
        forced_length = state["forced_length"]
        # Static when known, so every loop variable keeps the batch size its shape started with.
        batch = triples.shape[0] if triples.shape[0] is not None else tf.shape(triples)[0]
        chunk_start = k * self.chunk_size
        partial = tf_ops.sparse_to_dense(triples, self.codec, self.codec.grid,
                                         length=tf.fill([batch], chunk_start))
        encoder_output = self.model.encode(partial, label if self.model.num_classes else None)
        decoder_state = self.decoding.init(encoder_output, label)
        # The training chunk's bounds, on the sequence buffer: a sample's length is unknown
        # until its EOS, so the last chunk ends at the buffer's end.
        _, chunk_end, window_start = chunk_bounds(self.max_length, k, self.chunk_size,
                                                  self.overlap)
        num_steps = chunk_end - window_start
        rows = tf.range(batch)

        def draw(logits, allowed, head, t, fed, given):
            key = tf.random.experimental.stateless_fold_in(seed, (k * self.window + t) * 3 + head)
            return self._draw_or_feed(logits, allowed, fed, given, key, temperature[head],
                                      top_k[head], top_p[head])

        def step(t, triples, length, done, decoder_state):
            i = window_start + t  # sequence index of this step
            previous = tf.gather(triples, tf.maximum(i - 1, 0), axis=1)  # [B, 3]
            at_start = tf.fill([batch], i == 0)
            previous_input = tf.where(at_start[:, None], self.start[None], previous)
            previous_c = tf.where(at_start, -1, previous[:, 0])
            previous_p = tf.where(at_start, -1, previous[:, 1])
            current = tf.gather(triples, i, axis=1)  # [B, 3]: context / prefix elements
            # Context before the chunk, forced prefix, and finished samples are fed, not drawn.
            fed = (i < chunk_start) | (i < forced_length) | done

            logits, decoder_state = self.decoding.channel(decoder_state, previous_input, t)
            allowed = masks.channel_allowed(self.geometry, cells, previous_c, previous_p,
                                            tf.fill([batch], i == self.max_length - 1),
                                            state["min_channel"])
            channel = draw(logits, allowed, 0, t, fed, current[:, 0])

            logits, decoder_state = self.decoding.position(decoder_state, channel, t)
            allowed = masks.position_allowed_after(self.geometry, cells, channel, previous_c,
                                                   previous_p)
            position = draw(logits, allowed, 1, t, fed, current[:, 1])

            logits, decoder_state = self.decoding.value(decoder_state, position, t)
            allowed = masks.value_allowed(self.geometry, channel)
            value = draw(logits, allowed, 2, t, fed, current[:, 2])

            new = ~fed
            element = tf.stack([channel, position, value], axis=-1)
            triples = tf.tensor_scatter_nd_update(
                triples, tf.stack([rows, tf.fill([batch], i)], axis=-1),
                tf.where(new[:, None], element, current))
            length = tf.where(new, i + 1, length)
            done = done | (new & (channel == self.geometry.eos))
            return t + 1, triples, length, done, decoder_state

        _, triples, length, done, _ = tf.while_loop(
            lambda t, tr, n, done, s: (t < num_steps) & ~tf.reduce_all(done),
            step,
            (tf.constant(0), triples, state["length"], state["done"], decoder_state),
        )
        return {**state, "triples": triples, "length": length, "done": done}

    # ------------------------------------------------------------------ set-up

    def initial_state(self, batch: int, label=None, prefix=None, prefix_length=None,
                      content_hw=None, min_channel=None) -> dict:
        """The state before chunk 0: a forced prefix copied in, nothing else.

        Args:
          label: int [B] (or a scalar for all); required for class-conditional models.
          prefix: int [B, Lp, 3] triples to force (no EOS); None for no prefix.
          prefix_length: int [B] valid prefix elements (default Lp).
          content_hw: int [B, 2] content size in pixels (default the full canvas).
          min_channel: int [B] (or a scalar): nothing is drawn in lower channels (see
            `masks.channel_allowed`); default 0.
        """
        resolution = self.codec.resolution
        if content_hw is None:
            content_hw = np.full([batch, 2], resolution, np.int32)
        content_hw = np.broadcast_to(np.asarray(content_hw, np.int32), (batch, 2))
        unit = 2 * self.codec.block_size
        if (content_hw < unit).any() or (content_hw > resolution).any():
            raise ValueError(f"content_hw must lie in [{unit}, {resolution}] (one macroblock "
                             f"to the canvas), got {content_hw.tolist()}")
        if self.model.num_classes and label is None:
            raise ValueError(f"the model is class-conditional ({self.model.num_classes} "
                             "classes): give a label")
        label = np.broadcast_to(np.asarray(0 if label is None else label, np.int32), (batch,))
        if self.model.num_classes and ((label < 0) | (label >= self.model.num_classes)).any():
            raise ValueError(f"label must lie in [0, {self.model.num_classes}), "
                             f"got {label.tolist()}")
        triples = np.zeros([batch, self.max_length, 3], np.int32)
        forced_length = np.zeros([batch], np.int32)
        if prefix is not None:
            prefix = np.asarray(prefix, np.int32)
            if prefix.ndim == 2:
                prefix = np.broadcast_to(prefix, (batch, *prefix.shape))
            if prefix.shape[0] != batch or prefix.shape[-1] != 3:
                raise ValueError(f"prefix must have shape [{batch}, Lp, 3], got {prefix.shape}")
            lengths = np.broadcast_to(
                np.asarray(prefix.shape[1] if prefix_length is None else prefix_length,
                           np.int32), (batch,))
            if (lengths >= self.max_length).any():
                raise ValueError(f"prefix of {int(lengths.max())} elements leaves no room in "
                                 f"max_length={self.max_length} (EOS included)")
            for b in range(batch):
                masks.check_triples_valid(self.geometry, prefix[b, : lengths[b]],
                                          content_hw[b], self.codec.block_size)
                triples[b, : lengths[b]] = prefix[b, : lengths[b]]
            forced_length = lengths.astype(np.int32)
        cells = masks.content_cells(content_hw, self.codec.block_size)
        return {
            "triples": tf.constant(triples),
            "length": tf.constant(forced_length),
            "done": tf.zeros([batch], tf.bool),
            "forced_length": tf.constant(forced_length),
            "cells": cells,
            "label": tf.constant(label),
            "min_channel": tf.constant(np.broadcast_to(
                np.asarray(0 if min_channel is None else min_channel, np.int32), (batch,))),
        }

    def first_chunk(self, forced_length) -> int:
        """Chunks wholly inside every sample's prefix need no decoding."""
        return int(np.min(forced_length)) // self.chunk_size

    # ------------------------------------------------------------------ drivers

    def generate_batch(self, batch: int, seed: int, settings: SamplingSettings | None = None,
                       max_chunks: int | None = None, batch_index: int = 0, **inputs) -> dict:
        """Python driver for one batch: numpy state after the last chunk, plus per-sample
        `chunks` and `seconds`. `inputs` go to `initial_state`."""
        settings = settings or SamplingSettings()
        state = self.initial_state(batch, **inputs)
        k0 = self.first_chunk(state["forced_length"].numpy())
        limit = self.num_chunks if max_chunks is None else min(self.num_chunks, k0 + max_chunks)
        seed_pair = tf.constant([seed, batch_index], tf.int32)
        temperature, top_k, top_p = settings_tensors(settings)
        chunks = np.zeros([batch], np.int32)
        seconds = np.zeros([batch])
        begin = time.perf_counter()
        done = np.zeros([batch], bool)
        for k in range(k0, limit):
            state = self._chunk_fn(state, tf.constant(k), seed_pair, temperature, top_k, top_p)
            now_done = state["done"].numpy()
            active = ~done
            chunks[active] += 1
            seconds[active] = time.perf_counter() - begin
            done = now_done
            if done.all():
                break
        result = {name: value.numpy() for name, value in state.items()}
        result.update(chunks=chunks, seconds=seconds)
        return result

    def sample(self, num: int, seed: int, settings: SamplingSettings | None = None,
               batch_size: int = 16, max_chunks: int | None = None, label=None, prefix=None,
               prefix_length=None, content_hw=None, min_channel=None,
               on_batch=None) -> SampleResult:
        """Draw `num` samples in batches of `batch_size` (batch j uses seed `(seed, j)`).

        `label`, `prefix`, `prefix_length`, `content_hw`, `min_channel` are as in
        `initial_state`, given for
        all `num` samples (leading dimension `num`) or broadcast (a scalar label, one prefix
        [Lp, 3], one content size [2]). `on_batch(done, num)` is called after each batch
        (progress bars).
        """
        if num < 1:
            raise ValueError(f"num must be positive, got {num}")
        parts = []
        for j, first in enumerate(range(0, num, batch_size)):
            size = min(batch_size, num - first)
            take = slice(first, first + size)
            parts.append(self.generate_batch(
                size, seed, settings, max_chunks, batch_index=j,
                label=_rows(label, take, num), prefix=_rows(prefix, take, num, rank=3),
                prefix_length=_rows(prefix_length, take, num),
                content_hw=_rows(content_hw, take, num, rank=2),
                min_channel=_rows(min_channel, take, num)))
            if on_batch is not None:
                on_batch(first + size, num)
        merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        images = [self.decode(merged["triples"][n], merged["length"][n], merged["cells"][n])
                  for n in range(num)]
        return SampleResult(
            images=images, triples=merged["triples"], length=merged["length"],
            finished=merged["done"], chunks=merged["chunks"], seconds=merged["seconds"],
            content_hw=merged["cells"] * self.codec.block_size, label=merged["label"])

    def decode(self, triples, length: int, cells) -> np.ndarray:
        """One sequence -> uint8 [h, w, 3] cropped to its content cells."""
        h, w = (np.asarray(cells) * self.codec.block_size).tolist()
        return self.codec.decode(triples[:length], h, w)

    def generate_graph(self, num, seed, temperature, top_k, top_p, label=None) -> dict:
        """Graph driver (a `tf.while_loop` over chunks) for the SavedModel `sample`
        signature: `num` unconditioned samples on the full canvas in one batch with seed
        `(seed, 0)`; equals `sample(num, seed, batch_size >= num)`.

        Args:
          num, seed: int32 []. temperature, top_k, top_p: [3] per-head settings.
          label: int32 [] class of all samples (class-conditional models).
        Returns:
          {"images": uint8 [num, R, R, 3], "triples": int32 [num, L_max, 3],
           "length": int32 [num], "finished": bool [num]}.
        """
        resolution = self.codec.resolution
        state = {
            "triples": tf.zeros([num, self.max_length, 3], tf.int32),
            "length": tf.zeros([num], tf.int32),
            "done": tf.zeros([num], tf.bool),
            "forced_length": tf.zeros([num], tf.int32),
            "cells": masks.content_cells(tf.fill([num, 2], resolution), self.codec.block_size),
            "label": tf.fill([num], tf.cast(0 if label is None else label, tf.int32)),
            "min_channel": tf.zeros([num], tf.int32),
        }
        seed_pair = tf.stack([tf.cast(seed, tf.int32), 0])
        _, state = tf.while_loop(
            lambda k, s: (k < self.num_chunks) & ~tf.reduce_all(s["done"]),
            lambda k, s: (k + 1, self._chunk_fn(s, k, seed_pair, temperature, top_k, top_p)),
            (tf.constant(0), state),
        )
        dense = tf_ops.sparse_to_dense(state["triples"], self.codec, self.codec.grid,
                                       length=state["length"])
        images = tf_ops.dense_to_image(dense, self.codec, self.codec.upsample)
        return {"images": images, "triples": state["triples"], "length": state["length"],
                "finished": state["done"]}


def _rows(value, take: slice, num: int, rank: int = 1):
    """Rows `take` of a per-sample input (leading dim num), or the broadcast value itself."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim == rank and array.shape[0] == num:
        return array[take]
    return array
