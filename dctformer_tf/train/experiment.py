"""The training entry point, and the only training module that knows gin exists.

`train()` narrates its phases: run settings -> strategy -> data -> model and optimizer (in
the strategy scope) -> restore the latest checkpoint, if any -> `model.fit` with
checkpoints, TensorBoard and the optional sample and bpd callbacks.
Started again with the same command after being killed, it resumes from its last checkpoint
(same step, optimizer state, schedule position, tokens). The files it writes are described
in `dctformer_tf.runs`.

One source of truth (docs/design.md §9): the codec is bound once (`build_codec.*`), the
chunking once (`build_chunking.*`), and `build_model.*` binds the architecture only; the
model's vocabularies, grid and window are derived from the first two (`runs.model_config`).
"""

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import sys
from collections.abc import Callable

import gin
import keras
import tensorflow as tf

from dctformer_tf.data.chunking import chunk_dataset
from dctformer_tf.data.pipeline import OverlongLog, encode_dataset
from dctformer_tf.data.sources import Shard, get_source
from dctformer_tf.dct import SparseCodec
from dctformer_tf.runs import (
    CHECKPOINT_DIR,
    DataSettings,
    RunSettings,
    build_run_model,
    restore_checkpoint,
    write_run_file,
)
from dctformer_tf.train.bpd_callback import HeldOutBpd
from dctformer_tf.train.callbacks import (
    CheckpointEveryEpoch,
    StopAtTokenBudget,
    StopOnNonFinite,
    TensorBoardScalars,
)
from dctformer_tf.train.gin_model import (  # noqa: F401  (gin_model_config re-exported)
    build_chunking,
    build_codec,
    gin_model_config,
    model_architecture,
)
from dctformer_tf.train.nonfinite import MonitoredAdam
from dctformer_tf.train.run_lock import RunLock
from dctformer_tf.train.sample_callback import SampleGrid
from dctformer_tf.train.schedules import WarmupCosine
from dctformer_tf.train.strategy import check_global_batch, make_strategy
from dctformer_tf.train.trainer import DCTransformerTrainer

log = logging.getLogger("dctformer_tf.train")

# What restoring a truncated, corrupted or mismatched checkpoint raises.
DAMAGED_CHECKPOINT = (tf.errors.DataLossError, tf.errors.OutOfRangeError,
                      tf.errors.InvalidArgumentError, tf.errors.NotFoundError, ValueError,
                      IndexError)

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


@gin.configurable("build_sequences")
def sequence_source(
    source: str = "shapes",
    data_dir: str | None = None,
    num_examples: int | None = None,
    num_eval_examples: int | None = 1000,
    max_length: int = gin.REQUIRED,
    on_overflow: str = "error",
    cache: bool = False,
    encoder: str = "auto",
) -> SequenceSource:
    """source: "shapes", "folder:/path" or a TFDS name (`data.sources.get_source`)."""
    return SequenceSource(DataSettings(source, data_dir), max_length, num_examples,
                          num_eval_examples, on_overflow, cache, encoder)


def build_run_settings() -> tuple[RunSettings, SequenceSource]:
    """The run's settings from the gin bindings, each bound once, and its data source."""
    sequences = sequence_source()
    run = RunSettings(build_codec(), build_chunking(), model_architecture(),
                      sequences.max_length, sequences.data)
    return run, sequences


@gin.configurable
def build_chunks(
    sequences: tf.data.Dataset,
    run: RunSettings,
    batch_size: int,
    seed: int,
    p_min: float = 0.1,
    l_max: int | None = None,
    shuffle_buffer: int = 1024,
    loss_from_channel: int = 0,
    examples_per_encode: int = 1,
) -> tf.data.Dataset:
    """Sequences (repeated forever) -> batches of compact training chunks (`data.chunking`),
    on the run's chunking.

    loss_from_channel > 0 restricts the loss to the non-prefix part of each sequence
    (super-resolution / colorization fine-tuning, `gin/runs/*_shapes.gin`).
    examples_per_encode > 1 draws that many chunks (on average, before the length filter)
    from each encoded sequence: the same (length, chunk) distribution for fewer encodes
    (gin/data/*.gin set it for the Table 3 runs)."""
    return chunk_dataset(sequences.repeat(), run.codec, run.chunking.chunk_size,
                         run.chunking.overlap, batch_size, seed, p_min=p_min, l_max=l_max,
                         shuffle_buffer=shuffle_buffer, loss_from_channel=loss_from_channel,
                         examples_per_encode=examples_per_encode)


