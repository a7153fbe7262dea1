"""Chunked training examples from sparse sequences (docs/design.md §2, paper App. C).

A sequence of length L (EOS included) is cut into target chunks of `chunk_size` elements, the
last one holding the remaining `L − (n − 1)·chunk_size`, with `n = ceil(L / chunk_size)` (so
when L is a multiple of chunk_size the last chunk is full, never empty). One training example
is one target chunk k:

    element    0                          k·chunk             (k+1)·chunk
               |..........................|===== chunk k =====|..... EOS
    partial    |<- dense image of these ->|
    window               |<-- overlap --->|<---- targets ---->|
                         window_start

Window convention (left-aligned): the window holds elements
`[window_start, (k+1)·chunk)` with `window_start = max(0, k·chunk − overlap)`, stored at
indices `[0, (k+1)·chunk − window_start)` of a static `T = chunk + overlap` window and
zero-padded on the right. So for k ≥ 1 with `k·chunk ≥ overlap` the targets of chunk k sit
at indices `[overlap, T)`; for chunk 0 (and any chunk whose context would reach before the
sequence start) the window starts at element 0, the context is shorter and the targets start
at index `k·chunk`. `inputs` are the targets shifted right by one: the first input is the
element before the window, or the START triple when the window starts at element 0 (only
then). `loss_mask` is 1 exactly on the elements of chunk k that exist (`< L`).

The batched dataset yields one dict per batch, the Keras `x` of `model.fit` (no `y`):
`partial_image`, `inputs`, `targets`, `label` (what `DCTransformer` reads), plus `loss_mask`
(what `model.losses` reads), `loss_tokens`, `chunk_index`, `window_start`, `length` and
`content_hw`. The model ignores the keys it does not use.
"""

import dataclasses

import tensorflow as tf

from dctformer_tf.dct import SparseCodec, tf_ops


@dataclasses.dataclass(frozen=True)
class Chunking:
    """How a run cuts its sequences: the one setting that the data, the model's window, the
    sampler, likelihood scoring and export all share (docs/design.md §2).

    Args:
      chunk_size: int. Target elements per chunk (paper: 896).
      overlap: int. Context elements before the targets of a chunk (paper: 128).
    """

    chunk_size: int
    overlap: int

    def __post_init__(self):
        if isinstance(self.chunk_size, bool) or int(self.chunk_size) != self.chunk_size \
                or self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if isinstance(self.overlap, bool) or int(self.overlap) != self.overlap \
                or self.overlap < 0:
            raise ValueError(f"overlap must be a non-negative integer, got {self.overlap!r}")

    @property
    def window(self) -> int:
        """Decoder window `T = chunk_size + overlap`."""
        return self.chunk_size + self.overlap


def num_chunks(length, chunk_size: int) -> tf.Tensor:
    """`ceil(L / chunk_size)`: chunks in a sequence of `length` elements (EOS included)."""
    length = tf.convert_to_tensor(length, tf.int32)
    return (length + chunk_size - 1) // chunk_size


def sample_chunk_index(
    length, chunk_size: int, p_min: float = 0.1, power: float = 3.0, seed=None
) -> tf.Tensor:
    """Draw a target chunk index with `P(k) ∝ max((k+1)^−power, p_min)`.

    Args:
      length: int32 []. Sequence length L, EOS included (L ≥ 1).
      chunk_size: int. Elements per target chunk.
      p_min: float. Floor of the unnormalized probability (paper: 0.1).
      power: float. Decay exponent (paper: 3).
      seed: int [2]. Stateless seed: the same seed gives the same index.
    Returns:
      int32 [] in [0, ceil(L / chunk_size)).
    """
    k = tf.range(num_chunks(length, chunk_size), dtype=tf.float32)
    log_weights = tf.math.log(tf.maximum(tf.pow(k + 1.0, -power), p_min))  # [n]
    draw = tf.random.stateless_categorical(log_weights[None, :], 1, seed, dtype=tf.int32)
    return draw[0, 0]


