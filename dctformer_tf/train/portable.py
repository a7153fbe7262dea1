"""Training without TensorFlow: `model.fit` on numpy batches, on any Keras backend.

For a GPU host that has JAX and no TensorFlow (docs/design.md §4.1). It reads the same gin
files as `dctformer train` (`gin_model.read_bindings`, which needs no registered
configurables), trains the same `DCTransformerTrainer` with the same loss, optimizer and
schedule on the numpy input path (`data.numpy_input`, the embedded `shapes` data), and
writes a run directory that the TensorFlow code reads once its weights are imported
(`dctformer import-weights`):

    model_dir/
      run.json                       the run's settings (`runs.RunSettings`), as `train` writes
      weights/step-STEP.weights.h5   the trainer's weights (Keras' own format, any backend)
      portable_run.json              steps, tokens, wall time, step time, the loss curve

    dctformer train-portable --model_dir DIR --gin_file gin/models/small.gin \
        --gin_file gin/data/shapes.gin --gin_file gin/runs/train.gin [--minutes 8] [--workers 8]

What it does not do, against `experiment.train`: distribution strategies, resuming,
TensorBoard, held-out evaluation and sample grids. Evaluate and sample the imported run
with the TensorFlow commands.
"""

import dataclasses
import json
import logging
import math
import os
import re
import time

import keras
import numpy as np

from dctformer_tf import runs
from dctformer_tf.data.layout import ChunkPolicy
from dctformer_tf.data.numpy_input import NumpyChunkBatches
from dctformer_tf.runs import DataSettings, RunSettings, build_run_model, write_run_file
from dctformer_tf.train.gin_model import (
    REQUIRED,
    chunk_policy_from,
    read_bindings,
    run_from_bindings,
    selector_kwargs,
)
from dctformer_tf.train.nonfinite import MonitoredAdam
from dctformer_tf.train.schedules import WarmupCosine
from dctformer_tf.train.trainer import DCTransformerTrainer

log = logging.getLogger("dctformer_tf.train")

WEIGHTS_DIR = "weights"
SUMMARY_FILE = "portable_run.json"


@dataclasses.dataclass(frozen=True)
class PortableSettings:
    """What a portable run reads from the gin files, with `experiment.train`'s defaults where
    a file binds nothing (a test keeps the two sets of defaults equal) and `ChunkPolicy`'s for
    the chunks.

    Args:
      run: RunSettings. Codec, chunking, architecture, max_length and data source.
      batch_size: int. Examples per step.
      learning_rate, warmup_steps, adam_beta_1, adam_beta_2: the optimizer and schedule.
      total_steps: int or None. Steps of the run (`train.total_steps`).
      seed: int. Seeds the input stream.
      mixed_precision: bool. `mixed_bfloat16` (float32 master weights).
      chunks: ChunkPolicy. The chunk law and length filter (`build_chunks.*`).
      num_examples: int or None. Train on the first N images (`build_sequences.num_examples`).
    """

    run: RunSettings
    batch_size: int
    learning_rate: float = 5e-4
    warmup_steps: int = 1000
    adam_beta_1: float = 0.9
    adam_beta_2: float = 0.999
    total_steps: int | None = None
    seed: int = 0
    mixed_precision: bool = False
    chunks: ChunkPolicy = ChunkPolicy()
    num_examples: int | None = None

    @classmethod
    def from_gin(cls, files, bindings=()) -> "PortableSettings":
        """Settings of the run that `files` and `bindings` describe.

        Raises:
          ValueError naming the setting: a data source other than `shapes` (the numpy path
          renders only the embedded data), or a required value left unbound.
        """
        bound = read_bindings(files, bindings)
        train = selector_kwargs(bound, "train")
        chunks = selector_kwargs(bound, "build_chunks")
        sequences = selector_kwargs(bound, "build_sequences")
        source = sequences.get("source", "shapes")
        if source != "shapes":
            raise ValueError(f"build_sequences.source = {source!r}: training without "
                             "TensorFlow reads only the embedded 'shapes' data")
        run = run_from_bindings(bound, DataSettings("shapes"))
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in train.items() if key in fields}
        values["num_examples"] = sequences.get("num_examples")
        for key, value in chunks.items():
            if value is REQUIRED:
                raise ValueError(f"build_chunks.{key} is required and not bound")
        values["chunks"] = chunk_policy_from(chunks)
        for key, value in values.items():
            if value is REQUIRED:
                raise ValueError(f"{key} is required and not bound")
        if "batch_size" not in values:
            raise ValueError("train.batch_size is not bound (gin/models/*.gin sets BATCH_SIZE)")
        return cls(run=run, **values)