def sharded_input(sequences: SequenceSource, run: RunSettings, split: str, batch_size: int,
                  seed: int, overlong: OverlongLog | None = None
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
      fn(context) -> endless dataset of training chunks (`build_chunks`) in batches of
      `context.get_per_replica_batch_size(batch_size)`.
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        data = pipeline_sequences(sequences, run.codec, split, context, overlong)
        return build_chunks(data, run, context.get_per_replica_batch_size(batch_size),
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


@gin.configurable
def train(
    model_dir: str = gin.REQUIRED,
    strategy: str = "default",
    batch_size: int = gin.REQUIRED,
    learning_rate: float = 5e-4,
    warmup_steps: int = 1000,
    total_steps: int | None = None,
    tokens: float | None = None,
    steps_per_epoch: int = 100,
    eval_steps: int = 0,
    keep_checkpoints: int = 3,
    log_every: int = 10,
    seed: int = 0,
    mixed_precision: bool = False,
    jit_compile: bool = False,
    steps_per_execution: int = 1,
    tpu: str | None = None,
    verbose: int | str = "auto",
    sample_every: int = 0,
    sample_num: int = 4,
    sample_max_chunks: int | None = None,
    bpd_eval_images: int = 0,
    adam_beta_1: float = 0.9,
    adam_beta_2: float = 0.999,
    deterministic: bool = False,
) -> keras.callbacks.History:
    """Train a DCTransformer on chunks of sparse DCT sequences.

    Args:
      model_dir: where checkpoints, TensorBoard logs and the run settings go.
      strategy: "default" | "one_device" | "mirrored" | "multi_worker" | "tpu".
      batch_size: global batch size (a multiple of the number of replicas). Each worker's
        input pipeline reads and encodes only its shard of the data and batches per
        replica (`sharded_input`).
      learning_rate: peak learning rate after linear warmup; cosine decay to 0 at the end.
      total_steps / tokens: run length in steps, or as a budget of loss-bearing tokens
        (converted to steps with the mean loss tokens per batch, measured on the data;
        training also stops as soon as the budget is reached). Exactly one is required.
      steps_per_epoch: Keras epoch length = checkpoint interval.
      eval_steps: held-out batches evaluated after every epoch (0: none).
      mixed_precision: build and train under the "mixed_bfloat16" policy; the caller's
        global policy is restored when `train` returns or raises.
      jit_compile: compile the train step with XLA (GPU/TPU; on CPU XLA fails under
        MirroredStrategy).
      steps_per_execution: train steps per call of the compiled function; the host and the
        callbacks see the device once per call (accelerators: tens to hundreds). Logging,
        sampling and token-budget intervals are counted in steps, checked once per call.
      verbose: Keras `fit` verbosity; "auto" shows a progress bar on a terminal and one line
        per epoch otherwise (log files get no carriage-return walls).
      sample_every: write a grid of `sample_num` samples (fixed seed) to TensorBoard every
        this many steps, on the chief; 0 = never. sample_max_chunks caps their length.
      bpd_eval_images: whole-sequence bpd of this many held-out images after every epoch,
        to TensorBoard `eval/bpd*` (0 = off).
      adam_beta_1 / adam_beta_2: Adam's moment decay rates (Keras defaults; the paper does
        not give them). A short run at a high learning rate may prefer a faster second moment.
      deterministic: seed Keras' initialisers and turn on TensorFlow's op determinism, so
        the same seed gives the same losses on the same machine (slower). Op determinism is
        turned off again when `train` returns or raises, unless the caller had it on.

    Raises:
      TrainingDiverged: a step's loss or gradient norm was not finite.
      RunLockedError: another process is training into `model_dir` (`train/run_lock.py`).
    """
    check_run_length(total_steps, tokens, steps_per_epoch, steps_per_execution)
    log.info("Building run settings...")
    run, sequences = build_run_settings()
    check_writable(model_dir)
    with contextlib.ExitStack() as held:
        if deterministic:
            # Same seed, same losses on one machine (docs/design.md §4): seeded initialisers
            # and deterministic kernels, at some speed; the caller's setting is back after.
            keras.utils.set_random_seed(seed)
            held.enter_context(op_determinism())
        # The bfloat16 policy holds while the model is built and trained, and the caller's
        # policy is back afterwards (a notebook that trains and then builds another model).
        held.enter_context(dtype_policy("mixed_bfloat16" if mixed_precision else None))
        log.info("Building strategy %r...", strategy)
        dist = make_strategy(strategy, tpu=tpu)
        check_global_batch(batch_size, dist)
        model_dir = prepare_model_dir(model_dir, dist)
        if is_chief(dist):  # one trainer per run directory, before any data is read
            held.enter_context(RunLock(model_dir))

        log.info("Building dataset...")
        contexts = local_input_contexts(dist)
        overlong = overlong_log(dist, contexts)  # training images skipped as over-long
        for context in contexts:
            check_not_empty(sequences, run.codec, pipeline_shard(context), overlong)
        if tokens is not None:
            total_steps = steps_for_tokens(tokens, budget_chunks(sequences, run, batch_size, seed))

        log.info("Building model...")
        with dist.scope():
            model = build_trainer(run, total_steps, learning_rate, warmup_steps, adam_beta_1,
                                  adam_beta_2, jit_compile, steps_per_execution)
            checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(model_dir, CHECKPOINT_DIR), max_to_keep=keep_checkpoints
        )
        log.info("Model: %s parameters", f"{model.count_params():,}")
        check_free_disk(model_dir, model)
        damaged = []  # never to be named "the last good checkpoint"
        initial_epoch = restore_latest(checkpoint, manager, steps_per_epoch, damaged)
        # Each worker reads and encodes only its shard of the source (`sharded_input`). A resumed
        # run draws new chunks and batches instead of replaying the first ones.
        train_chunks = dist.distribute_datasets_from_function(
            sharded_input(sequences, run, run.data.train_split, batch_size, seed + initial_epoch,
                          overlong))
        eval_chunks = None
        if eval_steps:
            eval_chunks = dist.distribute_datasets_from_function(
                sharded_input(sequences, run, run.data.eval_split, batch_size, seed + 1))

        callbacks = core_callbacks(manager, os.path.join(model_dir, "tensorboard"), log_every,
                                   record_run(model_dir, run), tokens, overlong, damaged)
        if is_chief(dist):
            callbacks += monitoring_callbacks(run, sequences, os.path.join(model_dir, "tensorboard"),
                                              sample_every, sample_num, sample_max_chunks, seed,
                                              bpd_eval_images)
        epochs = math.ceil(total_steps / steps_per_epoch)
        log.info("Training %d steps (%d epochs of %d) from epoch %d...", total_steps, epochs,
                 steps_per_epoch, initial_epoch)
        history = model.fit(
            train_chunks, epochs=epochs, steps_per_epoch=steps_per_epoch,
            initial_epoch=initial_epoch, callbacks=callbacks, verbose=fit_verbosity(verbose),
            shuffle=False,  # the chunk pipeline shuffles; Keras cannot shuffle a tf.data.Dataset
            validation_data=eval_chunks, validation_steps=eval_steps or None,
        )
        log.info("Done at step %d, %.4g tokens seen", int(model.optimizer.iterations.numpy()),
                 float(model.tokens_seen.numpy()))
        log_overlong(overlong, sequences)
        return history


@contextlib.contextmanager
def op_determinism():
    """TensorFlow's op determinism on inside the block, as the caller had it after."""
    # The public API can turn it on only; reading and turning it off are in the module that
    # `tf.config.experimental.enable_op_determinism` itself comes from.
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_on:
            tf_config.disable_op_determinism()


@contextlib.contextmanager
def dtype_policy(name: str | None):
    """Keras' global dtype policy set to `name` (None: unchanged) for the block, and the
    previous one restored after it, also when the block raises."""
    previous = keras.config.dtype_policy()
    if name is not None:
        keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def log_overlong(overlong: OverlongLog, sequences: SequenceSource) -> None:
    """The run's last line on over-long images: how many training images were skipped."""
    if sequences.on_overflow != "skip":
        return  # one would have stopped the run
    count = overlong.count
    log.log(logging.WARNING if count else logging.INFO,
            "Skipped %d training image%s longer than max_length=%d%s", count,
            "" if count == 1 else "s", sequences.max_length, " (named above)" if count else "")


def check_run_length(total_steps: int | None, tokens: float | None, steps_per_epoch: int,
                     steps_per_execution: int) -> None:
    """Exactly one run length, and epochs (checkpoint intervals) of whole executions."""
    if (total_steps is None) == (tokens is None):
        raise ValueError("train: give exactly one of total_steps and tokens "
                         f"(got total_steps={total_steps}, tokens={tokens})")
    if steps_per_epoch % steps_per_execution:
        raise ValueError(f"train: steps_per_epoch {steps_per_epoch} is not a multiple of "
                         f"steps_per_execution {steps_per_execution}")


def prepare_model_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """Creates `model_dir`, failing early when it cannot be written; returns the folder
    this worker writes to."""
    if not is_chief(strategy):
        # Every worker must take part in saving (collectives), but only the chief's files
        # count; the others write to a scratch folder of their own.
        model_dir = os.path.join(model_dir, f"worker_{strategy.cluster_resolver.task_id}_scratch")
    os.makedirs(model_dir, exist_ok=True)
    return model_dir


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


def budget_chunks(sequences: SequenceSource, run: RunSettings, batch_size: int,
                  seed: int) -> tf.data.Dataset:
    """Global batches of chunks of the whole training split, to measure the token budget on.

    Every worker must run the same number of steps (one that stops early leaves the others
    waiting in a collective), so every worker measures the same data, the unsharded source
    with the run's seed, and not its own shard. Uncached: reading a cache partly would
    discard it.
    """
    # Its own quiet log: the training pipelines name and count their own skips.
    whole = dataclasses.replace(sequences, cache=False).dataset(
        run.codec, run.data.train_split, overlong=OverlongLog(warn=False))
    return build_chunks(whole, run, batch_size, seed)


def steps_for_tokens(tokens: float, chunks: tf.data.Dataset) -> int:
    """A token budget in steps, at the mean loss tokens per batch of the data."""
    per_step = mean_loss_tokens(chunks)
    total_steps = max(1, math.ceil(tokens / per_step))
    log.info("Token budget %.4g at %.1f loss tokens/step: %d steps", tokens, per_step,
             total_steps)
    return total_steps


def build_trainer(run: RunSettings, total_steps: int, learning_rate: float, warmup_steps: int,
                  adam_beta_1: float, adam_beta_2: float, jit_compile: bool,
                  steps_per_execution: int = 1):
    """The compiled `DCTransformerTrainer` with its optimizer built (call in the strategy
    scope)."""
    model = build_run_model(run, model_class=DCTransformerTrainer)
    # Runs shorter than the warmup (smoke tests) warm up over all but their last step.
    warmup = min(warmup_steps, total_steps - 1)
    schedule = WarmupCosine(learning_rate, max(total_steps, 1 + warmup), warmup_steps=warmup)
    optimizer = MonitoredAdam(schedule, beta_1=adam_beta_1, beta_2=adam_beta_2)
    model.compile(optimizer=optimizer, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    model.optimizer.build(model.trainable_variables)
    return model


def restore_latest(checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager,
                   steps_per_epoch: int, skipped: list | None = None) -> int:
    """Restores the newest checkpoint that restores cleanly, if any (each one skipped is
    named in a warning and appended to `skipped`); returns the epoch to start from."""
    for path in reversed(manager.checkpoints):  # newest first
        log.info("Restoring checkpoint %s...", path)
        try:
            restore_checkpoint(checkpoint, path)
        # A damaged file fails in several ways (DataLossError, IndexError from the reader,
        # a shape or dtype mismatch, ...): each makes this checkpoint unusable, not the run.
        # Anything else (a file system that is down, out of memory) stops the run.
        except (*DAMAGED_CHECKPOINT, tf.errors.OpError) as error:
            if not is_damaged_checkpoint(error):
                raise
            message = (getattr(error, "message", None) or str(error) or type(error).__name__)
            message = f"{type(error).__name__}: {message.splitlines()[0]}"
            log.warning("Skipping checkpoint %s: it does not restore (%s)", path, message[:300])
            if skipped is not None:
                skipped.append(path)
            continue
        model = checkpoint.model
        step = int(model.optimizer.iterations.numpy())
        log.info("Resuming at step %d (epoch %d), %.4g tokens seen", step,
                 step // steps_per_epoch, float(model.tokens_seen.numpy()))
        return step // steps_per_epoch
    if manager.checkpoints:
        raise ValueError(f"{manager.directory}: no checkpoint restores (tried "
                         f"{', '.join(manager.checkpoints)}); move them aside to start over")
    log.info("No checkpoint in %s: starting from step 0", manager.directory)
    return 0


def is_damaged_checkpoint(error: Exception) -> bool:
    """Whether restoring failed because the checkpoint's files are damaged. TensorFlow's
    checkpoint reader reports a bundle checksum mismatch as a plain OpError (code UNKNOWN),
    so that one is recognised by its message."""
    if isinstance(error, DAMAGED_CHECKPOINT):
        return True
    return "Checksum does not match" in (getattr(error, "message", None) or str(error))


def check_writable(model_dir: str) -> None:
    """Fails at once, naming the folder, when `model_dir` cannot be created or written."""
    probe = os.path.join(model_dir, ".write_check")
    try:
        tf.io.gfile.makedirs(model_dir)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        message = getattr(error, "message", str(error)).splitlines()[0]
        raise OSError(f"model_dir {model_dir!r} is not writable ({message})") from None


def check_free_disk(model_dir: str, model) -> None:
    """Fails when a local `model_dir` has no room for two checkpoints (weights and Adam's two
    moments in float32, about 12 bytes per parameter each)."""
    if "://" in model_dir:
        return  # remote file systems report no free space
    need = 2 * 12 * model.count_params()
    free = shutil.disk_usage(model_dir).free
    if free < need:
        raise OSError(f"model_dir {model_dir!r}: {free / 1e9:.2f} GB free, two checkpoints "
                      f"of this model need about {need / 1e9:.2f} GB")


def check_not_empty(sequences: SequenceSource, codec: SparseCodec,
                    shard: Shard | None = None, overlong: OverlongLog | None = None) -> None:
    """Fails, naming the source, when `shard` of the training split (None: all of it) yields
    no sequence; a shard left empty by too many workers fails in the source, naming the
    shard. Reads up to the first sequence, outside any cache (reading a cached dataset partly
    would discard the cache): one image, or more when the first ones are skipped as over-long
    (`overlong` records them)."""
    data = sequences.data
    images = sequences.images(data.train_split, shard=shard)
    if not any(True for _ in sequences.encode(images, codec, overlong).take(1)):
        where = "" if shard is None else f" ({shard})"
        skipped = overlong is not None and overlong.count
        over = f" within max_length={sequences.max_length}" if skipped else ""
        raise ValueError(f"data source {data.source!r} split {data.train_split!r}{where} "
                         f"yields no images{over}")


def record_run(model_dir: str, run: RunSettings) -> str:
    """Writes run.json and the operative gin config; returns the latter's text."""
    operative = gin.operative_config_str()
    with tf.io.gfile.GFile(os.path.join(model_dir, "operative_config.gin"), "w") as f:
        f.write(operative)
    write_run_file(model_dir, run)
    return operative


def core_callbacks(manager: tf.train.CheckpointManager, log_dir: str, log_every: int,
                   gin_text: str, tokens: float | None,
                   overlong: OverlongLog | None = None, damaged: list = ()) -> list:
    """Divergence stop, checkpoints, TensorBoard scalars and the token budget, each reading
    the device only every `log_every` steps or at epoch ends. Resuming is
    the checkpoints' job alone: Keras' BackupAndRestore restores weights without the
    optimizer, and after a kill they can disagree (docs/design.md §4). `overlong`'s count
    goes to TensorBoard as `data/overlong_skipped`: the images the input pipeline has
    skipped so far (it reads ahead of the step, and counts each image once)."""
    host_scalars = {}
    if overlong is not None:
        host_scalars["data/overlong_skipped"] = lambda: overlong.count
    callbacks = [StopOnNonFinite(manager, log_every, damaged), CheckpointEveryEpoch(manager),
                 TensorBoardScalars(log_dir, log_every, gin_text, host_scalars)]
    if tokens is not None:
        callbacks.append(StopAtTokenBudget(tokens, log_every))
    return callbacks


def monitoring_callbacks(run: RunSettings, sequences: SequenceSource, log_dir: str,
                         sample_every: int, sample_num: int, sample_max_chunks: int | None,
                         seed: int, bpd_eval_images: int) -> list:
    """The chief's optional TensorBoard sample grids and held-out bpd."""
    callbacks = []
    if sample_every:
        callbacks.append(SampleGrid(run, log_dir, sample_every, sample_num, seed,
                                    sample_max_chunks))
    if bpd_eval_images:
        held_out = sequences.dataset(run.codec, run.data.eval_split, bpd_eval_images).cache()
        callbacks.append(HeldOutBpd(run, held_out, log_dir))
    return callbacks


def fit_verbosity(verbose: int | str) -> int:
    """Keras `fit` verbosity: "auto" is a progress bar on a terminal, else one line per
    epoch."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """False only for the non-chief workers of a multi-worker run."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    if resolver.task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def mean_loss_tokens(chunks: tf.data.Dataset, num_batches: int = 20) -> float:
    """Mean loss-bearing tokens per batch over the first batches of the data."""
    counts = [float(tf.reduce_sum(batch["loss_tokens"])) for batch in chunks.take(num_batches)]
    return sum(counts) / len(counts)
