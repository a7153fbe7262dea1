"""Train-step throughput of the `small` model in eager, graph, XLA and bfloat16 (graph or XLA) modes,
and its model FLOPs utilisation (MFU) against a dense matmul peak measured in the same run.

    python tools/bench_model.py [--config gin/models/small.gin] [--batch 16] [--steps 5]

Tokens are loss-bearing target elements (`batch * chunk_size` per step; the overlap carries no
loss), as in docs/design.md §2. Model FLOPs per train step are counted analytically: 3x the forward
matmul FLOPs (every dense/conv layer, the attention score and mixing products in full, the
three output heads), the usual forward + 2x backward rule. MFU = model FLOP/s divided by the
FLOP/s of a large square float32 (or bfloat16) matmul timed with tf.function here.
"""

import argparse
import dataclasses
import os
import pathlib
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dctformer_tf.model.configs import build_model  # noqa: E402
from dctformer_tf.model.flops import train_step_flops  # noqa: E402
from dctformer_tf.train.experiment import gin_model_config  # noqa: E402

GIN_SMALL = pathlib.Path(__file__).resolve().parents[1] / "gin" / "models" / "small.gin"

TRAIN_GIN = pathlib.Path(__file__).resolve().parents[1] / "gin" / "runs" / "train.gin"


def random_batch(model, batch_size, chunk_size, seed=0):
    rng = np.random.default_rng(seed)
    t = model.window
    targets = np.stack(
        [
            np.sort(rng.integers(0, model.num_channels + 1, (batch_size, t)), axis=1),
            rng.integers(0, model.num_positions, (batch_size, t)),
            rng.integers(0, model.num_values, (batch_size, t)),
        ],
        axis=-1,
    ).astype("int32")
    inputs = np.concatenate(
        [
            np.broadcast_to(np.array(model.start_triple(), "int32"), (batch_size, 1, 3)),
            targets[:, :-1],
        ],
        axis=1,
    )
    g = model.grid_size
    image = rng.integers(-20, 21, (batch_size, g, g, model.num_channels)).astype("int32")
    mask = np.zeros((batch_size, t), "float32")
    mask[:, t - chunk_size :] = 1.0  # the overlap carries no loss
    x = {"partial_image": image, "inputs": inputs, "targets": targets}
    return {k: tf.constant(v) for k, v in x.items()}, tf.constant(mask)


def make_train_step(model, optimizer):
    heads = (("channel_logits", 0), ("position_logits", 1), ("value_logits", 2))

    def train_step(x, mask):
        with tf.GradientTape() as tape:
            outputs = model(x, training=True)
            loss = 0.0
            for name, field in heads:
                ce = keras.losses.sparse_categorical_crossentropy(
                    x["targets"][..., field], outputs[name], from_logits=True
                )
                loss += tf.reduce_sum(ce * mask) / tf.reduce_sum(mask)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return train_step


def time_steps(step, args, steps, warmup):
    """Median seconds per call of `step(*args)` after `warmup` calls (the median resists
    other processes sharing the CPU)."""
    for _ in range(warmup):
        float(step(*args))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(step(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


MODES = ("eager", "graph", "XLA", "bf16 graph", "bf16 XLA")


def matmul_peak(dtype, size=2048, steps=15):
    """FLOP/s of a `size`-square matmul in `dtype` under tf.function."""
    a = tf.cast(tf.random.normal((size, size)), dtype)
    matmul = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    return 2 * size**3 / time_steps(matmul, (a,), steps, warmup=2)


def run_mode(mode, args, gin_file):
    if mode not in MODES:
        raise SystemExit(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    policy = "mixed_bfloat16" if mode.startswith("bf16") else "float32"
    keras.config.set_dtype_policy(policy)
    gin.clear_config()
    # train.gin binds the codec and chunking; its run-only train.model_dir gets a dummy.
    gin.parse_config_files_and_bindings([gin_file, str(TRAIN_GIN)], ["train.model_dir = ''"])
    chunk_size = gin.query_parameter("%CHUNK_SIZE")
    model = build_model(**dataclasses.asdict(gin_model_config()))
    optimizer = keras.optimizers.Adam(5e-4)
    optimizer.build(model.trainable_variables)
    x, mask = random_batch(model, args.batch, chunk_size)
    step = make_train_step(model, optimizer)
    if mode != "eager":
        step = tf.function(step, jit_compile=mode.endswith("XLA"))
    steps = max(1, args.steps // 2) if mode == "eager" else args.steps
    seconds = time_steps(step, (x, mask), steps, warmup=1 if mode == "eager" else 2)
    flops = train_step_flops(model.get_config(), args.batch)
    keras.config.set_dtype_policy("float32")
    return seconds, args.batch * chunk_size, flops, model.count_params()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(GIN_SMALL))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--modes", default="eager,graph,XLA,bf16 graph")
    args = parser.parse_args()

    print(f"TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs")
    # The CPU may be shared: the peak is re-measured before every mode and the best value
    # seen is used, which can only lower the reported MFU.
    peaks = {"float32": 0.0, "bfloat16": 0.0}

    def measure_peaks():
        for dtype in peaks:
            peaks[dtype] = max(peaks[dtype], matmul_peak(tf.as_dtype(dtype)))

    measured = {}
    for mode in args.modes.split(","):
        measure_peaks()
        measured[mode] = run_mode(mode, args, args.config)
    measure_peaks()
    for dtype, peak in peaks.items():
        print(f"matmul peak {dtype}: {peak / 1e9:.1f} GFLOP/s (2048x2048, tf.function, best seen)")

    for mode, (seconds, tokens, flops, _) in measured.items():
        achieved = flops / seconds
        line = (
            f"{mode:<11} {seconds * 1e3:8.1f} ms/step {tokens / seconds:9.0f} tokens/s "
            f"{achieved / 1e9:7.1f} GFLOP/s  MFU {achieved / peaks['float32']:6.1%} of f32 peak"
        )
        if mode.startswith("bf16"):
            line += f", {achieved / peaks['bfloat16']:6.1%} of bf16 peak"
        print(line)
    params = next(iter(measured.values()))[3]
    print(
        f"model: {params:,} parameters, {flops / 1e9:.1f} GFLOP per train step, batch {args.batch}"
    )
    if "graph" in measured:
        graph = measured["graph"][0]
        ratios = ", ".join(f"{m} {graph / v[0]:.2f}x" for m, v in measured.items())
        print(f"tokens/s relative to graph: {ratios}")


if __name__ == "__main__":
    main()
