"""Planning a training run before it runs: memory per replica, whether and how it fits an
accelerator, and what its input side costs (docs/benchmarks.md, "Memory plan" and "Input
pipeline"; `tools/plan_run.py` prints it).

  table3        the paper's Table 3 configs, their parameter counts, their gin files
  lengths       the sequence-length distribution assumed per dataset
  accelerators  data-parallel machines: replicas x memory
  sizes         `ModelSizes`, the numbers of a `ModelConfig` the plan reads
  activations   bytes per sample of a train step, by term (precision, remat)
  memory        per-replica bytes, the largest batch that fits, gradient accumulation
  encoding      encodes per training example and the host CPU they take
  batches       random compact batches of a run's shapes (numpy), for timing a step
  input_side    bytes per example, a measured encode, the whole input plan (imports
                TensorFlow, so it is not re-exported here)

Library code below the trainer: it imports `dct`, `data`, `model` and `runs`, never `train`
or `cli`, and never gin (the tools read gin files with `train.gin_model.read_bindings` and
pass the results in). Everything re-exported here imports without TensorFlow, so a GPU host
that runs Keras on JAX plans with it too.
"""

from dctformer_tf.plan.accelerators import ACCELERATORS, GIB, Accelerator, by_total_memory
from dctformer_tf.plan.activations import PRECISIONS, activation_terms
from dctformer_tf.plan.batches import random_compact_batch
from dctformer_tf.plan.encoding import (
    ENCODE_CPU_MS_PER_MEGAPIXEL,
    encode_load,
    modelled_encode_seconds,
)
from dctformer_tf.plan.lengths import ASSUMED_LENGTHS, LengthAssumption
from dctformer_tf.plan.memory import (
    SETTINGS,
    accumulation_steps,
    best_setting,
    largest_batch,
    plan_config,
    plans,
    predicted_step,
    predictions,
    replica_bytes,
    setting_key,
    smallest,
    total,
)
from dctformer_tf.plan.sizes import ModelSizes, model_from_config
from dctformer_tf.plan.table3 import PAPER_PARAMETERS, TABLE3, config_files, data_file

__all__ = [
    "ACCELERATORS",
    "ASSUMED_LENGTHS",
    "Accelerator",
    "ENCODE_CPU_MS_PER_MEGAPIXEL",
    "GIB",
    "LengthAssumption",
    "ModelSizes",
    "PAPER_PARAMETERS",
    "PRECISIONS",
    "SETTINGS",
    "TABLE3",
    "accumulation_steps",
    "activation_terms",
    "best_setting",
    "by_total_memory",
    "config_files",
    "data_file",
    "encode_load",
    "largest_batch",
    "model_from_config",
    "modelled_encode_seconds",
    "plan_config",
    "plans",
    "predicted_step",
    "predictions",
    "random_compact_batch",
    "replica_bytes",
    "setting_key",
    "smallest",
    "total",
]
