"""The stages of tools/accelerator_check.sh that run under Keras' JAX backend, on a GPU host
with no TensorFlow (or, with JAX_PLATFORMS=cpu, on this machine for --dry-run).

    python tools/accelerator_jax.py peak [--size 8192] [--dtype bfloat16]
    python tools/accelerator_jax.py step --config small --batch 32 [--bf16] [--remat]
        [--steps 10] [--gin_bindings LINE ...] [--label NAME]
    python tools/accelerator_jax.py choose --small-json B_SMALL.json --minutes 8
        [--max-weights-mib 15]

`peak`: FLOP/s of a square matmul (jit-compiled, the best of several timed calls).
`step`: the real `DCTransformerTrainer.fit` step (MonitoredAdam, XLA) on a compact batch of
random valid sequences of the config's `max_length`, expanded on the device as in training:
step time, loss tokens per second, MFU (model FLOPs, `model.flops`, against the matmul
peak measured in the same process), and the device's peak memory against the memory plan
(`dctformer_tf.plan`, as `tools/plan_run.py --predict` gives it for the same config, batch
and bindings). One JSON line.
`choose`: the `shapes` model for the timed run (stage d), from `step`'s measured MFU (module
docstring of `choose_model`). One JSON line.
"""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402

from dctformer_tf.model.configs import count_parameters  # noqa: E402
from dctformer_tf.model.flops import train_step_flops  # noqa: E402
from dctformer_tf.plan import (  # noqa: E402
    config_files,
    model_from_config,
    predictions,
    random_compact_batch,
    setting_key,
)
from dctformer_tf.runs import DataSettings, build_run_model  # noqa: E402
from dctformer_tf.train.gin_model import (  # noqa: E402
    config_from_bindings,
    read_bindings,
    run_from_bindings,
)
from dctformer_tf.train.nonfinite import MonitoredAdam  # noqa: E402
from dctformer_tf.train.trainer import DCTransformerTrainer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
GIB = 2**30
# The timed shapes run (stage d) trains the quickstart recipe at one of these sizes
# (gin/runs/quickstart.gin's model is the first): (d_model, heads, key_size, specs).
CANDIDATES = (
    (96, 4, 24, "[(1, 2)]", "[(1, 2), (1, 2)]"),
    (128, 4, 32, "[(1, 2)]", "[(1, 2), (1, 2)]"),
    (192, 6, 32, "[(1, 2), (1, 2)]", "[(1, 2), (1, 2), (1, 2)]"),
    (256, 8, 32, "[(1, 2), (1, 2)]", "[(1, 2), (1, 2), (1, 2)]"),
    (384, 8, 48, "[(1, 2), (1, 2), (1, 2)]", "[(1, 2), (1, 2), (1, 2), (1, 2)]"),
)
SHAPES_FILES = ("gin/models/small.gin", "gin/data/shapes.gin", "gin/runs/train.gin",
                "gin/runs/quickstart.gin")


