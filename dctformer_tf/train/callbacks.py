"""Keras callbacks of the trainer: periodic checkpoints, TensorBoard scalars and the gin text."""

import logging
import math
import time

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


class StepCallback(keras.callbacks.Callback):
    """A callback that knows the optimizer step on the host, without reading the device.

    Keras calls `on_train_batch_end` once per execution of `steps_per_execution` steps,
    with the index of the execution's last step in the epoch, so the global step is
    `epoch · steps_per_epoch + end_step + 1` (runs resume at epoch boundaries). Subclasses
    read device values only when `crossed(every)` says an interval boundary was passed:
    nothing waits on the device on the other steps (docs/design.md §4).
    """

    def __init__(self):
        super().__init__()
        self.step = 0
        self._previous = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        # A resumed run starts at a later epoch: intervals count from its first step.
        self.step = max(self.step, epoch * self.params["steps"])

    def on_train_batch_end(self, batch, logs=None):
        self._previous = self.step
        self.step = self._epoch * self.params["steps"] + batch + 1
        self.on_steps_end(logs or {})

    def on_steps_end(self, logs: dict) -> None:
        """Called after every execution, with `self.step` the last step done."""

    def crossed(self, every: int) -> bool:
        """Whether a multiple of `every` lies in the steps of the last execution."""
        return every > 0 and self.step // every > self._previous // every


class StopOnNonFinite(StepCallback):
    """Stops training once a step's gradients (so also its loss) were not finite (recorded
    on the device by the trainer's optimizer, `MonitoredAdam`), checked every `every_steps`
    steps and at every epoch end, before that epoch's checkpoint: a diverged run never saves
    its weights.

    Args:
      manager: the run's `CheckpointManager`.
      every_steps: int. Check interval.
      damaged: checkpoints the run skipped on start because they did not restore: not "the
        last good checkpoint" unless this run wrote them again.

    Raises:
      TrainingDiverged naming the first such step and the last good checkpoint.
    """

    def __init__(self, manager: tf.train.CheckpointManager, every_steps: int = 1,
                 damaged=()):
        super().__init__()
        self.manager = manager
        self.every_steps = every_steps
        self.damaged = set(damaged)
        self.started = time.time()

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.started = time.time()

    def on_steps_end(self, logs):
        if self.crossed(self.every_steps):
            self.check()

    def on_epoch_end(self, epoch, logs=None):
        self.check()

    def last_good(self) -> str | None:
        """The newest checkpoint that is not a damaged one left from before this run."""
        for path in reversed(self.manager.checkpoints):
            if path not in self.damaged or _written_since(path, self.started):
                return path
        return None

    def check(self) -> None:
        step = self.model.nonfinite.first_step()
        if step is not None:
            raise TrainingDiverged(
                f"step {step}: the loss or the gradient norm is not finite; training stopped. "
                f"The last good checkpoint is "
                f"{self.last_good() or 'none (no checkpoint was written yet)'}; "
                "lower the learning rate or lengthen the warmup and resume from it.")


def _written_since(prefix: str, since: float) -> bool:
    try:
        return tf.io.gfile.stat(prefix + ".index").mtime_nsec / 1e9 >= since  # gs:// too
    except tf.errors.OpError:
        return False


class TensorBoardScalars(StepCallback):
    """Writes losses, bits/token, learning rate and tokens seen every `every_steps` steps,
    validation metrics every epoch, and the operative gin config as text once.

    Args:
      log_dir: str. TensorBoard directory (events go to `log_dir/train` and `log_dir/eval`).
      every_steps: int. Batch-level logging interval.
      gin_text: str or None. The operative gin config, written as markdown text at step 0.
      host_scalars: dict tag -> function returning a float, for values the host holds (such
        as `data/overlong_skipped`, images the input pipeline has skipped so far); written
        to `log_dir/train` at the same interval and at every epoch end.
    """

    def __init__(self, log_dir: str, every_steps: int = 10, gin_text: str | None = None,
                 host_scalars: dict | None = None):
        super().__init__()
        self.log_dir = log_dir
        self.every_steps = every_steps
        self.gin_text = gin_text
        self.host_scalars = dict(host_scalars or {})
        self._train_writer = None
        self._eval_writer = None

    def on_train_begin(self, logs=None):
        self._train_writer = tf.summary.create_file_writer(f"{self.log_dir}/train")
        self._eval_writer = tf.summary.create_file_writer(f"{self.log_dir}/eval")
        if self.gin_text:
            with self._train_writer.as_default():
                # Indent by four spaces: TensorBoard renders text summaries as markdown.
                block = "\n".join("    " + line for line in self.gin_text.splitlines())
                tf.summary.text("gin/operative_config", block, step=0)
            self._train_writer.flush()

    def on_steps_end(self, logs):
        if not self.crossed(self.every_steps) or not logs:
            return
        with self._train_writer.as_default(step=self.step):
            for name in TRAIN_SCALARS + ("tokens_seen",):
                if name in logs and math.isfinite(float(logs[name])):
                    tf.summary.scalar(f"train/{name}", float(logs[name]))
            tf.summary.scalar("train/learning_rate", float(self.model.optimizer.learning_rate))
        self._write_host_scalars()

    def _write_host_scalars(self) -> None:
        with self._train_writer.as_default(step=self.step):
            for tag, value in self.host_scalars.items():
                tf.summary.scalar(tag, float(value()))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._write_host_scalars()
        with self._eval_writer.as_default(step=self.step):
            for name in TRAIN_SCALARS:
                if f"val_{name}" in logs:
                    tf.summary.scalar(f"eval/{name}", float(logs[f"val_{name}"]))
        self._train_writer.flush()
        self._eval_writer.flush()

    def on_train_end(self, logs=None):
        for writer in (self._train_writer, self._eval_writer):
            if writer is not None:
                writer.close()


class StopAtTokenBudget(StepCallback):
    """Stops training once the model's `tokens_seen` reaches the token budget, checked every
    `every_steps` steps."""

    def __init__(self, tokens: float, every_steps: int = 1):
        super().__init__()
        self.tokens = tokens
        self.every_steps = every_steps

    def on_steps_end(self, logs):
        if self.crossed(self.every_steps) and int(self.model.tokens_seen.numpy()) >= self.tokens:
            log.info("Token budget of %.4g loss tokens reached", self.tokens)
            self.model.stop_training = True
