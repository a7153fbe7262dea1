"""Keras callbacks of the trainer: periodic checkpoints, TensorBoard scalars and the gin text."""

import logging
import math

import keras
import tensorflow as tf

log = logging.getLogger("dctformer_tf.train")

# The scalars written to TensorBoard under "train/" (batch level) and "eval/" (epoch level).
TRAIN_SCALARS = ("loss", "channel_loss", "position_loss", "value_loss", "bits_per_token")


class TrainingDiverged(FloatingPointError):
    """A step's loss or gradient norm was not finite; the message names the step and the last
    good checkpoint."""


class CheckpointEveryEpoch(keras.callbacks.Callback):
    """Saves a `tf.train.CheckpointManager` checkpoint, numbered by step, after every epoch.

    An epoch is `steps_per_epoch` steps, so this is the run's "checkpoint every N steps". The
    manager writes the checkpoint's files first and publishes it in its `checkpoint` state
    file last, so a save cut short leaves the previous checkpoint the latest. A checkpoint
    with a non-finite weight is never written: the save raises `TrainingDiverged` instead.
    """

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        check_finite_weights(self.model, step, self.manager.latest_checkpoint)
        path = self.manager.save(checkpoint_number=step)
        log.info("Saved checkpoint %s (step %d)", path, step)


def check_finite_weights(model, step: int, last_good: str | None) -> None:
    """Raises `TrainingDiverged` if any float weight of `model` holds a NaN or infinity."""
    finite = [tf.reduce_all(tf.math.is_finite(w.value)) for w in model.weights
              if tf.as_dtype(w.dtype).is_floating]
    if not bool(tf.reduce_all(finite)):
        raise TrainingDiverged(
            f"step {step}: the weights are not finite; not saving a checkpoint "
            f"(the last good one is {last_good or 'none: no checkpoint was written'})")


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first step whose loss or gradient norm was not finite (recorded
    on the device by the trainer's `NonFiniteMonitor`), before any checkpoint of its weights.

    Raises:
      TrainingDiverged naming the step and the last good checkpoint.
    """

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def on_train_batch_end(self, batch, logs=None):
        step = self.model.nonfinite.first_step()
        if step is not None:
            raise TrainingDiverged(
                f"step {step}: the loss or the gradient norm is not finite; training stopped. "
                f"The last good checkpoint is "
                f"{self.manager.latest_checkpoint or 'none (no checkpoint was written yet)'}; "
                "lower the learning rate or lengthen the warmup and resume from it.")


class TensorBoardScalars(keras.callbacks.Callback):
    """Writes losses, bits/token, learning rate and tokens seen every `every_steps` steps,
    validation metrics every epoch, and the operative gin config as text once.

    Args:
      log_dir: str. TensorBoard directory (events go to `log_dir/train` and `log_dir/eval`).
      every_steps: int. Batch-level logging interval.
      gin_text: str or None. The operative gin config, written as markdown text at step 0.
    """

    def __init__(self, log_dir: str, every_steps: int = 10, gin_text: str | None = None):
        super().__init__()
        self.log_dir = log_dir
        self.every_steps = every_steps
        self.gin_text = gin_text
        self._train_writer = None
        self._eval_writer = None

    def on_train_begin(self, logs=None):
        self._train_writer = tf.summary.create_file_writer(f"{self.log_dir}/train")
        self._eval_writer = tf.summary.create_file_writer(f"{self.log_dir}/eval")
        if self.gin_text:
            with self._train_writer.as_default():
                # Indent by four spaces: TensorBoard renders text summaries as markdown.
                block = "\n".join("    " + line for line in self.gin_text.splitlines())
                tf.summary.text("gin/operative_config", block, step=self._step())
            self._train_writer.flush()

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step % self.every_steps or not logs:
            return
        with self._train_writer.as_default(step=step):
            for name in TRAIN_SCALARS + ("tokens_seen",):
                if name in logs and math.isfinite(float(logs[name])):
                    tf.summary.scalar(f"train/{name}", float(logs[name]))
            tf.summary.scalar("train/learning_rate", float(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = self._step()
        with self._eval_writer.as_default(step=step):
            for name in TRAIN_SCALARS:
                if f"val_{name}" in logs:
                    tf.summary.scalar(f"eval/{name}", float(logs[f"val_{name}"]))
        self._train_writer.flush()
        self._eval_writer.flush()

    def on_train_end(self, logs=None):
        for writer in (self._train_writer, self._eval_writer):
            if writer is not None:
                writer.close()


class StopAtTokenBudget(keras.callbacks.Callback):
    """Stops training once the model's `tokens_seen` reaches the token budget."""

    def __init__(self, tokens: float):
        super().__init__()
        self.tokens = tokens

    def on_train_batch_end(self, batch, logs=None):
        if float(self.model.tokens_seen.numpy()) >= self.tokens:
            log.info("Token budget of %.4g loss tokens reached", self.tokens)
            self.model.stop_training = True
