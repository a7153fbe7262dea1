"""Compact examples (docs/design.md §2.4): packed sequences round-trip exactly, the device
rebuilds exactly the dense examples, and at the Table 3 geometries a compact example is at
most 1/8 of a dense one."""

import numpy as np
import pytest
import tensorflow as tf

from dctformer_tf.data import chunking, compact
from dctformer_tf.data.shapes import render_shapes
from dctformer_tf.dct import SparseCodec
from tests.dct.images import random_image


def _padded(sequence: np.ndarray, max_length: int, label: int = 0) -> dict:
    triples = np.zeros((max_length, 3), np.int32)
    triples[: len(sequence)] = sequence
    return {"triples": triples, "length": np.int32(len(sequence)),
            "content_hw": np.array([64, 64], np.int32), "label": np.int32(label)}


def _extreme_sequence(layout: compact.SequenceLayout) -> np.ndarray:
    """Every value at the edges of its range: channels 0 and C−1, positions 0 and P−1,
    tokens 0 and V−1, channels that are skipped, and EOS."""
    c, p, v = layout.dct_channels, layout.num_positions, layout.num_values
    rows = [(0, 0, 0), (0, p - 1, v - 1), (5, 3, v // 2), (c - 1, 0, v - 1), (c - 1, p - 1, 0)]
    return np.array(rows + [(layout.eos, 0, 0)], np.int32)


@pytest.mark.parametrize("order", ["bands", "luma_first"])
@pytest.mark.parametrize("resolution, block_size, clip",
                         [(32, 8, 1200), (64, 16, 3200), (384, 8, 1200), (1024, 16, 3200)])
def test_packed_sequences_round_trip_exactly(order, resolution, block_size, clip):
    codec = SparseCodec(quality=75, resolution=resolution, block_size=block_size, clip=clip,
                        order=order)
    layout = compact.SequenceLayout.of_codec(codec)
    sequences = [_extreme_sequence(layout), np.array([[layout.eos, 0, 0]], np.int32)]
    if resolution <= 64:
        rng = np.random.default_rng(resolution)
        sequences.append(codec.encode(random_image(rng, resolution, resolution)))
    max_length = max(len(s) for s in sequences) + 7
    examples = [_padded(s, max_length) for s in sequences]
    packed = [compact.pack_sequence(e["triples"], e["length"], layout) for e in examples]
    got = compact.unpack_sequences(
        tf.stack([p["packed"] for p in packed]), tf.stack([p["channel_counts"] for p in packed]),
        tf.constant([len(s) for s in sequences]), layout).numpy()
    for i, example in enumerate(examples):
        np.testing.assert_array_equal(got[i], example["triples"], err_msg=f"sequence {i}")
    assert packed[0]["packed"].dtype == tf.uint8
    assert packed[0]["packed"].shape[-1] == layout.bytes_per_element


def test_packing_by_shifts_equals_packing_by_the_memory_layout(monkeypatch):
    """pack_sequence reads a word's bytes from memory on little-endian hosts and shifts
    them out elsewhere: both give the same bytes."""
    layout = compact.SequenceLayout(block_size=16, grid_size=64, clip=3200)  # 4 bytes
    example = _padded(_extreme_sequence(layout), 12)
    little = compact.pack_sequence(example["triples"], example["length"], layout)
    monkeypatch.setattr(compact.sys, "byteorder", "big")
    shifted = compact.pack_sequence(example["triples"], example["length"], layout)
    for key in little:
        np.testing.assert_array_equal(little[key], shifted[key], err_msg=key)
    assert int(np.count_nonzero(little["packed"])) > 4  # not all zero: the test can fail


def test_bytes_per_element_are_the_fewest_whole_bytes():
    lsun = compact.SequenceLayout(block_size=8, grid_size=48, clip=1200)  # P 2304, V 2401
    ffhq = compact.SequenceLayout(block_size=16, grid_size=64, clip=3200)  # P 4096, V 6401
    assert (lsun.position_bits, lsun.value_bits, lsun.bytes_per_element) == (12, 12, 3)
    assert (ffhq.position_bits, ffhq.value_bits, ffhq.bytes_per_element) == (12, 13, 4)
    assert lsun.count_dtype == "int16"


def _example_specs(codec: SparseCodec, max_length: int, chunk: int, overlap: int):
    """Element specs (shapes only, nothing runs) of the dense example and the compact batch."""
    sequences = tf.data.Dataset.from_tensors(_padded(np.array([[codec.eos, 0, 0]]), max_length))
    dense = sequences.map(
        lambda ex: chunking.make_training_example(ex, codec, chunk, overlap, 0)).batch(1)
    compact_batches = chunking.chunk_dataset(sequences, codec, chunk, overlap, 1, seed=0)
    return dense.element_spec, compact_batches.element_spec


@pytest.mark.parametrize("name, resolution, block_size, clip, max_length", [
    ("lsun", 384, 8, 1200, 60000), ("ffhq", 1024, 16, 3200, 200000)])
def test_compact_examples_are_at_most_an_eighth_of_dense_ones(name, resolution, block_size,
                                                              clip, max_length):
    codec = SparseCodec(quality=75, resolution=resolution, block_size=block_size, clip=clip)
    dense, packed = _example_specs(codec, max_length, 896, 128)
    dense_bytes, compact_bytes = compact.example_bytes(dense), compact.example_bytes(packed)
    grid, channels = resolution // block_size, 3 * block_size**2
    assert dense_bytes >= 4 * grid * grid * channels  # the int32 partial image alone
    assert compact_bytes <= dense_bytes / 8, (name, compact_bytes, dense_bytes)


@pytest.mark.parametrize("loss_from_channel", [0, 3, 64])
def test_host_loss_tokens_equal_the_device_loss_mask(loss_from_channel):
    """The host counts loss tokens from the channel counts; the device masks targets by
    channel: the two agree on every chunk."""
    codec = SparseCodec(quality=50, resolution=64)
    sequence = codec.encode(render_shapes(0)[0])
    chunk, overlap = 40, 8
    example = _padded(sequence, len(sequence) + 5)
    layout = compact.SequenceLayout.of_codec(codec)
    packed = {**compact.pack_sequence(example["triples"], example["length"], layout),
              "content_hw": example["content_hw"], "label": example["label"]}
    n = -(-len(sequence) // chunk)
    examples = [chunking.compact_example(packed, k, chunk, overlap, loss_from_channel)
                for k in range(n)]
    batch = {key: tf.stack([e[key] for e in examples]) for key in examples[0]}
    dense = chunking.expand_chunks(batch, layout, chunk + overlap)
    np.testing.assert_array_equal(dense["loss_mask"].numpy().sum(axis=1),
                                  batch["loss_tokens"].numpy())
    if loss_from_channel:
        assert batch["loss_tokens"][0] < chunk  # the restriction removes something


def test_expansion_compiles_with_xla_and_matches_the_eager_one():
    codec = SparseCodec(quality=75, resolution=32)
    rng = np.random.default_rng(3)
    examples = [_padded(codec.encode(random_image(rng, 32, 32)), 700) for _ in range(6)]
    sequences = tf.data.Dataset.from_tensor_slices(
        {key: np.stack([e[key] for e in examples]) for key in examples[0]})
    batch = next(iter(chunking.chunk_dataset(sequences.repeat(), codec, 64, 16, 6, seed=1)))
    layout = compact.SequenceLayout.of_codec(codec)
    eager = chunking.expand_chunks(batch, layout, 80)
    compiled = tf.function(lambda b: chunking.expand_chunks(b, layout, 80), jit_compile=True)
    for key, value in compiled(batch).items():
        np.testing.assert_array_equal(value.numpy(), eager[key].numpy(), err_msg=key)
