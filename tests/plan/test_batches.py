"""dctformer_tf.plan.random_compact_batch against the tf.data pipeline it stands in for: the
same keys, dtypes and shapes as `chunk_dataset`'s batches, sequences that unpack to what was
asked for, and chunks the step can expand."""

import pathlib

import numpy as np
import tensorflow as tf

from dctformer_tf.data.expansion import expand_chunks, unpack_sequences
from dctformer_tf.data.layout import SequenceLayout
from dctformer_tf.plan import config_files, random_compact_batch
from dctformer_tf.plan.input_side import compact_batches, empty_sequences
from dctformer_tf.train.gin_model import read_bindings, run_from_bindings

GIN = pathlib.Path(__file__).resolve().parents[2] / "gin"


def _tiny_run():
    return run_from_bindings(read_bindings(config_files(GIN, "tiny")))


def test_the_batch_has_the_pipelines_spec():
    run = _tiny_run()
    batch = random_compact_batch(run, 3)
    spec = compact_batches(run, empty_sequences(run), batch_size=3).element_spec
    assert set(batch) == set(spec)
    for key, s in spec.items():
        assert batch[key].shape == tuple(s.shape), key
        assert tf.as_dtype(batch[key].dtype) == s.dtype, key


def test_sequences_unpack_to_valid_sequences_of_the_asked_length():
    run = _tiny_run()
    layout = SequenceLayout.of_codec(run.codec)
    batch = random_compact_batch(run, 4, length=300, seed=5)
    triples = np.asarray(unpack_sequences(batch["packed"], batch["channel_counts"],
                                          batch["length"], layout))
    assert (batch["length"] == 300).all()
    for row in triples:
        body = row[:299]
        assert (row[299] == (run.codec.eos, 0, 0)).all() and not row[300:].any()
        assert (np.diff(body[:, 0]) >= 0).all()  # channels never decrease
        assert len({(c, p) for c, p, _ in body}) == 299  # each coefficient once
        assert body[:, 1].max() < layout.num_positions
        assert body[:, 2].max() < layout.num_values
    assert (batch["chunk_start"] < batch["length"]).all()
    assert (batch["chunk_end"] <= batch["length"]).all()


def test_the_step_expands_it():
    run = _tiny_run()
    layout = SequenceLayout.of_codec(run.codec)
    batch = random_compact_batch(run, 2)
    dense = expand_chunks({k: tf.constant(v) for k, v in batch.items()}, layout,
                          run.chunking.window)
    g, c = layout.grid_size, layout.dct_channels
    assert dense["partial_image"].shape == (2, g, g, c)
    assert dense["inputs"].shape == (2, run.chunking.window, 3)
