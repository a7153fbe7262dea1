"""A run's input: the images of a data source, encoded to sparse sequences, read by each
input pipeline of a distribution strategy in its own shard, and cut into training chunks.

Gin-free: gin builds `SequenceSource` (`build_sequences.*`, `train/experiment.py`) and the
`ChunkPolicy` (`build_chunks.*`, `train/gin_model.py`), and `train` hands them to these
functions.
"""

import dataclasses
import logging
from collections.abc import Callable

import tensorflow as tf

from dctformer_tf.data.chunking import chunk_dataset
from dctformer_tf.data.layout import Chunking, ChunkPolicy
from dctformer_tf.data.pipeline import OverlongLog, encode_dataset
from dctformer_tf.data.source_settings import DataSettings
from dctformer_tf.data.sources import Shard, get_source
from dctformer_tf.dct import SparseCodec

log = logging.getLogger("dctformer_tf.data")

# Input pipeline i draws its chunks and shuffles with seed + i * PIPELINE_SEED_STRIDE: pipeline
# 0 keeps the run's seed (single-worker runs are unchanged), and the others stay clear of the
# small offsets the run itself adds to its seed (+1 for eval, + epoch on resuming, +1 inside
# the chunking).
PIPELINE_SEED_STRIDE = 1_000_003


@dataclasses.dataclass(frozen=True)
class SequenceSource:
    """Images of a data source, encoded to sparse sequences (`build_sequences.*` in gin).

    Args:
      data: DataSettings. Source, data_dir and splits.
      max_length: int. Sequence buffer length (EOS included).
      num_examples: int or None. Take only the first N images of the training split.
      num_eval_examples: int or None. Likewise for the held-out split.
      on_overflow: str. What a sequence longer than max_length does (`encode_dataset`).
      cache: bool. Cache the encoded sequences in memory (small datasets: encode once).
      encoder: str. The fast encoder's form (`encode_dataset`): "auto", "fused" or "ops".
        "ops" where the input pipeline runs on a host that did not build the fused kernel
        (a TPU Node's remote host).
    """

    data: DataSettings
    max_length: int
    num_examples: int | None = None
    num_eval_examples: int | None = 1000
    on_overflow: str = "error"
    cache: bool = False
    encoder: str = "auto"

    def dataset(self, codec: SparseCodec, split: str, num_examples: int | None = None,
                shard: Shard | None = None, overlong: OverlongLog | None = None
                ) -> tf.data.Dataset:
        """Encoded sequences of `split`: `images(split, num_examples, shard)`, encoded; with
        on_overflow="skip", `overlong` records the images skipped."""
        sequences = self.encode(self.images(split, num_examples, shard), codec, overlong)
        return sequences.cache() if self.cache else sequences

    def images(self, split: str, num_examples: int | None = None,
               shard: Shard | None = None) -> tf.data.Dataset:
        """The images of `split`, `{"image": uint8 [H, W, 3], "label": int32 [], "name":
        string []}`: the first `num_examples` (None: `self.num_examples` for the training
        split, `self.num_eval_examples` for any other), then only `shard`'s part of them
        (None: all).

        The source itself cuts and shards (`data.sources.get_source`), so a pipeline never
        decodes the other shards' images.
        """
        if num_examples is None:
            is_train = split == self.data.train_split
            num_examples = self.num_examples if is_train else self.num_eval_examples
        images, _ = get_source(self.data.source, split, shard=shard, num_examples=num_examples,
                               **self.data.source_kwargs())
        return images

    def encode(self, images: tf.data.Dataset, codec: SparseCodec,
               overlong: OverlongLog | None = None) -> tf.data.Dataset:
        """Images -> padded sparse sequences (`data.pipeline.encode_dataset`)."""
        return encode_dataset(images, codec, self.max_length, on_overflow=self.on_overflow,
                              overlong=overlong, encoder=self.encoder)


def training_chunks(sequences: tf.data.Dataset, codec: SparseCodec, chunking: Chunking,
                    policy: ChunkPolicy, batch_size: int, seed: int) -> tf.data.Dataset:
    """Sequences (repeated forever) -> batches of compact training chunks
    (`chunking.chunk_dataset`)."""
    return chunk_dataset(sequences.repeat(), codec, chunking.chunk_size, chunking.overlap,
                         batch_size, seed, policy)


