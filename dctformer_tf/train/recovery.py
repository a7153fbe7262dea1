"""Resuming a run: the newest checkpoint that restores cleanly, skipping damaged ones.

A run killed while writing a checkpoint leaves a truncated or corrupted one; the run goes on
from the one before it, and the skipped paths are kept so that no message later names a
damaged checkpoint as the last good one (`callbacks.StopOnNonFinite`).
"""

import logging

import tensorflow as tf

from dctformer_tf.runs import restore_checkpoint

log = logging.getLogger("dctformer_tf.train")

# What restoring a truncated, corrupted or mismatched checkpoint raises.
DAMAGED_CHECKPOINT = (tf.errors.DataLossError, tf.errors.OutOfRangeError,
                      tf.errors.InvalidArgumentError, tf.errors.NotFoundError, ValueError,
                      IndexError)


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
