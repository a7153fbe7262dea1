"""Train steps per second at 1 and at N steps per execution (`train.steps_per_execution`).

Each call of Keras' compiled train function returns to the host, which runs the callbacks
and waits on the device: with N steps per execution that happens once per N steps. The
`tiny` model (gin/models/tiny.gin) on CPU shows the host's share of a small step; on a TPU
the share is larger. Both settings train the same model on the same cached batches, in
alternating rounds of one process, and the medians are compared.

Usage: python tools/bench_steps_per_execution.py [--model gin/models/tiny.gin] [--steps 256]
           [--many 32] [--rounds 3] [--batch 8]
"""

import argparse
import os
import pathlib
import statistics
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gin  # noqa: E402
import keras  # noqa: E402

from dctformer_tf.data.chunking import chunk_dataset  # noqa: E402
from dctformer_tf.data.pipeline import encode_dataset  # noqa: E402
from dctformer_tf.data.sources import get_source  # noqa: E402
from dctformer_tf.train.experiment import build_run_settings  # noqa: E402
from dctformer_tf.train.trainer import DCTransformerTrainer  # noqa: E402


def batches(model_file: str, batch: int, count: int):
    """`count` real training batches of the `shapes` data, cached, repeated forever."""
    gin.parse_config_files_and_bindings(
        [model_file, str(ROOT / "gin/data/shapes.gin"), str(ROOT / "gin/runs/train.gin")],
        ["train.model_dir = '/tmp/unused'"])
    run, _ = build_run_settings()
    codec = run.codec
    images, _ = get_source("shapes", "train", num_examples=64, size=run.codec.resolution)
    sequences = encode_dataset(images, codec, run.max_length).cache()
    data = chunk_dataset(sequences.repeat(), codec, run.chunking.chunk_size,
                         run.chunking.overlap, batch, seed=0).take(count).cache()
    return run, data.repeat()


def steps_per_second(run, data, steps_per_execution: int, steps: int) -> float:
    config = run.model
    keras.utils.set_random_seed(0)
    model = DCTransformerTrainer(**config.model_kwargs())
    model.build(config.input_shapes())
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  steps_per_execution=steps_per_execution)
    model.fit(data, steps_per_epoch=steps_per_execution * 2, epochs=1, verbose=0)  # trace
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "gin/models/tiny.gin"))
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--many", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    if args.steps % args.many:
        parser.error(f"--steps {args.steps} is not a multiple of --many {args.many}")
    run, data = batches(args.model, args.batch, count=16)
    print(f"model {pathlib.Path(args.model).stem}: window {run.model.window}, "
          f"batch {args.batch}, {args.steps} steps per measurement, {args.rounds} rounds")
    results = {1: [], args.many: []}
    for _ in range(args.rounds):
        for k in results:
            results[k].append(steps_per_second(run, data, k, args.steps))
    one, many = (statistics.median(results[k]) for k in (1, args.many))
    print(f"{'steps_per_execution':>20} {'steps/s (median)':>18}   rounds")
    for k, values in results.items():
        print(f"{k:>20} {statistics.median(values):>18.1f}   "
              + " ".join(f"{v:.1f}" for v in values))
    print(f"speed-up {args.many} vs 1: {many / one:.2f}x")


if __name__ == "__main__":
    main()
