"""The input side of a run (docs/design.md §2.4): what the hosts send per training example
and what an encode costs them, with the encoding load of `encoding.encode_load`.

Bytes per example are read from the input pipeline's element specs at the run's full sizes
(nothing is encoded). Imports TensorFlow (the tf.data pipeline).
"""

import time

import numpy as np
import tensorflow as tf

from dctformer_tf.data import chunking, compact, pipeline
from dctformer_tf.data.photos import photo_canvases
from dctformer_tf.plan.encoding import encode_load
from dctformer_tf.plan.lengths import LengthAssumption
from dctformer_tf.runs import RunSettings


def empty_sequences(run: RunSettings) -> tf.data.Dataset:
    """A one-element dataset of the run's encoded-sequence shape (EOS only, `max_length`
    long): `encode_dataset`'s element spec, with nothing encoded."""
    empty = np.zeros((run.max_length, 3), np.int32)
    empty[0] = (run.codec.eos, 0, 0)
    return tf.data.Dataset.from_tensors({
        "triples": empty, "length": np.int32(1), "content_hw": np.zeros(2, np.int32),
        "label": np.int32(0)})


def compact_batches(run: RunSettings, sequences: tf.data.Dataset,
                    batch_size: int = 1) -> tf.data.Dataset:
    """`chunk_dataset` batches of `sequences` on the run's codec and chunking: what the
    input pipeline feeds the train step."""
    return chunking.chunk_dataset(sequences, run.codec, run.chunking.chunk_size,
                                  run.chunking.overlap, batch_size, seed=0)


def example_bytes(run: RunSettings) -> dict:
    """Bytes of one training example at the run's full sizes.

    Returns:
      {"dense_bytes": a dense example (`make_training_example`: int32 partial image
       [G, G, C], windows, loss mask, scalars), "compact_bytes": a compact one
       (`chunk_dataset`: packed sequence [max_length, b], channel counts, chunk bounds),
       "ratio": compact / dense}.
    """
    sequences = empty_sequences(run)
    chunk, overlap = run.chunking.chunk_size, run.chunking.overlap
    dense = sequences.map(
        lambda ex: chunking.make_training_example(ex, run.codec, chunk, overlap, 0)).batch(1)
    before, after = (compact.example_bytes(d.element_spec)
                     for d in (dense, compact_batches(run, sequences)))
    return {"dense_bytes": before, "compact_bytes": after, "ratio": after / before}


def measure_encode_seconds(run: RunSettings, num: int = 16, repeats: int = 8,
                           encoder: str = "auto") -> float:
    """CPU seconds per image of the tf.data encoder at the run's geometry, on `num` photo
    canvases (`data.photos.photo_canvases`) passed `repeats` times, after a warm-up pass.

    A short pass is mostly the iterator's start-up (threads, first batch), which a training
    pipeline pays once; the repeats keep that out of the figure.

    Args:
      encoder: "auto", "fused" or "ops" (`encode_dataset`'s `encoder`).
    """
    images = photo_canvases(run.codec.resolution, num, seed=1)
    source = tf.data.Dataset.from_tensor_slices({"image": images,
                                                 "label": np.zeros(num, np.int32)})
    sequences = pipeline.encode_dataset(source.repeat(repeats), run.codec, run.max_length,
                                        on_overflow="skip", encoder=encoder)
    for _ in sequences:  # traces and compiles the encoder
        pass
    cpu = time.process_time()
    for _ in sequences:
        pass
    return (time.process_time() - cpu) / (num * repeats)


def input_plan(run: RunSettings, assumed: LengthAssumption, l_max: int | None,
               examples_per_encode: int, paper_batch: int, steps_per_second: float,
               encode_cpu_s: float) -> dict:
    """The input side of one run: geometry, the assumed lengths, bytes per example
    (`example_bytes`) and the encoding load (`encode_load`), as one JSON-ready dict."""
    return {"resolution": run.codec.resolution, "max_length": run.max_length, "l_max": l_max,
            "assumed_mean_length": assumed.mean_length,
            "assumed_overlong_fraction": assumed.overlong_fraction,
            "assumed_mean_kept_length": assumed.kept_length,
            "examples_per_encode": examples_per_encode, "encode_cpu_s": encode_cpu_s,
            "paper_batch": paper_batch, "steps_per_second": steps_per_second,
            **example_bytes(run),
            **encode_load(assumed, l_max, examples_per_encode, paper_batch, steps_per_second,
                          encode_cpu_s)}