def length_filter_keep_probability(length, l_max) -> tf.Tensor:
    """Eq. 11: keep a sequence of length L with probability `min(1, L / L_max)`.

    Returns:
      float32 [] (or the shape of `length`).
    """
    if not l_max or l_max <= 0:
        raise ValueError(f"l_max must be a positive length (or None to disable), got {l_max!r}")
    length = tf.cast(length, tf.float32)
    return tf.minimum(1.0, length / float(l_max))


def keep_by_length(length, l_max, seed) -> tf.Tensor:
    """bool []: whether the length filter keeps this sequence (always True if l_max is None).

    Args:
      seed: int [2]. Stateless seed of the keep/drop coin.
    """
    if l_max is None:
        return tf.constant(True)
    coin = tf.random.stateless_uniform([], seed, dtype=tf.float32)
    return coin < length_filter_keep_probability(length, l_max)


def filter_by_length(sequences: tf.data.Dataset, l_max, seed: int) -> tf.data.Dataset:
    """Keep each sequence with probability `min(1, L / L_max)`; identity if l_max is None.

    Args:
      sequences: dataset of dicts with an int32 [] "length".
      seed: int. The coins come from `tf.data.Dataset.random(seed)`, rerandomized on every
        pass, so a repeated dataset draws fresh coins and a run is reproducible given `seed`.
    """
    if l_max is None:
        return sequences
    keep = tf.data.Dataset.zip(sequences, _seeds(seed)).filter(
        lambda ex, s: keep_by_length(ex["length"], l_max, s)
    )
    return keep.map(lambda ex, s: ex)


def make_training_example(
    example: dict, codec: SparseCodec, chunk_size: int, overlap: int, chunk_index,
    loss_from_channel: int = 0,
) -> dict:
    """One training example: target chunk `chunk_index` of one sequence (module docstring).

    Args:
      example: {"triples": int32 [L_max, 3] (zero-padded after EOS), "length": int32 [],
        "content_hw": int32 [2], "label": int32 []}, as `encode_dataset` yields.
      codec: the `SparseCodec` with a resolution (static grid G).
      chunk_size: int. Target elements per chunk.
      overlap: int. Context elements before the chunk in the decoder window.
      chunk_index: int32 []. k, with k·chunk_size < L.
      loss_from_channel: int. Only targets with channel >= this carry loss (EOS always
        does): fine-tuning for a forced prefix (docs/design.md §6), e.g. 3 skips the DC band under
        "bands" (super-resolution), S² skips all of Y under "luma_first" (colorization).
        0 (default): every target of the chunk.
    Returns:
      {"partial_image": int32 [G, G, C], "inputs": int32 [T, 3], "targets": int32 [T, 3],
       "loss_mask": float32 [T], "loss_tokens": int32 [], "chunk_index": int32 [],
       "window_start": int32 [], "length": int32 [], "content_hw": int32 [2],
       "label": int32 []} with T = chunk_size + overlap.
    """
    grid = _static_grid(codec)
    window = chunk_size + overlap
    triples = tf.convert_to_tensor(example["triples"], tf.int32)  # [L_max, 3]
    length = tf.cast(example["length"], tf.int32)
    k = tf.cast(chunk_index, tf.int32)
    chunk_start = k * chunk_size
    tf.debugging.assert_less(
        chunk_start, length, message="chunk_index must satisfy chunk_index·chunk_size < length"
    )
    chunk_end = tf.minimum(chunk_start + chunk_size, length)
    window_start = tf.maximum(chunk_start - overlap, 0)

    # The encoder sees exactly the elements before the chunk, none of its targets.
    partial_image = tf_ops.sparse_to_dense(triples, codec, grid, length=chunk_start)

    steps = window_start + tf.range(window)  # [T] sequence index of each window slot
    real = steps < chunk_end
    rows = tf.gather(triples, tf.minimum(steps, tf.shape(triples)[0] - 1))  # [T, 3]
    targets = tf.where(real[:, None], rows, 0)
    start = tf.constant(start_triple(codec), tf.int32)
    previous = tf.gather(triples, tf.maximum(window_start - 1, 0))
    first_input = tf.where(window_start == 0, start, previous)  # [3]
    inputs = tf.concat([first_input[None], targets[:-1]], axis=0)  # [T, 3]
    in_loss = real & (steps >= chunk_start) & (targets[:, 0] >= loss_from_channel)
    loss_mask = tf.cast(in_loss, tf.float32)
    return {
        "partial_image": partial_image,
        "inputs": inputs,
        "targets": targets,
        "loss_mask": loss_mask,
        "loss_tokens": tf.reduce_sum(tf.cast(in_loss, tf.int32)),
        "chunk_index": k,
        "window_start": window_start,
        "length": length,
        "content_hw": tf.cast(example["content_hw"], tf.int32),
        "label": tf.cast(example["label"], tf.int32),
    }


