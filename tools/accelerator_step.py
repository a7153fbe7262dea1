"""Train steps of a Table 3 model at full width and depth on one device, with its peak memory
beside the memory plan's prediction (`tools/plan_run.py`).

    python tools/accelerator_step.py --config lsun --batch 8 [--remat] [--bf16] [--steps 3]
        [--planned-gib 61.2] [--json]

The real `DCTransformerTrainer.fit` step (the one `dctformer train` runs), compiled with XLA,
on a compact batch of random valid sequences of the config's `max_length` (the step unpacks
them and scatters the partial images itself, as in training); the first step (trace and
compile) is timed apart from the next ones. Peak memory is TensorFlow's allocator statistic
for the device (`tf.config.experimental.get_memory_info`), reset after the model, optimizer
and batch exist, and reported both as the step's own peak above that and in total.
`tools/accelerator_check.sh` runs it with the largest batch the plan says fits.
"""

import argparse
import json
import os
import pathlib
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from dctformer_tf.plan import random_compact_batch  # noqa: E402
from dctformer_tf.runs import build_run_model  # noqa: E402
from dctformer_tf.train.experiment import build_run_settings  # noqa: E402
from dctformer_tf.train.trainer import DCTransformerTrainer  # noqa: E402

GIB = 2**30


def device_memory(device: str) -> dict:
    try:
        return tf.config.experimental.get_memory_info(device)
    except (ValueError, tf.errors.OpError):
        return {"current": 0, "peak": 0}


def run(args) -> dict:
    bindings = ["train.model_dir = '/tmp/unused'"]
    if args.remat:
        bindings.append("architecture.remat = True")
    # The config's own data file sets its max_length (the compact batch's size); the CPU
    # models (tiny, small) have none and train on shapes.
    data_file = ROOT / "gin/data" / f"{args.config}.gin"
    if not data_file.exists():
        data_file = ROOT / "gin/data/shapes.gin"
    gin.parse_config_files_and_bindings(
        [str(ROOT / "gin/models" / f"{args.config}.gin"), str(ROOT / "gin/runs/train.gin"),
         str(data_file)], bindings)
    if args.bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    run_settings, _ = build_run_settings()
    device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    model = build_run_model(run_settings, model_class=DCTransformerTrainer)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True)
    model.optimizer.build(model.trainable_variables)
    data = tf.data.Dataset.from_tensors(random_compact_batch(run_settings, args.batch)).repeat()
    before = device_memory(device)["current"]
    if hasattr(tf.config.experimental, "reset_memory_stats"):
        try:
            tf.config.experimental.reset_memory_stats(device)
        except (ValueError, tf.errors.OpError):
            pass
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    history = model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
    per_step = (time.perf_counter() - start) / args.steps
    peak = device_memory(device)["peak"]
    result = {"config": args.config, "device": device, "batch": args.batch,
              "remat": args.remat, "bf16": args.bf16, "parameters": model.count_params(),
              "first_step_s": round(first, 2), "step_ms": round(per_step * 1e3, 1),
              "tokens_per_s": round(args.batch * run_settings.chunking.chunk_size / per_step),
              "loss": float(history.history["loss"][-1]),
              "peak_gib": round(peak / GIB, 2), "step_peak_gib": round((peak - before) / GIB, 2)}
    if args.planned_gib:
        result["planned_gib"] = args.planned_gib
        result["measured_over_plan"] = round(peak / GIB / args.planned_gib, 3)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True,
                        help="a gin/models file name: lsun, ffhq, imagenet, ...")
    parser.add_argument("--batch", type=int, required=True, help="per-device batch")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after the first")
    parser.add_argument("--remat", action="store_true", help="architecture.remat = True")
    parser.add_argument("--bf16", action="store_true", help="mixed_bfloat16 policy")
    parser.add_argument("--planned-gib", type=float, default=None,
                        help="the plan's per-replica total, to print the ratio")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (ROOT / "gin/models" / f"{args.config}.gin").exists():
        parser.error(f"--config {args.config!r}: no gin/models/{args.config}.gin")
    if args.batch < 1 or args.steps < 1:
        parser.error("--batch and --steps must be positive")
    result = run(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
