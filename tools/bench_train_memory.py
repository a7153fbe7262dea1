"""Training memory and throughput at two canvas resolutions with the same chunk size.

Chunking is what lets DCTransformer scale: the decoder window stays `chunk + overlap` long
whatever the image size, so training memory should grow only with the partial image and the
encoder tokens. Each resolution runs in its own process (peak RSS is per process): the
`small` model at R = 64 and at R = 256, same chunk size, batch and width, a few graph-mode
train steps on random batches of the right shapes. Prints peak RSS, the growth of RSS over
the training steps, tokens/s, and the R = 256 / R = 64 ratios.

Usage: python tools/bench_train_memory.py [--resolutions 64 256] [--steps 6]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(resolution: int, steps: int, batch: int, chunk: int, overlap: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from dctformer_tf.model.configs import ModelConfig
    from dctformer_tf.train.trainer import DCTransformerTrainer

    config = ModelConfig(resolution=resolution, block_size=8, clip=1200, d_model=128,
                         num_heads=4, encoder_spec=[(1, 2)], channel_spec=[(1, 2)],
                         position_spec=[(1, 2)], value_spec=[(1, 2), (1, 2)], conv_kernel=4,
                         conv_stride=2, chunk_size=chunk, chunk_overlap=overlap)
    model = DCTransformerTrainer(**config.model_kwargs())
    model.build(config.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    g, t = config.grid_size, config.window
    rng = np.random.default_rng(0)
    targets = np.stack([rng.integers(0, 192, (batch, t)), rng.integers(0, g * g, (batch, t)),
                        rng.integers(0, 2401, (batch, t))], -1).astype(np.int32)
    data = tf.data.Dataset.from_tensors({
        "partial_image": rng.integers(-5, 6, (batch, g, g, 192)).astype(np.int32),
        "inputs": targets, "targets": targets,
        "loss_mask": np.concatenate([np.zeros((batch, overlap)), np.ones((batch, chunk))],
                                    1).astype(np.float32),
    }).repeat()
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)  # trace
    before = rss_mib()
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"resolution": resolution, "parameters": model.count_params(),
            "peak_rss_mib": peak, "rss_before_steps_mib": before,
            "tokens_per_s": steps * batch * chunk / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.steps, args.batch, args.chunk, args.overlap)))
        return
    rows = []
    for resolution in args.resolutions:
        out = subprocess.run([sys.executable, __file__, "--child", str(resolution), "--steps",
                              str(args.steps), "--batch", str(args.batch), "--chunk",
                              str(args.chunk), "--overlap", str(args.overlap)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
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


if __name__ == "__main__":
    main()
