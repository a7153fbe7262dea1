"""The training entry point, and the only training module that knows gin exists.

`train(model_dir)` runs, in order: strategy -> codec -> data -> model + optimizer (in the
strategy scope) -> restore the latest checkpoint, if any -> `model.fit` with checkpoints,
BackupAndRestore and TensorBoard. Started again with the same command after being killed,
it resumes from its last checkpoint (same step, optimizer state, schedule position, tokens).

model_dir layout:
  operative_config.gin   the gin config the run used
  run.json               codec and model settings (all that sampling/export need, no gin)
  checkpoints/ckpt-STEP  tf.train checkpoints (model, optimizer), every `steps_per_epoch`
  backup/                keras BackupAndRestore state
  tensorboard/{train,eval}
"""

import dataclasses
import json
import logging
import math
import os

import gin
import keras
import tensorflow as tf

from dctformer_tf.data.chunking import chunk_dataset
from dctformer_tf.data.pipeline import encode_dataset
from dctformer_tf.data.sources import get_source
from dctformer_tf.dct import SparseCodec
from dctformer_tf.model.configs import ModelConfig
from dctformer_tf.train.bpd_callback import HeldOutBpd
from dctformer_tf.train.callbacks import CheckpointEveryEpoch, StopAtTokenBudget, TensorBoardScalars
from dctformer_tf.train.sample_callback import SampleGrid
from dctformer_tf.train.schedules import WarmupCosine
from dctformer_tf.train.strategy import check_global_batch, make_strategy
from dctformer_tf.train.trainer import DCTransformerTrainer

log = logging.getLogger("dctformer_tf.train")

RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"


@gin.configurable("build_model")
def model_config(**kwargs) -> ModelConfig:
    """The model-size gin files (gin/models/*.gin) bind the fields of `ModelConfig` here."""
    return ModelConfig(**kwargs)


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str, partial: bool = False):
    """Restore `path` into `checkpoint`, insisting that every object it tracks gets a value.

    partial: the checkpoint may hold more than `checkpoint` tracks (a plain model restored
      from a training checkpoint, which also holds the optimizer and the metrics).

    Raises:
      ValueError naming the file when some weight of the model has no value in it (such as
      checkpoints written before PARStack tracked its blocks as attributes, which kept the
      Transformer blocks only in the optimizer's slots).
    """
    status = checkpoint.restore(path)
    if partial:
        status = status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        raise ValueError(
            f"{path}: this checkpoint lacks weights the model has ({str(error)[:300]}...). "
            "It comes from a different model configuration, or from a version of "
            "dctformer_tf whose checkpoints did not record the Transformer blocks; retrain."
        ) from error
    return status


@gin.configurable
def build_codec(
    resolution: int = gin.REQUIRED,
    block_size: int = gin.REQUIRED,
    quality: int = gin.REQUIRED,
    clip: int = gin.REQUIRED,
    order: str = "bands",
    value_encoding: str = "quantized",
) -> SparseCodec:
    return SparseCodec(block_size=block_size, quality=quality, clip=clip, order=order,
                       value_encoding=value_encoding, resolution=resolution)


@gin.configurable
def build_sequences(
    codec: SparseCodec,
    split: str,
    source: str = "shapes",
    data_dir: str | None = None,
    num_examples: int | None = None,
    num_eval_examples: int | None = 1000,
    max_length: int = gin.REQUIRED,
    on_overflow: str = "error",
    cache: bool = False,
) -> tf.data.Dataset:
    """Source images -> encoded sparse sequences (see `data.pipeline.encode_dataset`).

    Args:
      source: "shapes", "folder:/path" or a TFDS name (`data.sources.get_source`).
      num_examples: take only the first N images of the training split (None: all).
      num_eval_examples: likewise for any other split (held-out evaluation).
      cache: cache the encoded sequences in memory (small datasets: encode once).
    """
    kwargs = {"data_dir": data_dir} if data_dir else {}
    if split != "train":
        num_examples = num_eval_examples
    if source == "shapes" and num_examples is not None:
        kwargs["num_examples"] = num_examples
    images, _ = get_source(source, split, **kwargs)
    if num_examples is not None:
        images = images.take(num_examples)
    sequences = encode_dataset(images, codec, max_length, on_overflow=on_overflow)
    return sequences.cache() if cache else sequences