def sharded_input(sequences: SequenceSource, codec: SparseCodec, chunking: Chunking,
                  policy: ChunkPolicy, split: str, batch_size: int, seed: int,
                  overlong: OverlongLog | None = None
                  ) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
    """The input function `train` gives `strategy.distribute_datasets_from_function`.

    Each input pipeline (one per worker process, or per TPU host) reads and encodes only
    its shard of `split` (`pipeline_sequences`) and chunks it with a seed of its own, so
    the workers together encode every image once per epoch and draw different chunks.
    Hence no autosharding: the datasets it returns are already one worker's.

    Args:
      batch_size: the global batch; each pipeline batches per replica.
      seed: the run's seed for this input (`pipeline_seed` derives each pipeline's).

    Returns:
      fn(context) -> endless dataset of training chunks (`training_chunks`) in batches of
      `context.get_per_replica_batch_size(batch_size)`.
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        data = pipeline_sequences(sequences, codec, split, context, overlong)
        return training_chunks(data, codec, chunking, policy,
                               context.get_per_replica_batch_size(batch_size),
                               pipeline_seed(seed, context.input_pipeline_id))

    return dataset_fn


def pipeline_sequences(sequences: SequenceSource, codec: SparseCodec, split: str,
                       context: tf.distribute.InputContext,
                       overlong: OverlongLog | None = None) -> tf.data.Dataset:
    """One epoch of the encoded sequences of `split` that one input pipeline reads."""
    return sequences.dataset(codec, split, shard=pipeline_shard(context), overlong=overlong)


def pipeline_shard(context: tf.distribute.InputContext) -> Shard | None:
    """The part of the source one input pipeline reads: all of it (None) when it is the only
    pipeline, else shard `input_pipeline_id` of `num_input_pipelines`."""
    if context.num_input_pipelines == 1:
        return None
    return Shard(context.input_pipeline_id, context.num_input_pipelines)


def pipeline_seed(seed: int, pipeline_id: int) -> int:
    """Input pipeline `pipeline_id`'s chunking and shuffle seed; pipeline 0 keeps `seed`."""
    return seed + PIPELINE_SEED_STRIDE * pipeline_id


def local_input_contexts(strategy: tf.distribute.Strategy) -> list[tf.distribute.InputContext]:
    """The `InputContext` of each input pipeline this process builds under `strategy`: the one
    whole-source pipeline of a single-worker strategy, this worker's under
    MultiWorkerMirroredStrategy, one per host under TPUStrategy (one client builds them all).

    TensorFlow has no public call for them, so the strategy is asked to distribute a
    placeholder dataset (nothing is read) and the contexts it hands out are kept.
    """
    contexts = []

    def record(context: tf.distribute.InputContext) -> tf.data.Dataset:
        contexts.append(context)
        return tf.data.Dataset.from_tensors([0])

    strategy.distribute_datasets_from_function(record)
    return contexts


def overlong_log(strategy: tf.distribute.Strategy,
                 contexts: list[tf.distribute.InputContext]) -> OverlongLog:
    """Where this worker records the training images it skips as over-long. A multi-host
    TPU client builds every host's pipeline, which runs on that host, out of reach of a
    Python callback: there each host prints its skips and nothing is counted."""
    remote = isinstance(strategy, tf.distribute.TPUStrategy) and len(contexts) > 1
    if remote:
        log.info("Multi-host TPU: each host prints the over-long images it skips; the run "
                 "does not count them")
    return OverlongLog(host=not remote)


def budget_chunks(sequences: SequenceSource, codec: SparseCodec, chunking: Chunking,
                  policy: ChunkPolicy, batch_size: int, seed: int) -> tf.data.Dataset:
    """Global batches of chunks of the whole training split, to measure the token budget on.

    Every worker must run the same number of steps (one that stops early leaves the others
    waiting in a collective), so every worker measures the same data, the unsharded source
    with the run's seed, and not its own shard. Uncached: reading a cache partly would
    discard it.
    """
    # Its own quiet log: the training pipelines name and count their own skips.
    whole = dataclasses.replace(sequences, cache=False).dataset(
        codec, sequences.data.train_split, overlong=OverlongLog(warn=False))
    return training_chunks(whole, codec, chunking, policy, batch_size, seed)


def mean_loss_tokens(chunks: tf.data.Dataset, num_batches: int = 20) -> float:
    """Mean loss-bearing tokens per batch over the first batches of the data."""
    counts = [float(tf.reduce_sum(batch["loss_tokens"])) for batch in chunks.take(num_batches)]
    return sum(counts) / len(counts)