def matmul_peak(size: int, dtype: str, repeats: int = 10) -> float:
    """FLOP/s of a `size`-square matmul in `dtype` (the best of `repeats` timed calls)."""
    keys = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(keys[0], (size, size), dtype)
    b = jax.random.normal(keys[1], (size, size), dtype)
    product = jax.jit(lambda x, y: x @ y)
    product(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def device_peak_bytes() -> int | None:
    """The device allocator's peak bytes in use (None where the backend has no statistics,
    as on the CPU)."""
    stats = jax.devices()[0].memory_stats()
    return None if not stats else int(stats.get("peak_bytes_in_use", 0)) or None


def planned_bytes(name: str, run, batch: int, setting: str) -> dict:
    """The memory plan's per-replica bytes (`dctformer_tf.plan.predictions`, what
    `tools/plan_run.py --predict` prints) for the same config, batch and bindings."""
    sizes = model_from_config(name, run.model, max_length=run.max_length)
    predicted = predictions([sizes], batch)[name]
    return {"parameters": predicted["parameters"], "planned_bytes": predicted[setting]}


def measure_step(args) -> dict:
    bindings = list(args.gin_bindings or [])
    if args.remat:
        bindings.append("architecture.remat = True")
    bound = read_bindings(config_files(ROOT / "gin", args.config), bindings)
    run = run_from_bindings(bound, DataSettings("shapes"))  # random sequences: no source read
    config = run.model
    dtype = "bfloat16" if args.bf16 else "float32"
    peak = matmul_peak(args.peak_size, dtype)
    if args.bf16:
        keras.config.set_dtype_policy("mixed_bfloat16")
    model = build_run_model(run, model_class=DCTransformerTrainer)
    model.compile(optimizer=MonitoredAdam(1e-4), jit_compile=True)
    batch = random_compact_batch(run, args.batch)

    def steps(n):
        for _ in range(n):
            yield (batch,)

    start = time.perf_counter()
    model.fit(steps(1), steps_per_epoch=1, epochs=1, verbose=0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    history = model.fit(steps(args.steps), steps_per_epoch=args.steps, epochs=1, verbose=0)
    per_step = (time.perf_counter() - start) / args.steps
    flops = train_step_flops(model.get_config(), args.batch)
    tokens = int(batch["loss_tokens"].sum())
    result = {
        "stage": "step", "label": args.label or args.config, "config": args.config,
        "device": str(jax.devices()[0].device_kind), "backend": keras.backend.backend(),
        "precision": "mixed_bfloat16" if args.bf16 else "float32", "remat": args.remat,
        "batch": args.batch, "d_model": config.d_model, "heads": config.num_heads,
        "window": config.window, "parameters": model.count_params(),
        "first_step_s": round(first, 2), "step_ms": round(per_step * 1e3, 2),
        "loss_tokens_per_s": round(tokens / per_step, 1),
        "window_tokens_per_s": round(args.batch * config.window / per_step, 1),
        "model_tflop_per_step": round(flops / 1e12, 4),
        f"matmul_peak_{dtype}_tflops": round(peak / 1e12, 2),
        "mfu": round(flops / per_step / peak, 4),
        "loss": round(float(history.history["loss"][-1]), 4),
    }
    peak_bytes = device_peak_bytes()
    result["peak_gib"] = None if peak_bytes is None else round(peak_bytes / GIB, 3)
    plan = planned_bytes(args.config, run, args.batch, setting_key(dtype, args.remat))
    result["planned_gib"] = round(plan["planned_bytes"] / GIB, 3)
    result["plan_parameters"] = plan["parameters"]
    if peak_bytes:
        result["measured_over_plan"] = round(peak_bytes / plan["planned_bytes"], 3)
    return result


def choose_model(small: dict, minutes: float, max_weights_mib: float,
                 tokens_per_parameter: float = 20.0) -> dict:
    """The largest candidate shapes model whose weights file fits `max_weights_mib` (float32)
    and that sees at least `tokens_per_parameter` loss tokens per parameter in `minutes`,
    at the MFU the `small` step reached (`small`: `measure_step`'s result); the first
    candidate when none does. Returns its gin bindings and the estimates.
    """
    bound = read_bindings([ROOT / f for f in SHAPES_FILES])
    peak = next(v for k, v in small.items() if k.startswith("matmul_peak_")) * 1e12
    chosen = None
    for d_model, heads, key_size, spec, value_spec in CANDIDATES:
        bindings = [f"architecture.d_model = {d_model}", f"architecture.num_heads = {heads}",
                    f"architecture.key_size = {key_size}", f"architecture.encoder_spec = {spec}",
                    f"architecture.channel_spec = {spec}", f"architecture.position_spec = {spec}",
                    f"architecture.value_spec = {value_spec}"]
        config = config_from_bindings({**bound, **read_bindings([], bindings)})
        parameters = count_parameters(config.model_kwargs())
        batch = int(bound["train.batch_size"])
        step_seconds = train_step_flops(config.model_kwargs(), batch) / (small["mfu"] * peak)
        tokens = minutes * 60 / step_seconds * batch * config.chunk_size
        estimate = {"d_model": d_model, "parameters": parameters,
                    "weights_mib": round(4 * parameters / 2**20, 2),
                    "estimated_step_ms": round(step_seconds * 1e3, 2),
                    "estimated_tokens": round(tokens), "gin_bindings": bindings}
        if estimate["weights_mib"] <= max_weights_mib and \
                tokens >= tokens_per_parameter * parameters:
            chosen = estimate
        elif chosen is None:
            chosen = estimate if estimate["weights_mib"] <= max_weights_mib else chosen
    return {"stage": "choose", "minutes": minutes, **(chosen or {})}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    peak = sub.add_parser("peak", help="matmul FLOP/s")
    peak.add_argument("--size", type=int, default=8192)
    peak.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    step = sub.add_parser("step", help="train-step time, MFU and memory against the plan")
    step.add_argument("--config", required=True, help="a gin/models file name")
    step.add_argument("--batch", type=int, required=True)
    step.add_argument("--steps", type=int, default=10, help="timed steps after the first")
    step.add_argument("--bf16", action="store_true", help="mixed_bfloat16 policy")
    step.add_argument("--remat", action="store_true", help="architecture.remat = True")
    step.add_argument("--gin_bindings", action="append", help="gin line, repeatable")
    step.add_argument("--label", default=None, help="the row's name in the table")
    step.add_argument("--peak-size", type=int, default=8192, help="matmul side for the peak")
    choose = sub.add_parser("choose", help="the shapes model for the timed run")
    choose.add_argument("--small-json", required=True, help="`step --config small` output")
    choose.add_argument("--minutes", type=float, default=8.0)
    choose.add_argument("--max-weights-mib", type=float, default=15.0)
    args = parser.parse_args(argv)
    if args.stage == "peak":
        if args.size < 1:
            parser.error("--size must be positive")
        flops = matmul_peak(args.size, args.dtype)
        result = {"stage": "peak", "device": str(jax.devices()[0].device_kind),
                  "size": args.size, "dtype": args.dtype, "tflops": round(flops / 1e12, 2)}
    elif args.stage == "step":
        if not (ROOT / "gin" / "models" / f"{args.config}.gin").exists():
            parser.error(f"--config {args.config!r}: no gin/models/{args.config}.gin")
        if args.batch < 1 or args.steps < 1:
            parser.error("--batch and --steps must be positive")
        result = measure_step(args)
    else:
        with open(args.small_json) as f:
            small = json.loads(f.read().strip().splitlines()[-1])
        result = choose_model(small, args.minutes, args.max_weights_mib)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
