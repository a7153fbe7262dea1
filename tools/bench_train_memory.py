"""Training memory and throughput, side by side: two canvas resolutions, or remat off/on.

Each configuration runs in its own process (peak memory is per process) and takes a few
graph-mode train steps (`DCTransformerTrainer.fit`, Adam) on random batches of the right
shapes. Two modes:

- resolutions (default). Chunking is what lets DCTransformer scale: the decoder window stays
  `chunk + overlap` long whatever the image size, so training memory should grow only with
  the partial image and the encoder tokens. The `small` model at R = 64 and at R = 256, same
  chunk size, batch and width; prints peak RSS, the growth of RSS over the training steps,
  tokens/s and the R = 256 / R = 64 ratios.
- `--remat`: a deep narrow model (D 64, 2 heads of 64, 12 blocks per decoder, window
  896 + 128) without and with `remat` (every residual block recomputed in the backward
  pass). Prints the peak of TensorFlow's CPU allocator over the train steps
  (`tf.config.experimental.get_memory_info("CPU:0")`: live tensors, activations included),
  peak RSS (which adds the runtime's own memory), tokens/s, and the remat / plain ratios.

Usage:
  python tools/bench_train_memory.py [--resolutions 64 256] [--steps 6]
  python tools/bench_train_memory.py --remat [--steps 3] [--batch 4] [--blocks 12]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MIB = 2**20


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def small_config(resolution: int, chunk: int, overlap: int, remat: bool = False) -> dict:
    """The `small` model at canvas side `resolution`."""
    return dict(resolution=resolution, block_size=8, clip=1200, d_model=128, num_heads=4,
                encoder_spec=[(1, 2)], channel_spec=[(1, 2)], position_spec=[(1, 2)],
                value_spec=[(1, 2), (1, 2)], conv_kernel=4, conv_stride=2, chunk_size=chunk,
                chunk_overlap=overlap, remat=remat)


def deep_narrow_config(blocks: int, remat: bool) -> dict:
    """D 64, 2 heads of 64, `blocks` (1, 1) blocks per decoder, window 896 + 128, R = 64."""
    return dict(resolution=64, block_size=8, clip=255, d_model=64, num_heads=2,
                encoder_spec=[(1, 1)] * 2, channel_spec=[(1, 1)] * blocks,
                position_spec=[(1, 1)] * blocks, value_spec=[(1, 1)] * blocks,
                conv_kernel=4, conv_stride=2, chunk_size=896, chunk_overlap=128, remat=remat)


def random_batches(config, batch: int):
    """A repeated dataset of one random training batch (model inputs plus `loss_mask`)."""
    import numpy as np
    import tensorflow as tf

    g, t, overlap = config.grid_size, config.window, config.chunk_overlap
    channels, values = 3 * config.block_size**2, 2 * config.clip + 1
    rng = np.random.default_rng(0)
    targets = np.stack([rng.integers(0, channels, (batch, t)), rng.integers(0, g * g, (batch, t)),
                        rng.integers(0, values, (batch, t))], -1).astype(np.int32)
    return tf.data.Dataset.from_tensors({
        "partial_image": rng.integers(-5, 6, (batch, g, g, channels)).astype(np.int32),
        "inputs": targets, "targets": targets,
        "loss_mask": np.concatenate([np.zeros((batch, overlap)), np.ones((batch, t - overlap))],
                                    1).astype(np.float32),
    }).repeat()


def child(config_kwargs: dict, steps: int, batch: int) -> dict:
    import keras
    import tensorflow as tf

    from dctformer_tf.model.configs import ModelConfig
    from dctformer_tf.train.trainer import DCTransformerTrainer

    config = ModelConfig(**config_kwargs)
    model = DCTransformerTrainer(**config.model_kwargs())
    model.build(config.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    data = random_batches(config, batch)
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)  # trace
    before = rss_mib()
    tf.config.experimental.reset_memory_stats("CPU:0")
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    allocator = tf.config.experimental.get_memory_info("CPU:0")
    return {"resolution": config.resolution, "remat": config.remat,
            "parameters": model.count_params(),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_steps_mib": before, "peak_tensors_mib": allocator["peak"] / MIB,
            "tokens_per_s": steps * batch * config.chunk_size / seconds}


def run_child(config_kwargs: dict, steps: int, batch: int) -> dict:
    spec = json.dumps({"config": config_kwargs, "steps": steps, "batch": batch})
    out = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare_resolutions(args):
    rows = [run_child(small_config(r, args.chunk, args.overlap), args.steps, args.batch)
            for r in args.resolutions]
    print(f"small model, chunk {args.chunk} + overlap {args.overlap}, batch {args.batch}, "
          f"{args.steps} graph-mode train steps")
    print(f"{'R':>5} {'params':>10} {'peak RSS MiB':>13} {'RSS before steps':>17} {'tokens/s':>9}")
    for r in rows:
        print(f"{r['resolution']:>5} {r['parameters']:>10,} {r['peak_rss_mib']:>13.0f} "
              f"{r['rss_before_steps_mib']:>17.0f} {r['tokens_per_s']:>9.0f}")
    first, last = rows[0], rows[-1]
    print(f"peak RSS ratio R={last['resolution']} / R={first['resolution']}: "
          f"{last['peak_rss_mib'] / first['peak_rss_mib']:.3f} (target <= 1.25); "
          f"tokens/s ratio {last['tokens_per_s'] / first['tokens_per_s']:.3f}")


def compare_remat(args):
    plain, remat = (run_child(deep_narrow_config(args.blocks, remat), args.steps, args.batch)
                    for remat in (False, True))
    print(f"deep narrow model (D 64, 2 heads, {args.blocks} blocks per decoder, window "
          f"896 + 128, {plain['parameters']:,} parameters), batch {args.batch}, "
          f"{args.steps} graph-mode train steps")
    print(f"{'remat':>6} {'peak tensors MiB':>17} {'peak RSS MiB':>13} {'RSS before steps':>17} "
          f"{'tokens/s':>9}")
    for r in (plain, remat):
        print(f"{str(r['remat']):>6} {r['peak_tensors_mib']:>17.0f} {r['peak_rss_mib']:>13.0f} "
              f"{r['rss_before_steps_mib']:>17.0f} {r['tokens_per_s']:>9.0f}")
    print(f"remat / plain: peak tensors {remat['peak_tensors_mib'] / plain['peak_tensors_mib']:.3f}"
          f" (target <= 0.5), peak RSS {remat['peak_rss_mib'] / plain['peak_rss_mib']:.3f}, "
          f"tokens/s {remat['tokens_per_s'] / plain['tokens_per_s']:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--remat", action="store_true",
                        help="compare remat off/on on a deep narrow model instead")
    parser.add_argument("--steps", type=int, default=None, help="default 6, or 3 with --remat")
    parser.add_argument("--batch", type=int, default=None, help="default 16, or 4 with --remat")
    parser.add_argument("--blocks", type=int, default=12, help="--remat: blocks per decoder")
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        spec = json.loads(args.child)
        print(json.dumps(child(spec["config"], spec["steps"], spec["batch"])))
        return
    if args.steps is None:
        args.steps = 3 if args.remat else 6
    if args.batch is None:
        args.batch = 4 if args.remat else 16
    (compare_remat if args.remat else compare_resolutions)(args)


if __name__ == "__main__":
    main()
