"""Compact batches -> the model's dense inputs, on the device, on any Keras backend.

`chunk_dataset` (tf.data) and `numpy_input` (numpy) send packed sequences and chunk bounds
(`compact.py`, docs/design.md §2.4); the compiled train step turns them into partial images
and decoder windows here. Written in `keras.ops` only, so the same code runs in a TensorFlow
step on a TPU and in a JAX step on a GPU host with no TensorFlow; no TensorFlow import.

Shapes use the letters of docs/design.md: B batch, L_max sequence buffer, T window,
G grid side, P = G² positions, C channels.
"""

from keras import ops

from dctformer_tf.data.layout import SequenceLayout, start_triple


def unpack_sequences(packed, channel_counts, length, layout: SequenceLayout):
    """The int32 triples of packed sequences (`compact.pack_sequence`'s inverse).

    Args:
      packed: uint8 [B, L_max, bytes].
      channel_counts: int [B, C].
      length: int32 [B].
    Returns:
      int32 [B, L_max, 3], equal to the triples `pack_sequence` was given (EOS row
      `(C, 0, 0)`, zeros after it).
    """
    packed = ops.cast(packed, "int32")
    max_length = ops.shape(packed)[1]
    shifts = 8 * ops.arange(layout.bytes_per_element, dtype="int32")
    word = ops.sum(ops.left_shift(packed, shifts), axis=-1)  # [B, L_max], little-endian
    position = ops.bitwise_and(word, (1 << layout.position_bits) - 1)
    token = ops.right_shift(word, layout.position_bits)
    channel = channels_from_counts(channel_counts, max_length)
    real = ops.arange(max_length, dtype="int32")[None, :] < ops.cast(length, "int32")[:, None]
    triples = ops.stack([channel, position, token], axis=-1)  # [B, L_max, 3]
    return ops.where(real[..., None], triples, 0)


def channels_from_counts(counts, max_length):
    """int [B, C] counts -> int32 [B, L_max]: element i's channel is the number of channels
    that end at or before i (channels never decrease along a sequence).

    One mark per channel end and a running sum: O(L + C) per sequence, no [L, C] compare.
    """
    counts = ops.cast(counts, "int32")
    batch, channels = ops.shape(counts)[0], ops.shape(counts)[1]
    ends = ops.minimum(ops.cumsum(counts, axis=1), max_length)  # [B, C] exclusive ends
    rows = ops.arange(batch, dtype="int32")[:, None] * (max_length + 1)  # [B, 1]
    flat = ops.reshape(rows + ends, [-1, 1])  # [B·C, 1] into a [B·(L_max + 1)] buffer
    marks = ops.scatter(flat, ops.ones([batch * channels], "int32"),
                        [batch * (max_length + 1)])
    marks = ops.reshape(marks, [batch, max_length + 1])
    return ops.cumsum(marks, axis=1)[:, :max_length]


def scatter_dense(triples, layout: SequenceLayout, length):
    """Triples -> dense DCT images; elements at or past `length`, EOS and anything after
    EOS are ignored.

    Args:
      triples: int32 [B, L_max, 3].
      layout: a `SequenceLayout` or `SparseCodec` with a square grid.
      length: int32 [B], elements to scatter from each sequence.
    Returns:
      int32 [B, G, G, C].
    """
    triples = ops.cast(triples, "int32")
    batch, max_length = ops.shape(triples)[0], ops.shape(triples)[1]
    grid = layout.grid[0]
    positions, channels = grid * grid, layout.dct_channels
    channel, position, token = triples[..., 0], triples[..., 1], triples[..., 2]  # [B, L_max]
    steps = ops.arange(max_length, dtype="int32")[None, :]
    before_eos = ops.cumsum(ops.cast(ops.equal(channel, layout.dct_channels), "int32"),
                            axis=1) == 0
    valid = ops.logical_and(steps < ops.cast(length, "int32")[:, None], before_eos)
    rows = ops.arange(batch, dtype="int32")[:, None]
    # p = row·G + col, so (b, p, c) is the flat index of (b, row, col, c) in [B, G, G, C].
    flat = (rows * positions + ops.where(valid, position, 0)) * channels \
        + ops.where(valid, channel, 0)
    values = ops.where(valid, token - layout.clip, 0)  # an invalid element adds 0 somewhere
    dense = ops.scatter(ops.reshape(flat, [-1, 1]), ops.reshape(values, [-1]),
                        [batch * positions * channels])
    return ops.reshape(dense, [batch, grid, grid, channels])


