"""A training run on disk, without gin: its settings (`run.json`), its checkpoints, and the
trained model. Sampling, export, evaluation, the CLI and the tools read runs through this
module; none of them imports `train` (docs/design.md §9).

model_dir layout (written by `train.experiment.train`):
  run.json               `RunSettings`: codec, chunking, model architecture, max_length, data
  operative_config.gin   the gin config the run used (for people; nothing parses it)
  checkpoints/ckpt-STEP  tf.train checkpoints (model, optimizer), every `steps_per_epoch`
  tensorboard/{train,eval,samples}
"""

import dataclasses
import json
import logging
import os
import re

from dctformer_tf.data.layout import Chunking
from dctformer_tf.data.source_settings import DataSettings  # noqa: F401  (re-exported)
from dctformer_tf.dct import SparseCodec
from dctformer_tf.model import DCTransformer
from dctformer_tf.model.configs import (  # noqa: F401  (re-exported)
    ARCHITECTURE_FIELDS,
    DERIVED_FIELDS,
    ModelConfig,
    model_config,
)

log = logging.getLogger("dctformer_tf.runs")


def _tf():
    """TensorFlow, imported where a function needs it (checkpoints, remote paths): a run's
    settings stay readable and writable on a host without TensorFlow (`train/portable.py`,
    under Keras' JAX backend)."""
    import tensorflow as tf

    return tf


def _open(path: str, mode: str = "r"):
    """A local file with `open`, a remote one (gs://...) with `tf.io.gfile`."""
    return _tf().io.gfile.GFile(path, mode) if "://" in path else open(path, mode)


def _exists(path: str) -> bool:
    return _tf().io.gfile.exists(path) if "://" in path else os.path.exists(path)


RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything needed to score, sample or export a run again.

    Args:
      codec: SparseCodec. How images become sequences.
      chunking: Chunking. How sequences are cut into decoder windows.
      architecture: dict. The `ARCHITECTURE_FIELDS` of the model.
      max_length: int. Sequence buffer length L_max (EOS included).
      data: DataSettings or None (a run.json that does not record it).
    """

    codec: SparseCodec
    chunking: Chunking
    architecture: dict
    max_length: int
    data: DataSettings | None = None

    def __post_init__(self):
        self.model  # noqa: B018 -- fail at construction on settings that build no model

    @property
    def model(self) -> ModelConfig:
        """The model's full configuration, derived from codec, chunking and architecture."""
        return model_config(self.codec, self.chunking, **self.architecture)

    def to_json(self) -> dict:
        return {
            "codec": self.codec.config(),
            "chunking": dataclasses.asdict(self.chunking),
            "model": dict(self.architecture),
            "max_length": self.max_length,
            "data": dataclasses.asdict(self.data) if self.data else None,
        }

    @classmethod
    def from_json(cls, settings: dict, path: str = RUN_FILE) -> "RunSettings":
        """Reads `to_json`'s dict; also one whose "model" holds the derived fields too
        (checked against the codec and chunking, then dropped)."""
        try:
            codec = SparseCodec(**settings["codec"])
            model = dict(settings["model"])
            chunking = settings.get("chunking") or {
                "chunk_size": model["chunk_size"], "overlap": model["chunk_overlap"]}
            run = cls(codec, Chunking(**chunking),
                      {k: v for k, v in model.items() if k not in DERIVED_FIELDS},
                      int(settings["max_length"]),
                      DataSettings(**settings["data"]) if settings.get("data") else None)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: not a valid run file ({error!r})") from None
        run.check_derived(model, path)
        return run

    @classmethod
    def from_model_config(cls, codec: SparseCodec, config: ModelConfig, max_length: int,
                          data: DataSettings | None = None) -> "RunSettings":
        """The settings of a model built from a full `ModelConfig` (whose codec fields must
        agree with `codec`)."""
        run = cls(codec, Chunking(config.chunk_size, config.chunk_overlap),
                  {name: getattr(config, name) for name in ARCHITECTURE_FIELDS}, max_length,
                  data)
        run.check_derived(dataclasses.asdict(config), "model config")
        return run

    def check_derived(self, model: dict, where: str) -> None:
        """Raises ValueError naming every derived field of `model` that disagrees with this
        run's codec and chunking."""
        derived = dataclasses.asdict(self.model)
        wrong = {k: (v, derived[k]) for k, v in model.items()
                 if k in DERIVED_FIELDS and v != derived[k]}
        if wrong:
            detail = ", ".join(f"{k}: model {a!r} vs codec/chunking {b!r}"
                               for k, (a, b) in wrong.items())
            raise ValueError(f"{where}: model and codec/chunking settings disagree: {detail}")