@gin.configurable
def build_chunks(
    sequences: tf.data.Dataset,
    codec: SparseCodec,
    batch_size: int,
    seed: int,
    chunk_size: int = gin.REQUIRED,
    overlap: int = gin.REQUIRED,
    p_min: float = 0.1,
    l_max: int | None = None,
    shuffle_buffer: int = 1024,
    loss_from_channel: int = 0,
) -> tf.data.Dataset:
    """Sequences (repeated forever) -> batches of training chunks (`data.chunking`).

    loss_from_channel > 0 restricts the loss to the non-prefix part of each sequence
    (super-resolution / colorization fine-tuning, `gin/runs/*_shapes.gin`)."""
    chunks = chunk_dataset(sequences.repeat(), codec, chunk_size, overlap, batch_size, seed,
                           p_min=p_min, l_max=l_max, shuffle_buffer=shuffle_buffer,
                           loss_from_channel=loss_from_channel)
    # Generated and in-memory sources have no files to shard by: shard the batches instead.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return chunks.with_options(options)


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
    tpu: str | None = None,
    verbose: int = 1,
    sample_every: int = 0,
    sample_num: int = 4,
    sample_max_chunks: int | None = None,
    bpd_eval_images: int = 0,
    adam_beta_1: float = 0.9,
    adam_beta_2: float = 0.999,
) -> keras.callbacks.History:
    """Train a DCTransformer on chunks of sparse DCT sequences.

    Args:
      model_dir: where checkpoints, TensorBoard logs and the run settings go.
      strategy: "default" | "one_device" | "mirrored" | "multi_worker" | "tpu".
      batch_size: global batch size (a multiple of the number of replicas).
      learning_rate: peak learning rate after linear warmup; cosine decay to 0 at the end.
      total_steps / tokens: run length in steps, or as a budget of loss-bearing tokens
        (converted to steps with the mean loss tokens per batch, measured on the data;
        training also stops as soon as the budget is reached). Exactly one is required.
      steps_per_epoch: Keras epoch length = checkpoint interval.
      eval_steps: held-out ("test" split) batches evaluated after every epoch (0: none).
      mixed_precision: run under the "mixed_bfloat16" policy.
      jit_compile: compile the train step with XLA (GPU/TPU; on CPU XLA fails under
        MirroredStrategy).
      sample_every: write a grid of `sample_num` samples (fixed seed) to TensorBoard every
        this many steps, on the chief; 0 = never. sample_max_chunks caps their length.
      bpd_eval_images: whole-sequence bpd of this many held-out ("test") images after every
        epoch, to TensorBoard `eval/bpd*` (0 = off).
      adam_beta_1 / adam_beta_2: Adam's moment decay rates (Keras defaults; the paper does
        not give them). A short run at a high learning rate may prefer a faster second moment.
    """
    if (total_steps is None) == (tokens is None):
        raise ValueError("train: give exactly one of total_steps and tokens "
                         f"(got total_steps={total_steps}, tokens={tokens})")
    os.makedirs(model_dir, exist_ok=True)
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    log.info("Building strategy %r...", strategy)
    dist = make_strategy(strategy, tpu=tpu)
    check_global_batch(batch_size, dist)
    if not is_chief(dist):
        # Every worker must take part in saving (collectives), but only the chief's files
        # count; the others write to a scratch folder of their own.
        model_dir = os.path.join(model_dir, f"worker_{dist.cluster_resolver.task_id}_scratch")
        os.makedirs(model_dir, exist_ok=True)

    log.info("Building dataset...")
    codec = build_codec()
    config = model_config()
    check_codec_matches_model(codec, config)
    train_sequences = build_sequences(codec, "train")
    train_chunks = build_chunks(train_sequences, codec, batch_size, seed)
    eval_chunks = None
    if eval_steps:
        eval_chunks = build_chunks(build_sequences(codec, "test"), codec, batch_size, seed + 1)
    if tokens is not None:
        per_step = mean_loss_tokens(train_chunks)
        total_steps = max(1, math.ceil(tokens / per_step))
        log.info("Token budget %.4g at %.1f loss tokens/step: %d steps", tokens, per_step,
                 total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)

    log.info("Building model...")
    with dist.scope():
        model = DCTransformerTrainer(**config.model_kwargs())
        model.build(config.input_shapes())
        # Runs shorter than the warmup (smoke tests) warm up over all but their last step.
        warmup = min(warmup_steps, total_steps - 1)
        schedule = WarmupCosine(learning_rate, max(total_steps, 1 + warmup), warmup_steps=warmup)
        optimizer = keras.optimizers.Adam(schedule, beta_1=adam_beta_1, beta_2=adam_beta_2)
        model.compile(optimizer=optimizer, jit_compile=jit_compile)
        model.optimizer.build(model.trainable_variables)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(model_dir, CHECKPOINT_DIR), max_to_keep=keep_checkpoints
    )
    log.info("Model: %s parameters", f"{model.count_params():,}")

    initial_epoch = 0
    if manager.latest_checkpoint:
        log.info("Restoring checkpoint %s...", manager.latest_checkpoint)
        restore_checkpoint(checkpoint, manager.latest_checkpoint)
        initial_epoch = int(model.optimizer.iterations.numpy()) // steps_per_epoch
        log.info("Resuming at step %d (epoch %d), %.4g tokens seen",
                 int(model.optimizer.iterations.numpy()), initial_epoch,
                 float(model.tokens_seen.numpy()))
        # A resumed run draws new chunks and batches instead of replaying the first ones.
        train_chunks = build_chunks(train_sequences, codec, batch_size, seed + initial_epoch)
    else:
        log.info("No checkpoint in %s: starting from step 0", manager.directory)

    operative = gin.operative_config_str()
    with open(os.path.join(model_dir, "operative_config.gin"), "w") as f:
        f.write(operative)
    write_run_file(model_dir, codec, config, gin.query_parameter("build_sequences.max_length"))

    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup"), save_freq="epoch"),
        CheckpointEveryEpoch(manager),
        TensorBoardScalars(os.path.join(model_dir, "tensorboard"), log_every, operative),
    ]
    if tokens is not None:
        callbacks.append(StopAtTokenBudget(tokens))
    if sample_every and is_chief(dist):
        callbacks.append(SampleGrid(
            codec, config.chunk_size, config.chunk_overlap,
            gin.query_parameter("build_sequences.max_length"),
            os.path.join(model_dir, "tensorboard"), sample_every, sample_num, seed,
            sample_max_chunks, config.num_classes))
    if bpd_eval_images and is_chief(dist):
        held_out = build_sequences(codec, "test", num_eval_examples=bpd_eval_images).cache()
        callbacks.append(HeldOutBpd(codec, config.chunk_size, config.chunk_overlap, held_out,
                                    os.path.join(model_dir, "tensorboard")))
    log.info("Training %d steps (%d epochs of %d) from epoch %d...", total_steps, epochs,
             steps_per_epoch, initial_epoch)
    history = model.fit(
        train_chunks, epochs=epochs, steps_per_epoch=steps_per_epoch,
        initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose,
        validation_data=eval_chunks, validation_steps=eval_steps or None,
    )
    log.info("Done at step %d, %.4g tokens seen", int(model.optimizer.iterations.numpy()),
             float(model.tokens_seen.numpy()))
    return history


