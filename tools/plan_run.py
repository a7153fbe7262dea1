"""Memory plan of the Table 3 training runs: per-replica bytes, whether they fit, and how.

    python tools/plan_run.py                              # every Table 3 config on tpu-v3-32
    python tools/plan_run.py --accelerator 8xa100-80gb --config lsun imagenet
    python tools/plan_run.py --replicas 64 --memory-gib 16   # any data-parallel machine
    python tools/plan_run.py --json                       # every config, machine-readable
    python tools/plan_run.py --smallest                   # smallest listed accelerator per config
    python tools/plan_run.py --predict 8 --config lsun    # bytes at one batch (JSON)
    python tools/plan_run.py --validate                   # activation model vs measured CPU memory

For each config at its paper batch (`BATCH_SIZE`, split over the replicas; docs/design.md §4)
and window (`CHUNK_SIZE + CHUNK_OVERLAP`), the bytes one replica holds in the four settings
float32 / bfloat16 x remat off / on (`dctformer_tf.plan.memory`), then the input side of
each config with an assumed length distribution (`dctformer_tf.plan.input_side`).

`--validate` builds small configs on the CPU and runs one train step of
`DCTransformerTrainer` per config, XLA-compiled and in graph mode, each in its own process; it
compares the step's peak memory (TensorFlow's CPU allocator statistics,
`get_memory_info('CPU:0')`, above the memory in use once the model, optimizer and batch exist)
with the plan's float32 prediction (docs/benchmarks.md, "Memory plan").
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dctformer_tf import plan  # noqa: E402
from dctformer_tf.train import gin_model  # noqa: E402

GIN = pathlib.Path(__file__).resolve().parents[1] / "gin"


def read_config(name: str, bindings: tuple = ()) -> dict:
    """The bindings of config NAME's gin files and `bindings` (gin lines), read without
    registering anything: the plan needs no TensorFlow (tools/accelerator_check.sh runs it
    on a GPU host that has none)."""
    try:
        return gin_model.read_bindings(plan.config_files(GIN, name), bindings)
    except FileNotFoundError as error:
        raise SystemExit(f"plan_run: {error}") from None


def load_models(names: list[str], bindings: tuple = ()) -> dict:
    """{name: (ModelSizes, bindings)} of each config, with its paper batch and its sequence
    buffer (the step is fed compact examples, as in training)."""
    loaded = {}
    for name in names:
        bound = read_config(name, bindings)
        loaded[name] = (plan.model_from_config(name, gin_model.config_from_bindings(bound),
                                          bound["train.batch_size"],
                                          bound["build_sequences.max_length"]), bound)
    return loaded


def input_plans(loaded: dict, steps_per_second: float, encode_ms_per_megapixel: float,
                measure: bool, encoder: str) -> dict:
    """The input side of every config whose dataset has assumed lengths."""
    # Imported here: the input side needs TensorFlow, which --predict hosts may lack.
    from dctformer_tf.plan import input_side

    if measure:
        from dctformer_tf.dct.encoders import choose_encoder

        cost = f"measured ({choose_encoder(encoder).name} encoder)"
    else:
        cost = f"{encode_ms_per_megapixel:g} ms/MP"
    result = {}
    for name, (_, bound) in loaded.items():
        assumed = plan.ASSUMED_LENGTHS.get(plan.data_file(GIN, name).stem)
        if assumed is None:
            continue
        run = gin_model.run_from_bindings(bound)
        encode_s = (input_side.measure_encode_seconds(run, encoder=encoder) if measure else
                    plan.modelled_encode_seconds(run.codec.resolution, encode_ms_per_megapixel))
        result[name] = input_side.input_plan(
            run, assumed, bound.get("build_chunks.l_max"),
            bound.get("build_chunks.examples_per_encode", 1), bound["train.batch_size"],
            steps_per_second, encode_s)
        result[name]["encode_cost"] = cost
    return result


# ----------------------------------------------------------------------------------------
# Printing.


def gib(value: float) -> str:
    return f"{value / plan.GIB:.2f}"


def setting_name(s: dict) -> str:
    name = "f32" if s["precision"] == "float32" else "bf16"
    return name + ("+remat" if s["remat"] else "")


def accumulation_text(s: dict) -> str:
    if s["accumulation_steps"] is None:
        return "does not fit at batch 1"
    if s["accumulation_steps"] == 1:
        return "-"
    return (f"{s['accumulation_steps']} steps of {s['micro_batch']} "
            f"({gib(s['bytes_at_micro_batch'])})")


def print_plans(models: list, accelerator: plan.Accelerator, headroom: float) -> None:
    print(f"{accelerator.name}: {accelerator.replicas} replicas x {accelerator.memory_gib:g} GiB"
          f"{' (' + accelerator.note + ')' if accelerator.note else ''}; a plan fits in "
          f"{gib(accelerator.budget_bytes(headroom))} GiB per replica (headroom "
          f"{headroom:.0%}). GiB per replica:")
    for m in models:
        config = plan.plan_config(m, accelerator, headroom)
        print(f"\n{m.name}: {m.parameters:,} parameters, paper batch {m.paper_batch} = "
              f"{config['settings'][0]['per_replica_batch']} per replica, window {m.window}")
        print(f"  {'setting':<11}{'params':>7}{'Adam':>7}{'grads':>7}{'casts':>7}{'activ.':>8}"
              f"{'total':>8}{'fits':>6}{'max batch':>11}  accumulation (GiB)")
        for s in config["settings"]:
            b = s["bytes"]
            print(f"  {setting_name(s):<11}{gib(b['parameters']):>7}{gib(b['optimizer']):>7}"
                  f"{gib(b['gradients']):>7}{gib(b['bfloat16 weight copies']):>7}"
                  f"{gib(b['activations']):>8}{gib(b['total']):>8}"
                  f"{'yes' if s['fits'] else 'no':>6}{s['largest_batch_per_replica']:>11}  "
                  f"{accumulation_text(s)}")


def cell(s: dict | None) -> str:
    if s is None:
        return "does not fit"
    steps = "" if s["accumulation_steps"] == 1 else f" x{s['accumulation_steps']}"
    return f"{setting_name(s)} {s['micro_batch']}{steps} ({gib(s['bytes_at_micro_batch'])})"


def print_smallest(models: list, headroom: float) -> None:
    order = plan.by_total_memory()
    print(f"Best setting per accelerator: setting, per-replica micro-batch, xN accumulation "
          f"steps, (GiB per replica); headroom {headroom:.0%}")
    print(f"{'config':<13}{'batch':>6}  " + "".join(f"{a.name:<30}" for a in order)
          + "smallest / without accumulation")
    for m in models:
        result = plan.smallest(m, headroom)
        cells = "".join(f"{cell(result['best'][a.name]):<30}" for a in order)
        print(f"{m.name:<13}{m.paper_batch:>6}  {cells}{result['smallest']} / "
              f"{result['smallest_without_accumulation']}")


def print_input_plans(inputs: dict) -> None:
    first = next(iter(inputs.values()))
    print()
    print(f"Input side at {first['steps_per_second']:g} steps/s of the paper batch; encoding "
          f"cost {first['encode_cost']}. Paper: one example per encode; this run: "
          "build_chunks.examples_per_encode (r).")
    print(f"{'config':<13}{'dense B/ex':>12}{'compact B/ex':>13}{'ratio':>7}{'mean L':>8}"
          f"{'keep':>6}{'r':>3}{'enc/ex':>14}{'CPU ms/ex':>14}{'host cores':>16}")
    for name, p in inputs.items():
        print(f"{name:<13}{p['dense_bytes']:>12,}{p['compact_bytes']:>13,}{p['ratio']:>7.3f}"
              f"{p['assumed_mean_length']:>8}{p['mean_keep_probability']:>6.2f}"
              f"{p['examples_per_encode']:>3}"
              f"{p['paper_encodes_per_example']:>7.2f}{p['this_run_encodes_per_example']:>7.2f}"
              f"{1e3 * p['paper_cpu_s_per_example']:>7.1f}"
              f"{1e3 * p['this_run_cpu_s_per_example']:>7.1f}"
              f"{p['paper_host_cores']:>8.1f}{p['this_run_host_cores']:>8.1f}")
    print("(enc/ex, CPU ms/ex, host cores: paper, then this run; encoding only, without "
          "reading and decoding the source images)")


# ----------------------------------------------------------------------------------------
# Validation against the CPU: small configs, one train step each, in its own process.

_SMALL = dict(block_size=8, clip=1200, num_heads=2, conv_kernel=4, conv_stride=2,
              encoder_spec=[(1, 2)], channel_spec=[(1, 2)], position_spec=[(1, 2)],
              value_spec=[(1, 2)])
# (ModelConfig fields, batch): a window of 1024 (attention scores dominate), also with the
# value decoder's grid attention bias; a deeper, Table-3-shaped stack with dropout
# (feed-forward and residual terms dominate); 32x32 blocks with a clip of 4000 (C = 3072
# channels, V = 8001 values: partial image and logits).
VALIDATION = {
    "window-1024": ({**_SMALL, "resolution": 64, "d_model": 128, "chunk_size": 896,
                     "chunk_overlap": 128}, 4),
    "window-1024-grid": ({**_SMALL, "resolution": 64, "d_model": 128, "chunk_size": 896,
                          "chunk_overlap": 128, "attention_bias": "grid_2d"}, 4),
    "deep-dropout": ({**_SMALL, "resolution": 128, "d_model": 192, "num_heads": 3,
                      "encoder_spec": [(1, 2), (1, 4)], "channel_spec": [(1, 2), (1, 4)],
                      "position_spec": [(1, 2), (1, 4)],
                      "value_spec": [(1, 2), (1, 2), (1, 7)], "chunk_size": 256,
                      "chunk_overlap": 64, "dropout": 0.1}, 8),
    "block-32": ({**_SMALL, "resolution": 512, "block_size": 32, "clip": 4000, "d_model": 96,
                  "chunk_size": 192, "chunk_overlap": 64}, 8),
}


def random_batch(config, batch: int) -> dict:
    """A dense train batch of the config's shapes and valid ids (random values)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    g, t, c = config.grid_size, config.window, 3 * config.block_size**2
    targets = np.stack([np.sort(rng.integers(0, c + 1, (batch, t)), axis=1),
                        rng.integers(0, g * g, (batch, t)),
                        rng.integers(0, 2 * config.clip + 1, (batch, t))], -1)
    mask = np.ones((batch, t), "float32")
    mask[:, :config.chunk_overlap] = 0.0  # the overlap carries no loss
    data = {"partial_image": rng.integers(-5, 6, (batch, g, g, c)), "inputs": targets,
            "targets": targets, "loss_mask": mask}
    return {k: tf.constant(v, tf.float32 if k == "loss_mask" else tf.int32)
            for k, v in data.items()}


