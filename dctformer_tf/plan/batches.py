"""Training batches of a run's shapes made without a dataset, for sizing and timing a step.

numpy only (`data.numpy_compact` and `data.numpy_chunking`, the twins of the tf.data
pipeline's packing and chunk choice), so a host with JAX and no TensorFlow can use it; under TensorFlow the arrays
convert as they are.
"""

import numpy as np

from dctformer_tf.data.layout import ChunkPolicy, SequenceLayout
from dctformer_tf.data.numpy_chunking import compact_examples, sample_chunk_index
from dctformer_tf.data.numpy_compact import pack_sequences
from dctformer_tf.runs import RunSettings

# The training pipeline's chunk law, `P(k) ∝ max((k+1)^-power, p_min)`, at its defaults.
CHUNK_LAW = ChunkPolicy()


def random_compact_batch(run: RunSettings, batch: int, length: int | None = None,
                         seed: int = 0) -> dict:
    """A compact training batch, as the input pipeline feeds the step (packed sequences and
    chunk bounds, expanded on the device), of random valid sequences.

    Each sequence has `length` elements, EOS included (default: half the run's
    `max_length`): distinct coefficients, channels in increasing order, random values,
    then EOS.
    Its chunk is drawn by the training pipeline's law.

    Args:
      run: the run's settings (codec, chunking, `max_length`).
      batch: int. Examples B.
      length: int or None. Elements per sequence, at most `max_length`.
      seed: int. Seeds the coefficients, values and chunks.
    Returns:
      dict of numpy arrays with `data.numpy_input.BATCH_KEYS` and a leading axis [B]:
      "packed" uint8 [B, max_length, bytes per element], the rest int16/int32.
    """
    rng = np.random.default_rng(seed)
    codec, layout = run.codec, SequenceLayout.of_codec(run.codec)
    length = max(2, min(length or run.max_length // 2, run.max_length))
    coefficients = layout.dct_channels * layout.num_positions
    triples = np.zeros((batch, run.max_length, 3), np.int32)
    for row in triples:
        flat = np.sort(rng.choice(coefficients, length - 1, replace=False))
        # flat index = channel·P + position, sorted: channels never decrease along the
        # sequence, which packing and the loss prefix rely on
        row[:length - 1] = np.stack([flat // layout.num_positions, flat % layout.num_positions,
                                     rng.integers(0, layout.num_values, length - 1)], axis=1)
        row[length - 1] = (codec.eos, 0, 0)
    lengths = np.full(batch, length, np.int32)
    packed = {**pack_sequences(triples, lengths, layout),
              "content_hw": np.full((batch, 2), codec.resolution, np.int32),
              "label": np.zeros(batch, np.int32)}
    chunking = run.chunking
    index = sample_chunk_index(lengths, chunking.chunk_size, CHUNK_LAW.p_min,
                               CHUNK_LAW.power, rng)
    return compact_examples(packed, index, chunking.chunk_size, chunking.overlap)