def check_codec_matches_model(codec: SparseCodec, config: ModelConfig) -> None:
    """The data and the model must agree on every setting both of them hold."""
    pairs = {
        "resolution": (codec.resolution, config.resolution),
        "block_size": (codec.block_size, config.block_size),
        "clip": (codec.clip, config.clip),
        "value encoding / value_scale": (codec.value_encoding, config.value_scale),
    }
    wrong = {name: values for name, values in pairs.items() if values[0] != values[1]}
    if wrong:
        detail = ", ".join(f"{name}: codec {a!r} vs model {b!r}" for name, (a, b) in wrong.items())
        raise ValueError(f"codec and model settings disagree: {detail}")


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


def write_run_file(model_dir: str, codec: SparseCodec, config: ModelConfig,
                   max_length: int) -> None:
    """run.json: codec, model and sequence settings, so that sampling and export need no gin."""
    settings = {"codec": codec.config(), "model": dataclasses.asdict(config),
                "max_length": max_length}
    with open(os.path.join(model_dir, RUN_FILE), "w") as f:
        json.dump(settings, f, indent=2)


def read_run_file(model_dir: str) -> tuple:
    """(SparseCodec, ModelConfig, max_length) of a training run's model_dir."""
    path = os.path.join(model_dir, RUN_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {model_dir} a dctformer training run?")
    with open(path) as f:
        settings = json.load(f)
    return (SparseCodec(**settings["codec"]), ModelConfig(**settings["model"]),
            settings["max_length"])