def measure_step(config_kwargs: dict, batch: int, jit_compile: bool) -> dict:
    """Peak bytes the allocator hands out during one train step of `DCTransformerTrainer`,
    above what is in use before it (model, optimizer, batch, TF); the step is traced,
    compiled and run once before."""
    import keras
    import tensorflow as tf

    from dctformer_tf.model.configs import ModelConfig
    from dctformer_tf.train.trainer import DCTransformerTrainer

    config = ModelConfig(**config_kwargs)
    model = DCTransformerTrainer(**config.model_kwargs())
    model.build(config.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.optimizer.build(model.trainable_variables)
    data = random_batch(config, batch)
    step = tf.function(model.train_step, jit_compile=jit_compile)
    float(step(data)["loss"])
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    float(step(data)["loss"])
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return {"baseline_bytes": before, "step_peak_bytes": peak - before}


def validate() -> list[dict]:
    from dctformer_tf.model.configs import ModelConfig

    rows = []
    for name, (config_kwargs, batch) in VALIDATION.items():
        m = plan.model_from_config(name, ModelConfig(**config_kwargs))
        row = {"config": name, "batch": batch, "parameters": m.parameters,
               "predicted_bytes": plan.predicted_step(m, batch)}
        for mode in ("xla", "graph"):
            out = subprocess.run([sys.executable, __file__, "--child", name, mode],
                                 capture_output=True, text=True, check=True)
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            row[f"{mode}_bytes"] = measured["step_peak_bytes"]
            row[f"{mode}_ratio"] = row["predicted_bytes"] / measured["step_peak_bytes"]
        rows.append(row)
    return rows


def print_validation(rows: list[dict]) -> None:
    mib = 2**20
    print("float32, no remat; peak of one train step above the memory in use before it (MiB)")
    print(f"{'config':<14}{'batch':>6}{'params':>11}{'predicted':>11}{'XLA':>9}{'pred/XLA':>10}"
          f"{'graph':>9}{'pred/graph':>11}")
    for r in rows:
        print(f"{r['config']:<14}{r['batch']:>6}{r['parameters']:>11,}"
              f"{r['predicted_bytes'] / mib:>11.1f}{r['xla_bytes'] / mib:>9.1f}"
              f"{r['xla_ratio']:>10.3f}{r['graph_bytes'] / mib:>9.1f}{r['graph_ratio']:>11.3f}")


# ----------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=list(plan.TABLE3), metavar="NAME",
                        help=f"gin/models/NAME.gin files (default: {' '.join(plan.TABLE3)})")
    parser.add_argument("--accelerator", default="tpu-v3-32", choices=list(plan.ACCELERATORS),
                        help="a preset (default tpu-v3-32)")
    parser.add_argument("--replicas", type=int, help="replicas (cores, chips or GPUs); "
                        "with --memory-gib, instead of a preset")
    parser.add_argument("--memory-gib", type=float, help="memory per replica, GiB")
    parser.add_argument("--headroom", type=float, default=0.1,
                        help="fraction of each replica's memory left free (default 0.1)")
    parser.add_argument("--gin_bindings", action="append", metavar="BINDING",
                        help="a gin line applied after the run files, repeatable (e.g. "
                        "'architecture.attention_bias = \"grid_2d\"')")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--smallest", action="store_true",
                        help="the smallest listed accelerator and settings per config")
    parser.add_argument("--validate", action="store_true",
                        help="compare the activation model with measured CPU memory")
    parser.add_argument("--steps-per-second", type=float, default=1.0,
                        help="input side: train steps per second to feed (default 1)")
    parser.add_argument("--encode-ms-per-megapixel", type=float,
                        default=plan.ENCODE_CPU_MS_PER_MEGAPIXEL,
                        help="input side: encoder CPU ms per canvas megapixel "
                        f"(default {plan.ENCODE_CPU_MS_PER_MEGAPIXEL:g}, docs/benchmarks.md)")
    parser.add_argument("--measure-encode", action="store_true",
                        help="input side: measure the encoder on this host at every config's "
                        "geometry instead")
    parser.add_argument("--encoder", choices=("auto", "fused", "ops"), default="auto",
                        help="input side: the encoder --measure-encode times (default auto: "
                        "the fused kernel where it builds)")
    parser.add_argument("--predict", type=int, metavar="BATCH",
                        help="print (JSON) each config's per-replica bytes at this batch in "
                        "the four settings, and nothing else (what accelerator_check.sh "
                        "compares with the measured peak)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.predict is not None and args.predict < 1:
        parser.error("--predict must be a positive batch")
    if (args.replicas is None) != (args.memory_gib is None):
        parser.error("--replicas and --memory-gib go together")
    if args.replicas is not None and (args.replicas < 1 or args.memory_gib <= 0):
        parser.error("--replicas must be >= 1 and --memory-gib > 0")
    if not 0 <= args.headroom < 1:
        parser.error("--headroom must be in [0, 1)")
    if args.steps_per_second <= 0 or args.encode_ms_per_megapixel <= 0:
        parser.error("--steps-per-second and --encode-ms-per-megapixel must be > 0")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        name, mode = args.child
        config_kwargs, batch = VALIDATION[name]
        print(json.dumps(measure_step(config_kwargs, batch, jit_compile=mode == "xla")))
        return
    if args.validate:
        rows = validate()
        print(json.dumps(rows, indent=1) if args.json else "", end="")
        if not args.json:
            print_validation(rows)
        return
    accelerator = plan.ACCELERATORS[args.accelerator]
    if args.replicas is not None:
        accelerator = plan.Accelerator(f"{args.replicas}x{args.memory_gib:g}GiB", args.replicas,
                                  args.memory_gib)
    loaded = load_models(args.config, tuple(args.gin_bindings or ()))
    models = [m for m, _ in loaded.values()]
    if args.predict is not None:
        print(json.dumps(plan.predictions(models, args.predict), indent=1))
        return
    if args.smallest:
        print_smallest(models, args.headroom)
        return
    inputs = input_plans(loaded, args.steps_per_second, args.encode_ms_per_megapixel,
                         args.measure_encode, args.encoder)
    if args.json:
        result = plan.plans(models, accelerator, args.headroom)
        for name, side in inputs.items():
            result["configs"][name]["input"] = side
        print(json.dumps(result, indent=1))
        return
    print_plans(models, accelerator, args.headroom)
    if inputs:
        print_input_plans(inputs)


if __name__ == "__main__":
    main()
