"""The callbacks a training run passes to `model.fit`: the ones every worker needs, and the
chief's optional monitoring."""

import tensorflow as tf

from dctformer_tf.data.pipeline import OverlongLog
from dctformer_tf.data.training_input import SequenceSource
from dctformer_tf.runs import RunSettings
from dctformer_tf.train.bpd_callback import HeldOutBpd
from dctformer_tf.train.callbacks import (
    CheckpointEveryEpoch,
    StopAtTokenBudget,
    StopOnNonFinite,
    TensorBoardScalars,
)
from dctformer_tf.train.sample_callback import SampleGrid


def core_callbacks(manager: tf.train.CheckpointManager, log_dir: str, log_every: int,
                   gin_text: str, tokens: float | None,
                   overlong: OverlongLog | None = None, damaged: list = ()) -> list:
    """Divergence stop, checkpoints, TensorBoard scalars and the token budget, each reading
    the device only every `log_every` steps or at epoch ends. Resuming is
    the checkpoints' job alone: Keras' BackupAndRestore restores weights without the
    optimizer, and after a kill they can disagree (docs/design.md §4). `overlong`'s count
    goes to TensorBoard as `data/overlong_skipped`: the images the input pipeline has
    skipped so far (it reads ahead of the step, and counts each image once). `damaged`: the
    checkpoints skipped on resuming (`recovery.restore_latest`), never named as good."""
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
