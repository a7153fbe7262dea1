"""Checks a run makes before it reads data or builds a model, each failing at once with a
message that names the setting, folder or source at fault."""

import os
import shutil

import tensorflow as tf

from dctformer_tf.data.pipeline import OverlongLog
from dctformer_tf.data.sources import Shard
from dctformer_tf.data.training_input import SequenceSource
from dctformer_tf.dct import SparseCodec
from dctformer_tf.train.strategy import is_chief


def check_run_length(total_steps: int | None, tokens: float | None, steps_per_epoch: int,
                     steps_per_execution: int) -> None:
    """Exactly one run length, and epochs (checkpoint intervals) of whole executions."""
    if (total_steps is None) == (tokens is None):
        raise ValueError("train: give exactly one of total_steps and tokens "
                         f"(got total_steps={total_steps}, tokens={tokens})")
    if steps_per_epoch % steps_per_execution:
        raise ValueError(f"train: steps_per_epoch {steps_per_epoch} is not a multiple of "
                         f"steps_per_execution {steps_per_execution}")


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


def prepare_model_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
    """Creates the folder this worker writes to, local or remote (gs://), failing early when
    it cannot be written; returns it."""
    if not is_chief(strategy):
        # Every worker must take part in saving (collectives), but only the chief's files
        # count; the others write to a scratch folder of their own.
        model_dir = os.path.join(model_dir, f"worker_{strategy.cluster_resolver.task_id}_scratch")
    check_writable(model_dir)
    return model_dir


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
