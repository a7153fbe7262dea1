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

Two forms of the same example (docs/design.md §2.4):
- dense, the model's inputs: `partial_image`, `inputs`, `targets`, `label` (what
  `DCTransformer` reads) and `loss_mask` (what `model.losses` reads), built by
  `chunk_windows` for a batch of chunks (`make_training_example` for one);
- compact, what `chunk_dataset` yields and the host sends to the device: the packed sequence
  (`compact.py`) and its chunk's bounds (`compact_example`), turned into the dense form
  inside the compiled step by `expand_chunks` (`DCTransformerTrainer` does it), with the
  same `chunk_windows`.

Encode once, train many: an encoded sequence yields on average `examples_per_encode ·
min(1, L / l_max)` examples, each with its own chunk index (`examples_from_sequence`): the
(L, k) of the examples are distributed as with one example per encode and the length filter
of Eq. 11, at a fraction of the encodes.
"""

import tensorflow as tf

from dctformer_tf.data import compact

# Backend-neutral (keras.ops): the train step builds its inputs with these on any backend.
from dctformer_tf.data.expansion import (  # noqa: F401  (re-exported)
    chunk_windows,
    expand_chunks,
    is_compact,
)
from dctformer_tf.data.layout import Chunking, ChunkPolicy  # noqa: F401  (re-exported)
from dctformer_tf.dct import SparseCodec


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


def examples_from_sequence(length, l_max, examples_per_encode: int, seed) -> tf.Tensor:
    """int32 []: how many training examples one encoded sequence of length L yields.

    Its mean is `examples_per_encode · q(L)`, with `q(L) = min(1, L / l_max)` the length
    filter of Eq. 11 (q = 1 without one): `floor(r·q)`, plus one with probability
    `frac(r·q)`. Every example then draws its own chunk index, so the examples' (L, k)
    follow `p(L)·q(L)·P(k | L)`, exactly the distribution of the one-example-per-encode
    pipeline (r = 1, where this is the keep/drop coin of Eq. 11), at 1/r of its encodes.

    Args:
      examples_per_encode: int r >= 1.
      seed: int [2]. Stateless seed of the coin.
    """
    q = tf.constant(1.0) if l_max is None else length_filter_keep_probability(length, l_max)
    mean = float(examples_per_encode) * q
    whole = tf.floor(mean)
    coin = tf.random.stateless_uniform([], seed, dtype=tf.float32)
    return tf.cast(whole, tf.int32) + tf.cast(coin < mean - whole, tf.int32)


def repeat_by_length(sequences: tf.data.Dataset, l_max, seed: int,
                     examples_per_encode: int = 1, kept=None) -> tf.data.Dataset:
    """Each sequence, repeated `examples_from_sequence` times (0 drops it).

    With `examples_per_encode = 1` this is the length filter of Eq. 11 (keep with
    probability `min(1, L / l_max)`), and the identity without an `l_max`.

    Args:
      sequences: dataset of dicts with an int32 [] "length".
      seed: int. The coins come from `tf.data.Dataset.random(seed)`, rerandomized on every
        pass, so a repeated dataset draws fresh coins and a run is reproducible given `seed`.
      kept: optional function of a sequence, applied once to each kept sequence before it
        is repeated (a dropped one never reaches it); the coins do not depend on it.
    """
    if isinstance(examples_per_encode, bool) or int(examples_per_encode) != examples_per_encode \
            or examples_per_encode < 1:
        raise ValueError(f"examples_per_encode must be a positive integer, got "
                         f"{examples_per_encode!r}")
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}
    if l_max is None and examples_per_encode == 1:
        return sequences if kept is None else sequences.map(kept, **parallel)
    if l_max is not None:
        length_filter_keep_probability(1, l_max)  # checks l_max before any data is read
    counted = tf.data.Dataset.zip(sequences, _seeds(seed)).map(
        lambda ex, s: (ex, examples_from_sequence(ex["length"], l_max, examples_per_encode, s)))
    counted = counted.filter(_has_examples)
    if kept is not None:
        counted = counted.map(lambda ex, count: (kept(ex), count), **parallel)
    if examples_per_encode == 1:
        # At most one example per sequence: the filter above is all it takes, with no
        # flat_map (an inner dataset per element), so the paper's length filter stays a filter.
        return counted.map(_sequence_of)
    return counted.flat_map(_repeated)


def _has_examples(example, count):
    return count > 0


def _sequence_of(example, count):
    return example


def _repeated(example, count):
    return tf.data.Dataset.from_tensors(example).repeat(tf.cast(count, tf.int64))


def chunk_bounds(length, chunk_index, chunk_size: int, overlap: int) -> tuple:
    """Where chunk k lies in its sequence (module docstring), elementwise.

    Args:
      length: int32 [...] L, EOS included.
      chunk_index: int32 [...] k, with k·chunk_size < L.
    Returns:
      (chunk_start, chunk_end, window_start), each int32 [...]: the targets are elements
      `[chunk_start, chunk_end)`, the window starts at element `window_start`.
    """
    length = tf.cast(length, tf.int32)
    chunk_start = tf.cast(chunk_index, tf.int32) * chunk_size
    tf.debugging.assert_less(
        chunk_start, length, message="chunk_index must satisfy chunk_index·chunk_size < length"
    )
    chunk_end = tf.minimum(chunk_start + chunk_size, length)
    window_start = tf.maximum(chunk_start - overlap, 0)
    return chunk_start, chunk_end, window_start


def make_training_example(
    example: dict, codec: SparseCodec, chunk_size: int, overlap: int, chunk_index,
    loss_from_channel: int = 0,
) -> dict:
    """One training example in dense form: target chunk `chunk_index` of one sequence
    (module docstring); `chunk_windows` on a batch of one. Training itself ships compact
    examples (`compact_example`) and builds this on the device.

    Args:
      example: {"triples": int32 [L_max, 3] (zero-padded after EOS), "length": int32 [],
        "content_hw": int32 [2], "label": int32 []}, as `encode_dataset` yields.
      codec: the `SparseCodec` with a resolution (static grid G).
      chunk_size: int. Target elements per chunk.
      overlap: int. Context elements before the chunk in the decoder window.
      chunk_index: int32 []. k, with k·chunk_size < L.
      loss_from_channel: int. Only targets with channel >= this carry loss (EOS always
        does): fine-tuning for a forced prefix (docs/design.md §6), e.g. 3 skips the DC band
        under "bands" (super-resolution), S² skips all of Y under "luma_first"
        (colorization). 0 (default): every target of the chunk.
    Returns:
      {"partial_image": int32 [G, G, C], "inputs": int32 [T, 3], "targets": int32 [T, 3],
       "loss_mask": float32 [T], "loss_tokens": int32 [], "chunk_index": int32 [],
       "window_start": int32 [], "length": int32 [], "content_hw": int32 [2],
       "label": int32 []} with T = chunk_size + overlap.
    """
    _static_grid(codec)
    length = tf.cast(example["length"], tf.int32)
    k = tf.cast(chunk_index, tf.int32)
    bounds = chunk_bounds(length, k, chunk_size, overlap)
    batched = chunk_windows(tf.convert_to_tensor(example["triples"], tf.int32)[None],
                            *(b[None] for b in bounds), chunk_size + overlap, codec,
                            loss_from_channel)
    out = {key: value[0] for key, value in batched.items()}
    out.update({
        "loss_tokens": tf.cast(tf.reduce_sum(out["loss_mask"]), tf.int32),
        "chunk_index": k,
        "window_start": bounds[2],
        "length": length,
        "content_hw": tf.cast(example["content_hw"], tf.int32),
        "label": tf.cast(example["label"], tf.int32),
    })
    return out


def compact_example(packed: dict, chunk_index, chunk_size: int, overlap: int,
                    loss_from_channel: int = 0) -> dict:
    """One training example in compact form: the packed sequence and its chunk's bounds.

    Args:
      packed: `compact.pack_sequence`'s dict plus "content_hw" int32 [2], "label" int32 [].
      chunk_index: int32 []. k, with k·chunk_size < L.
    Returns:
      packed's keys plus int32 [] "chunk_index", "chunk_start", "chunk_end",
      "window_start", "loss_from_channel" and "loss_tokens" (loss-bearing targets, counted
      here so that the host can budget tokens without the device).
    """
    chunk_start, chunk_end, window_start = chunk_bounds(packed["length"], chunk_index,
                                                        chunk_size, overlap)
    # Channels never decrease: the first `prefix` elements are exactly those below
    # loss_from_channel, so the loss tokens are the chunk's elements past that prefix.
    prefix = compact.prefix_elements(packed["channel_counts"], loss_from_channel)
    loss_tokens = tf.maximum(chunk_end - tf.maximum(chunk_start, prefix), 0)
    return {**packed, "chunk_index": tf.cast(chunk_index, tf.int32), "chunk_start": chunk_start,
            "chunk_end": chunk_end, "window_start": window_start,
            "loss_from_channel": tf.constant(loss_from_channel, tf.int32),
            "loss_tokens": loss_tokens}


def chunk_dataset(
    sequences: tf.data.Dataset,
    codec: SparseCodec,
    chunk_size: int,
    overlap: int,
    batch_size: int,
    seed: int,
    policy: ChunkPolicy | None = None,
    drop_remainder: bool = True,
    **policy_fields,
) -> tf.data.Dataset:
    """Sequences -> batches of compact training examples for `model.fit`.

    length policy (each sequence yields `examples_from_sequence` examples; a kept one is
    packed once, before its repeats) -> chunk choice per example -> shuffle -> chunk bounds
    -> batch -> prefetch. The dense partial images and windows are built on the device
    (`expand_chunks`, called by the trainer).

    Args:
      sequences: dataset of `encode_dataset` examples (static `triples` shape). Repeat it
        before this call for several epochs: chunk choices and length-filter coins are
        redrawn on every pass.
      codec: the `SparseCodec` the sequences were encoded with (with a resolution).
      chunk_size, overlap: target chunk size and decoder context; window T = their sum.
      batch_size: int. Batch size of this input pipeline.
      seed: int. Seeds the length policy, chunk choice and shuffle; same seed, same batches.
      policy: `ChunkPolicy`: chunk law, length filter, shuffle, loss prefix and examples per
        encode. None: `ChunkPolicy(**policy_fields)`, so that a caller may name only the
        fields it changes (`p_min=0.5`).
      drop_remainder: keep every batch the same static size (TPU/XLA).
    Returns:
      dataset of `compact_example` dicts with a leading batch axis.
    """
    if policy is None:
        policy = ChunkPolicy(**policy_fields)
    elif policy_fields:
        raise TypeError(f"chunk_dataset: give a policy or its fields, not both ({policy_fields})")
    p_min, power, l_max = policy.p_min, policy.power, policy.l_max
    shuffle_buffer, examples_per_encode = policy.shuffle_buffer, policy.examples_per_encode
    loss_from_channel = policy.loss_from_channel
    layout = compact.SequenceLayout.of_codec(codec)

    def pack(ex):
        return {**compact.pack_sequence(ex["triples"], ex["length"], layout),
                "content_hw": tf.cast(ex["content_hw"], tf.int32),
                "label": tf.cast(ex["label"], tf.int32)}

    # Packed after the length filter (a dropped sequence is never packed) and before the
    # repeats (once per encode, whatever r).
    ds = repeat_by_length(sequences, l_max, seed, examples_per_encode, kept=pack)
    ds = tf.data.Dataset.zip(ds, _seeds(seed + 1)).map(
        lambda ex, s: (ex, sample_chunk_index(ex["length"], chunk_size, p_min, power, s))
    )
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda ex, k: compact_example(ex, k, chunk_size, overlap, loss_from_channel),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _static_grid(codec: SparseCodec) -> tuple:
    if codec.grid is None:
        raise ValueError("chunking needs a codec with a resolution (a static grid G x G)")
    return codec.grid


def _seeds(seed: int) -> tf.data.Dataset:
    """An endless dataset of int64 [2] stateless seeds, new ones on every pass."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