def chunk_dataset(
    sequences: tf.data.Dataset,
    codec: SparseCodec,
    chunk_size: int,
    overlap: int,
    batch_size: int,
    seed: int,
    p_min: float = 0.1,
    l_max: int | None = None,
    shuffle_buffer: int = 1024,
    drop_remainder: bool = True,
    power: float = 3.0,
    loss_from_channel: int = 0,
) -> tf.data.Dataset:
    """Sequences -> batches of chunked training examples for `model.fit`.

    length filter -> chunk choice -> shuffle -> example -> batch -> prefetch. Shuffling
    (sequence, chunk index) pairs before building the examples gives the same examples as
    shuffling afterwards, but the buffer then holds sequences rather than partial images
    (G·G·C values each, 0.8 MB at R = 256, S = 8).

    Args:
      sequences: dataset of `encode_dataset` examples (static `triples` shape). Repeat it
        before this call for several epochs: chunk choices and length-filter coins are
        redrawn on every pass.
      codec: the `SparseCodec` the sequences were encoded with (with a resolution).
      chunk_size, overlap: target chunk size and decoder context; window T = their sum.
      batch_size: int. Global batch size.
      seed: int. Seeds the length filter, chunk choice and shuffle; same seed, same batches.
      p_min, power: chunk choice `P(k) ∝ max((k+1)^−power, p_min)`.
      l_max: length filter `min(1, L / l_max)`; None disables it.
      shuffle_buffer: sequences in the shuffle buffer; 0 disables shuffling.
      drop_remainder: keep every batch the same static size (TPU/XLA).
      loss_from_channel: see `make_training_example`.
    Returns:
      dataset of dicts as `make_training_example` returns, each with a leading batch axis.
    """
    _static_grid(codec)
    ds = filter_by_length(sequences, l_max, seed)
    ds = tf.data.Dataset.zip(ds, _seeds(seed + 1)).map(
        lambda ex, s: (ex, sample_chunk_index(ex["length"], chunk_size, p_min, power, s))
    )
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda ex, k: make_training_example(ex, codec, chunk_size, overlap, k,
                                            loss_from_channel),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def start_triple(codec: SparseCodec) -> tuple[int, int, int]:
    """The START triple `(C + 1, P, V)`: ids just past each target vocabulary (the model's
    `channel_decoder.start_triple`; data does not import the model, the dependency rule of docs/design.md)."""
    return codec.dct_channels + 1, codec.num_positions, codec.num_values


def _static_grid(codec: SparseCodec) -> tuple:
    if codec.grid is None:
        raise ValueError("chunking needs a codec with a resolution (a static grid G x G)")
    return codec.grid


def _seeds(seed: int) -> tf.data.Dataset:
    """An endless dataset of int64 [2] stateless seeds, new ones on every pass."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
