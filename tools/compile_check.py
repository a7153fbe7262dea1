"""Compiles the train step of every Table 3 model at full width and depth with XLA on the CPU.

    python tools/compile_check.py                          # the seven Table 3 configs
    python tools/compile_check.py retinopathy clevr        # chosen gin/models files
    python tools/compile_check.py retinopathy --depth 1    # first block of every stack only
    python tools/compile_check.py --buffer-assignment      # and XLA's temp memory vs the plan

Compile only, nothing runs: each config, in its own process (peak RSS is per process), builds
`DCTransformerTrainer` in float32 with Adam, then takes the XLA-compiled train step
(`tf.function(model.train_step, jit_compile=True)`) at batch 1 and the config's window
(chunk 896 + overlap 128 = 1024), fed what the input pipeline feeds it (compact examples:
the packed sequence of `max_length` from gin/data/NAME.gin, expanded inside the step),
traced once (`get_concrete_function`), then through
`experimental_get_compiler_ir`:
- stage "hlo": the TF-to-XLA lowering only (no XLA pass, no code generated);
- stage "optimized_hlo" (the "compile" column): the lowering again, then the whole XLA:CPU
  compilation (HLO passes, buffer assignment, LLVM code generation; with an XLA dump folder
  it writes the LLVM IR of every kernel, which stage "hlo" never does).
The optimizer must exist for the step to trace (it reads Adam's moments; tracing builds it
otherwise), so weights and moments take 12 bytes per parameter (8 GB for ImageNet's 672 M).

With `--buffer-assignment` each process dumps XLA's buffer assignment and reports the
temporary memory the compiled step would allocate at batch 1, beside what the memory plan
(`dctformer_tf.plan`, as `tools/plan_run.py` prints it) predicts for that step (float32, no
remat): its activations, and its activations plus all gradients (the plan's sum; XLA frees
activations while it makes gradients, so its temporary memory should lie between the two).
"""

import argparse
import glob
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dctformer_tf import plan  # noqa: E402
from dctformer_tf.train import gin_model  # noqa: E402

GIN = pathlib.Path(__file__).resolve().parents[1] / "gin"


