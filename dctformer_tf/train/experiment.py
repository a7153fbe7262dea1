"""The training entry point, and gin's edge with TensorFlow (the TensorFlow-free selectors are
in `gin_model.py`).

`train()` narrates its phases: run settings -> strategy -> data -> model and optimizer (in
the strategy scope) -> restore the latest checkpoint, if any -> `model.fit` with
checkpoints, TensorBoard and the optional sample and bpd callbacks.
Started again with the same command after being killed, it resumes from its last checkpoint
(same step, optimizer state, schedule position, tokens). The files it writes are described
in `dctformer_tf.runs`.

Gin injects what the run is made of, as t5x does: gin/runs/train.gin binds `train.codec =
@build_codec()`, `train.chunking`, `train.architecture`, `train.sequences` and
`train.chunk_policy` the same way, and no configurable looks up another. One source of truth
(docs/design.md §9): the codec is bound once (`build_codec.*`), the chunking once
(`build_chunking.*`), and `architecture.*` binds the architecture only; the model's
vocabularies, grid and window are derived from the first two (`runs.RunSettings.model`).
"""

import contextlib
import logging
import math
import os
import sys

import gin
import keras
import tensorflow as tf

from dctformer_tf.data.layout import Chunking, ChunkPolicy
from dctformer_tf.data.pipeline import OverlongLog
from dctformer_tf.data.source_settings import DataSettings
from dctformer_tf.data.training_input import (
    SequenceSource,
    budget_chunks,
    local_input_contexts,
    mean_loss_tokens,
    overlong_log,
    pipeline_shard,
    sharded_input,
)
from dctformer_tf.dct import SparseCodec
from dctformer_tf.runs import CHECKPOINT_DIR, RunSettings, build_run_model, write_run_file
from dctformer_tf.train import gin_model
from dctformer_tf.train.callback_list import core_callbacks, monitoring_callbacks
from dctformer_tf.train.gin_model import gin_model_config  # noqa: F401  (re-exported for tools)
from dctformer_tf.train.nonfinite import MonitoredAdam
from dctformer_tf.train.preflight import (
    check_free_disk,
    check_not_empty,
    check_run_length,
    check_writable,
    prepare_model_dir,
)
from dctformer_tf.train.recovery import restore_latest
from dctformer_tf.train.run_lock import RunLock
from dctformer_tf.train.schedules import WarmupCosine
from dctformer_tf.train.scoped_settings import dtype_policy, op_determinism
from dctformer_tf.train.strategy import check_global_batch, is_chief, make_strategy
from dctformer_tf.train.trainer import DCTransformerTrainer

log = logging.getLogger("dctformer_tf.train")


def sequence_source(source: str = "shapes", data_dir: str | None = None,
                    **fields) -> SequenceSource:
    """The run's data: `source` ("shapes", "folder:/path" or a TFDS name,
    `data.sources.get_source`) and `data_dir` make its `DataSettings`; the other bindings
    are `SequenceSource`'s fields, `max_length` required."""
    return SequenceSource(DataSettings(source, data_dir), **fields)


sequence_source.__signature__ = gin_model.keyword_signature(
    {"source": "shapes", "data_dir": None,
     **gin_model.dataclass_defaults(SequenceSource, skip=("data",))})
sequence_source = gin.configurable("build_sequences")(sequence_source)


def build_run_settings() -> tuple[RunSettings, SequenceSource]:
    """The run settings and data source that the parsed gin files bind, for tools that size
    or time a run without training it (`train()` receives them from gin instead)."""
    sequences = sequence_source()
    run = RunSettings(gin_model.build_codec(), gin_model.build_chunking(),
                      gin_model.architecture(), sequences.max_length, sequences.data)
    return run, sequences


@gin.configurable
def train(
    model_dir: str = gin.REQUIRED,
    codec: SparseCodec = gin.REQUIRED,
    chunking: Chunking = gin.REQUIRED,
    architecture: dict = gin.REQUIRED,
    sequences: SequenceSource = gin.REQUIRED,
    chunk_policy: ChunkPolicy = gin.REQUIRED,
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
      codec: how images become sequences (`@build_codec()`).
      chunking: how sequences are cut into windows (`@build_chunking()`).
      architecture: the model's architecture fields (`@architecture()`).
      sequences: the data source, encoded (`@build_sequences()`).
      chunk_policy: the chunk law and length filter of training (`@build_chunks()`).
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
    run = RunSettings(codec, chunking, architecture, sequences.max_length, sequences.data)
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
            total_steps = steps_for_tokens(tokens, budget_chunks(
                sequences, codec, chunking, chunk_policy, batch_size, seed))

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
            sharded_input(sequences, codec, chunking, chunk_policy, run.data.train_split,
                          batch_size, seed + initial_epoch, overlong))
        eval_chunks = None
        if eval_steps:
            eval_chunks = dist.distribute_datasets_from_function(
                sharded_input(sequences, codec, chunking, chunk_policy, run.data.eval_split,
                              batch_size, seed + 1))

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


def log_overlong(overlong: OverlongLog, sequences: SequenceSource) -> None:
    """The run's last line on over-long images: how many training images were skipped."""
    if sequences.on_overflow != "skip":
        return  # one would have stopped the run
    count = overlong.count
    log.log(logging.WARNING if count else logging.INFO,
            "Skipped %d training image%s longer than max_length=%d%s", count,
            "" if count == 1 else "s", sequences.max_length, " (named above)" if count else "")


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


def record_run(model_dir: str, run: RunSettings) -> str:
    """Writes run.json and the operative gin config; returns the latter's text."""
    operative = gin.operative_config_str()
    with tf.io.gfile.GFile(os.path.join(model_dir, "operative_config.gin"), "w") as f:
        f.write(operative)
    write_run_file(model_dir, run)
    return operative


def fit_verbosity(verbose: int | str) -> int:
    """Keras `fit` verbosity: "auto" is a progress bar on a terminal, else one line per
    epoch."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)