class StepClock(keras.callbacks.Callback):
    """Wall time of every step after the first (which traces and compiles), and a stop once
    `minutes` of wall time have passed since training began (None: no limit)."""

    def __init__(self, minutes: float | None = None):
        super().__init__()
        self.minutes = minutes
        self.step_seconds: list[float] = []
        self.first_step_seconds = None
        self.started = None
        self._last = None

    def on_train_begin(self, logs=None):
        self.started = self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.first_step_seconds is None:
            self.first_step_seconds = now - self._last
        else:
            self.step_seconds.append(now - self._last)
        self._last = now
        if self.minutes is not None and now - self.started >= 60 * self.minutes:
            self.model.stop_training = True

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def train_portable(model_dir: str, settings: PortableSettings, total_steps: int | None = None,
                   minutes: float | None = None, steps_per_epoch: int = 100,
                   workers: int = 0, jit_compile: bool = True) -> dict:
    """Trains on numpy batches under the current Keras backend; writes the run directory.

    Args:
      model_dir: str. Created if missing; must not hold another run's weights.
      settings: PortableSettings.
      total_steps: int or None. Steps to run; default `settings.total_steps`. The schedule
        decays over these steps, even if `minutes` stops the run earlier.
      minutes: float or None. Stop after this much wall time (the schedule is not shortened).
      steps_per_epoch: int. Steps between Keras' epoch ends (logs).
      workers: int. Input worker processes (`NumpyChunkBatches`).
      jit_compile: bool. Compile the train step with XLA.
    Returns:
      the summary written to `model_dir/portable_run.json`.
    Raises:
      FloatingPointError naming the first step whose gradients were not finite (nothing is
      written then but run.json).
    """
    total_steps = total_steps or settings.total_steps
    if not total_steps or total_steps < 1:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch!r}")
    weights_dir = os.path.join(model_dir, WEIGHTS_DIR)
    if os.path.isdir(weights_dir) and os.listdir(weights_dir):
        raise ValueError(f"{weights_dir} already holds weights: use a new --model_dir")
    os.makedirs(weights_dir, exist_ok=True)
    run = settings.run
    write_run_file(model_dir, run)

    previous_policy = keras.config.dtype_policy()
    if settings.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_run_model(run, model_class=DCTransformerTrainer)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    warmup = min(settings.warmup_steps, total_steps - 1)
    schedule = WarmupCosine(settings.learning_rate, max(total_steps, 1 + warmup),
                            warmup_steps=warmup)
    model.compile(optimizer=MonitoredAdam(schedule, beta_1=settings.adam_beta_1,
                                          beta_2=settings.adam_beta_2),
                  jit_compile=jit_compile)
    batches = NumpyChunkBatches(
        run.codec, run.chunking.chunk_size, run.chunking.overlap, run.max_length,
        settings.batch_size, settings.seed, num_examples=settings.num_examples,
        policy=settings.chunks, workers=workers)
    clock = StepClock(minutes)
    log.info("Training %s parameters for %d steps on %s (%s)", f"{model.count_params():,}",
             total_steps, keras.backend.backend(), "mixed_bfloat16"
             if settings.mixed_precision else "float32")
    warn_if_count_may_wrap(total_steps * settings.batch_size * run.chunking.chunk_size)
    inputs = _as_inputs(batches)
    try:
        history = model.fit(inputs, steps_per_epoch=steps_per_epoch,
                            epochs=math.ceil(total_steps / steps_per_epoch), verbose=2,
                            callbacks=[clock, StopAfterSteps(total_steps)])
    finally:
        try:
            inputs.close()  # stops the input worker processes now, not at garbage collection
        except ValueError:  # TensorFlow's adapter may still be reading it in its own thread:
            pass  # then it ends with that thread
    elapsed = clock.elapsed
    bad = model.nonfinite.first_step()
    if bad is not None:
        raise FloatingPointError(f"step {bad}: the gradients are not finite; no weights were "
                                 f"written to {weights_dir}")
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    weights = os.path.join(weights_dir, f"step-{steps}.weights.h5")
    save_model_weights(model, run, weights)
    step_ms = 1e3 * float(np.median(clock.step_seconds)) if clock.step_seconds else None
    tokens = int(keras.ops.convert_to_numpy(model.tokens_seen))
    summary = {
        "backend": keras.backend.backend(), "steps": steps, "tokens_seen": tokens,
        "parameters": model.count_params(), "batch_size": settings.batch_size,
        "mixed_precision": settings.mixed_precision, "wall_seconds": round(elapsed, 1),
        "first_step_seconds": round(clock.first_step_seconds or 0.0, 2),
        "step_ms_median": None if step_ms is None else round(step_ms, 2),
        "loss_tokens_per_second": round(tokens / elapsed, 1),
        "loss": [round(float(v), 4) for v in history.history.get("loss", [])],
        "bits_per_token": [round(float(v), 4) for v in history.history.get("bits_per_token", [])],
        "weights": os.path.relpath(weights, model_dir),
    }
    with open(os.path.join(model_dir, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
    log.info("Done at step %d, %d tokens, %.0f s; weights in %s", steps, tokens, elapsed,
             weights)
    return summary


def save_model_weights(model, run: RunSettings, path: str) -> None:
    """The trainer's weights without the optimizer's: a compiled model's weights file also
    holds Adam's two moments, three times the bytes (and a GPU host sends back at most 16 MiB
    a file). Copied into an uncompiled trainer of the same architecture, which saves."""
    plain = build_run_model(run, model_class=DCTransformerTrainer)
    plain.set_weights(model.get_weights())
    plain.save_weights(path)


def warn_if_count_may_wrap(most_tokens: int) -> None:
    """The token count is int64 where the backend has it; JAX without x64 keeps int32."""
    if keras.backend.backend() == "jax" and most_tokens >= 2**31:
        import jax

        if not jax.config.jax_enable_x64:
            log.warning("this run may count up to %d tokens: more than an int32 holds, and "
                        "JAX keeps int64 only with JAX_ENABLE_X64=1 (tokens_seen would wrap)",
                        most_tokens)


class StopAfterSteps(keras.callbacks.Callback):
    """Stops `fit` after `steps` optimizer steps (the last epoch may be cut short)."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.seen = steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen >= self.steps:
            self.model.stop_training = True


def _as_inputs(batches):
    """Keras wants a generator's items as tuples: (x,) with no targets."""
    for batch in batches:
        yield (batch,)


def import_weights(model_dir: str, weights: str | None = None) -> str:
    """(TensorFlow) Turns a Keras weights file of the run's trainer (written on any backend, such as
    `train/portable.py`'s `weights/step-STEP.weights.h5`) into the run's checkpoint
    `checkpoints/ckpt-STEP`, which `load_trained_model` reads (so `evaluate`, `sample` and
    `export`). It holds the model only, no optimizer state: `dctformer train` does not resume
    from it.

    Args:
      model_dir: a run directory with `run.json`.
      weights: the `.weights.h5` file; default the highest step under `model_dir/weights`.
    Returns:
      the checkpoint prefix written.
    Raises:
      FileNotFoundError / ValueError naming the file: no weights, a name without its step,
      or weights of another architecture.
    """
    import tensorflow as tf

    run = runs.read_run_file(model_dir)
    if weights is None:
        folder = os.path.join(model_dir, WEIGHTS_DIR)
        found = sorted(
            (int(m.group(1)), name) for name in (os.listdir(folder) if os.path.isdir(folder)
                                                 else [])
            if (m := re.fullmatch(r"step-(\d+)\.weights\.h5", name)))
        if not found:
            raise FileNotFoundError(f"no step-STEP.weights.h5 file in {folder}")
        weights = os.path.join(folder, found[-1][1])
    match = re.fullmatch(r"step-(\d+)\.weights\.h5", os.path.basename(weights))
    if match is None:
        raise ValueError(f"{weights}: expected a file named step-STEP.weights.h5")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{weights} not found")
    model = runs.build_run_model(run, model_class=DCTransformerTrainer)
    try:
        model.load_weights(weights)
    except ValueError as error:
        raise ValueError(f"{weights}: does not fit the architecture in "
                         f"{os.path.join(model_dir, runs.RUN_FILE)} ({str(error)[:300]})") from None
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                         os.path.join(model_dir, runs.CHECKPOINT_DIR),
                                         max_to_keep=None)
    path = manager.save(checkpoint_number=int(match.group(1)))
    log.info("Imported %s as %s", weights, path)
    return path