def rss_bytes(field: str) -> int:
    """`VmRSS` (now) or `VmHWM` (peak) of this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def model_config(name: str, depth: int | None):
    """The `ModelConfig` of config NAME (its model, data and train gin files,
    `dctformer_tf.plan.config_files`) and the run's `RunSettings`; `depth` keeps the first
    `depth` blocks of every layer spec."""
    import dataclasses

    bound = gin_model.read_bindings(plan.config_files(GIN, name))
    config, run = gin_model.config_from_bindings(bound), gin_model.run_from_bindings(bound)
    if depth:
        specs = {f"{x}_spec": list(getattr(config, f"{x}_spec"))[:depth]
                 for x in ("encoder", "channel", "position", "value")}
        config = dataclasses.replace(config, **specs)
    return config, run


def batch_spec(run) -> dict:
    """Batch 1 of what the input pipeline feeds the train step, as zeros (only shapes and
    types matter): compact examples (packed sequences of the run's `max_length` and chunk
    bounds), which the step itself expands into partial images and windows."""
    import tensorflow as tf

    from dctformer_tf.plan.input_side import compact_batches, empty_sequences

    spec = compact_batches(run, empty_sequences(run)).element_spec
    return {name: tf.zeros(s.shape, s.dtype) for name, s in spec.items()}


def compile_step(name: str, depth: int | None) -> dict:
    """Builds the model and optimizer, lowers and compiles the train step; seconds per phase
    and RSS."""
    import keras
    import tensorflow as tf

    from dctformer_tf.train.trainer import DCTransformerTrainer

    result = {"config": name, "depth": depth}
    start = time.perf_counter()
    config, run = model_config(name, depth)
    model = DCTransformerTrainer(**config.model_kwargs())
    model.build(config.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(5e-4))
    model.optimizer.build(model.trainable_variables)
    result["parameters"] = sum(int(v.shape.num_elements()) for v in model.trainable_variables)
    result["build_s"] = time.perf_counter() - start
    result["rss_after_build_bytes"] = rss_bytes("VmRSS")
    data = batch_spec(run)
    step = tf.function(model.train_step, jit_compile=True)
    start = time.perf_counter()
    step.get_concrete_function(data)  # the Python trace; the stages below reuse it
    result["trace_s"] = time.perf_counter() - start
    for stage in ("hlo", "optimized_hlo"):
        start = time.perf_counter()
        ir = step.experimental_get_compiler_ir(data)(stage=stage)
        result[f"{stage}_s"] = time.perf_counter() - start
        result[f"{stage}_chars"] = len(ir)
    result["peak_rss_bytes"] = rss_bytes("VmHWM")
    return result


def temp_bytes(dump_dir: str) -> int:
    """XLA's preallocated temporary buffer of the compiled train step (its buffer
    assignment), in bytes."""
    pattern = os.path.join(dump_dir, "*train_step*after_optimizations-buffer-assignment.txt")
    files = glob.glob(pattern)
    if not files:
        raise FileNotFoundError(f"no buffer assignment matches {pattern}")
    with open(max(files, key=os.path.getmtime)) as f:
        sizes = [int(m.group(1)) for m in re.finditer(r"size (\d+), preallocated-temp", f.read())]
    return sum(sizes)


def planned_bytes(name: str, depth: int | None) -> dict:
    """The memory plan's float32 step at batch 1 (`dctformer_tf.plan.predicted_step`), the
    counterpart of XLA's temporary buffer: its activations (the compact input batch aside,
    an argument of the step; its expansion, made inside the step, counted) and gradients."""
    config, run = model_config(name, depth)
    m = plan.model_from_config(name, config, max_length=run.max_length)
    gradients = plan.replica_bytes(m, 1, "float32", remat=False)["gradients"]
    return {"planned_activations_bytes": plan.predicted_step(m, 1) - gradients,
            "planned_gradients_bytes": gradients}


def run_child(name: str, depth: int | None, buffer_assignment: bool) -> dict:
    """One config in its own process; a failed compile comes back with its error."""
    command = [sys.executable, __file__, name, "--child"]
    if depth:
        command += ["--depth", str(depth)]
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="compile_check_") as dump_dir:
        if buffer_assignment:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_dump_to={dump_dir}"
                                " --xla_dump_hlo_as_text").strip()
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = out.stdout.strip().splitlines()
        if out.returncode or not lines:
            error = (out.stderr.strip().splitlines() or ["no output"])[-1]
            return {"config": name, "depth": depth, "error": error,
                    "returncode": out.returncode}
        result = json.loads(lines[-1])
        if buffer_assignment:
            result["xla_temp_bytes"] = temp_bytes(dump_dir)
            result.update(planned_bytes(name, depth))
    return result


def print_table(rows: list[dict]) -> None:
    print("train step, batch 1, float32, jit_compile=True on the CPU; seconds and GiB")
    header = (f"{'config':<17}{'params':>13}{'build':>7}{'trace':>7}{'hlo':>7}{'compile':>9}"
              f"{'RSS built':>11}{'peak RSS':>10}")
    if any("xla_temp_bytes" in r for r in rows):
        header += f"{'XLA temp':>10}{'plan acts':>11}{'+grads':>8}   plan/XLA"
    print(header)
    for r in rows:
        name = r["config"] + (f" d{r['depth']}" if r.get("depth") else "")
        if "error" in r:
            print(f"{name:<17} FAILED (exit {r['returncode']}): {r['error']}")
            continue
        line = (f"{name:<17}{r['parameters']:>13,}{r['build_s']:>7.1f}{r['trace_s']:>7.1f}"
                f"{r['hlo_s']:>7.1f}"
                f"{r['optimized_hlo_s']:>9.1f}{r['rss_after_build_bytes'] / plan.GIB:>11.2f}"
                f"{r['peak_rss_bytes'] / plan.GIB:>10.2f}")
        if "xla_temp_bytes" in r:
            acts, grads = r["planned_activations_bytes"], r["planned_gradients_bytes"]
            line += (f"{r['xla_temp_bytes'] / plan.GIB:>10.2f}{acts / plan.GIB:>11.2f}"
                     f"{(acts + grads) / plan.GIB:>8.2f}   {acts / r['xla_temp_bytes']:.2f}-"
                     f"{(acts + grads) / r['xla_temp_bytes']:.2f}")
        print(line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=list(plan.TABLE3), metavar="NAME",
                        help="gin/models/NAME.gin (default: the seven Table 3 configs)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--depth", type=int, default=None,
                        help="keep the first DEPTH blocks of every layer spec")
    parser.add_argument("--buffer-assignment", action="store_true",
                        help="report XLA's temporary memory beside the memory plan's")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    missing = [n for n in args.configs if not (GIN / "models" / f"{n}.gin").exists()]
    if missing:
        parser.error(f"no gin/models file for {', '.join(missing)}")
    if args.depth is not None and args.depth < 1:
        parser.error("--depth must be >= 1")
    if args.child:
        print(json.dumps(compile_step(args.configs[0], args.depth)))
        return 0
    rows = []
    for name in args.configs:
        rows.append(run_child(name, args.depth, args.buffer_assignment))
        if not args.json:
            print(f"{name}: {'FAILED' if 'error' in rows[-1] else 'compiled'}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