def write_run_file(model_dir: str, run: RunSettings) -> str:
    """Writes `model_dir/run.json`; returns its path."""
    path = os.path.join(model_dir, RUN_FILE)
    with _open(path, "w") as f:
        json.dump(run.to_json(), f, indent=2)
    return path


def read_run_file(model_dir: str) -> RunSettings:
    """The `RunSettings` of a training run's model_dir."""
    path = os.path.join(model_dir, RUN_FILE)
    if not _exists(path):
        raise FileNotFoundError(f"{path} not found: is {model_dir} a dctformer training run?")
    with _open(path) as f:
        try:
            settings = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
    return RunSettings.from_json(settings, path)


def restore_checkpoint(checkpoint, path: str, partial: bool = False):
    """Restore `path` into `checkpoint`, insisting that every object it tracks gets a value.

    partial: the checkpoint may hold more than `checkpoint` tracks (a plain model restored
      from a training checkpoint, which also holds the optimizer and the metrics).

    Raises:
      ValueError naming the file when some weight of the model has no value in it (such as
      a checkpoint that holds the Transformer blocks only in the optimizer's slots).
    """
    status = checkpoint.restore(path)
    if partial:
        status = status.expect_partial()
    try:
        status.assert_existing_objects_matched()
    except AssertionError as error:
        if only_missing(error, OPTIONAL_VARIABLES):
            return status
        raise ValueError(
            f"{path}: this checkpoint lacks weights the model has ({str(error)[:300]}...). "
            "It comes from a different model configuration, or from a version of "
            "dctformer_tf whose checkpoints did not record the Transformer blocks; retrain."
        ) from error
    return status


# Variables a checkpoint may lack and keep their initial value: the optimizer's record of the
# first non-finite step (`train/nonfinite.py`), absent from checkpoints written by a plain
# Adam optimizer; it starts at "none" (-1), as a new run's does.
OPTIONAL_VARIABLES = ("first_nonfinite_step",)


def only_missing(error: AssertionError, names: tuple) -> bool:
    """Whether every object `assert_existing_objects_matched` found unbound is a variable
    whose name contains one of `names`."""
    text = str(error)
    shown = re.search(r"Showing (\d+) of (\d+) unmatched", text)
    if shown and shown.group(1) != shown.group(2):
        return False  # the list is cut: the others are unknown
    unbound = re.findall(r"<([^<>]*)>", text)  # "<Variable path=.../name, shape=...>"
    return bool(unbound) and all(any(name in item for name in names) for item in unbound)


def resolve_checkpoint(model_dir: str, checkpoint: str | None = None) -> str:
    """The checkpoint prefix a command reads: `checkpoint` when given, else the latest in
    `model_dir/checkpoints` (so reports can name what they evaluated)."""
    path = checkpoint or _tf().train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR))
    if path is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(model_dir, CHECKPOINT_DIR)}")
    return path


def build_run_model(run: RunSettings, batch_size: int | None = None, model_class=DCTransformer):
    """A built (untrained) model of the run's architecture."""
    config = run.model
    model = model_class(**config.model_kwargs())
    model.build(config.input_shapes(batch_size))
    return model


def load_trained_model(model_dir: str, checkpoint: str | None = None) -> tuple:
    """(DCTransformer with restored weights, RunSettings) of a run.

    Args:
      checkpoint: a checkpoint prefix; default the latest one in `model_dir/checkpoints`.
    """
    run = read_run_file(model_dir)
    model = build_run_model(run)
    path = resolve_checkpoint(model_dir, checkpoint)
    # partial: the trainer's metrics and the optimizer are in the checkpoint too.
    restore_checkpoint(_tf().train.Checkpoint(model=model), path, partial=True)
    log.info("Restored %s", path)
    return model, run