def chunk_windows(triples, chunk_start, chunk_end, window_start, window: int, layout,
                  loss_from_channel=0) -> dict:
    """The model inputs of a batch of chunks: the partial images and the decoder windows
    (the window convention is in `data/chunking.py`'s docstring).

    The one function that builds them: for training (inside the compiled step, from compact
    batches, `expand_chunks`) and for likelihood scoring.

    Args:
      triples: int32 [B, L_max, 3] whole sequences (zero after EOS).
      chunk_start, chunk_end, window_start: int32 [B] (`chunking.chunk_bounds`).
      window: int. Decoder window T = chunk_size + overlap.
      layout: a `SparseCodec` or `SequenceLayout` (grid, clip, channels).
      loss_from_channel: int32 [B] or int. Only targets with channel >= this carry loss
        (EOS always does); 0: every target of the chunk.
    Returns:
      {"partial_image": int32 [B, G, G, C], "inputs": int32 [B, T, 3],
       "targets": int32 [B, T, 3], "loss_mask": float32 [B, T]}.
    """
    triples = ops.cast(triples, "int32")
    max_length = ops.shape(triples)[1]
    chunk_start, chunk_end, window_start = (
        ops.cast(x, "int32")[:, None] for x in (chunk_start, chunk_end, window_start))  # [B, 1]
    # The encoder sees exactly the elements before the chunk, none of its targets.
    partial_image = scatter_dense(triples, layout, chunk_start[:, 0])

    steps = window_start + ops.arange(window, dtype="int32")[None, :]  # [B, T] element index
    real = steps < chunk_end
    rows = _gather_rows(triples, ops.minimum(steps, max_length - 1))  # [B, T, 3]
    targets = ops.where(real[..., None], rows, 0)
    start = ops.convert_to_tensor(
        start_triple(layout.dct_channels, layout.num_positions, layout.num_values), "int32")
    previous = _gather_rows(triples, ops.maximum(window_start - 1, 0))  # [B, 1, 3]
    first_input = ops.where((window_start == 0)[..., None], start, previous)  # [B, 1, 3]
    inputs = ops.concatenate([first_input, targets[:, :-1]], axis=1)  # [B, T, 3]
    from_channel = ops.cast(loss_from_channel, "int32")
    if len(ops.shape(from_channel)):
        from_channel = from_channel[:, None]
    in_loss = real & (steps >= chunk_start) & (targets[..., 0] >= from_channel)
    return {"partial_image": partial_image, "inputs": inputs, "targets": targets,
            "loss_mask": ops.cast(in_loss, "float32")}


def _gather_rows(triples, index):
    """int32 [B, L, 3] at int32 [B, K] -> [B, K, 3]."""
    index = ops.repeat(index[..., None], 3, axis=-1)  # [B, K] -> [B, K, 3]
    return ops.take_along_axis(triples, index, axis=1)


def is_compact(batch: dict) -> bool:
    """Whether a batch is compact (packed sequences) rather than dense model inputs."""
    return "packed" in batch


def expand_chunks(batch: dict, layout: SequenceLayout, window: int) -> dict:
    """A compact batch -> the model's dense inputs, inside the compiled step.

    Args:
      batch: a compact batch (`chunking.compact_example`s with a leading batch axis).
      layout: the sequences' `SequenceLayout` (the model's block size, grid, clip).
      window: the model's decoder window T.
    Returns:
      the batch with `chunk_windows`' "partial_image", "inputs", "targets" and "loss_mask"
      added (the packed fields stay: the model ignores them).
    """
    triples = unpack_sequences(batch["packed"], batch["channel_counts"], batch["length"],
                               layout)
    windows = chunk_windows(triples, batch["chunk_start"], batch["chunk_end"],
                            batch["window_start"], window, layout, batch["loss_from_channel"])
    return {**batch, **windows}
