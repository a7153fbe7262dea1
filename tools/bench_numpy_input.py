"""Compact training batches per second: the numpy input path (`data.numpy_input`) against the
tf.data one (`chunk_dataset` over `encode_dataset`), side by side in one run
(docs/design.md §2.5).

Both make batches of the `shapes` train split at the settings of the CPU demo
(gin/models/small.gin, gin/data/shapes.gin, gin/runs/quickstart.gin: 64², S = 8, q75,
CLIP 255, chunks 128 + 32, max_length 4096, p_min 1, batch 16, shuffle buffer 2048), every
image encoded (no cache). After a first batch (warm-up, shuffle buffer filled) each path
makes `--batches` more; the table gives examples per wall second and per CPU second of this
process (all its threads), i.e. per core. Rows with `--workers N` run the numpy path in N
worker processes, whose CPU time is not this process's: wall rate only.

Usage: python tools/bench_numpy_input.py [--batches 200] [--resolution 64] [--workers 2]
"""

import argparse
import itertools
import os
import time

# One BLAS thread, as each worker process gets: the rates are per core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dctformer_tf.data import chunking  # noqa: E402
from dctformer_tf.data.numpy_input import NumpyChunkBatches  # noqa: E402
from dctformer_tf.data.pipeline import encode_dataset  # noqa: E402
from dctformer_tf.data.sources import get_source  # noqa: E402
from dctformer_tf.dct import SparseCodec  # noqa: E402


def timed(batches, count: int) -> dict:
    """Wall and process CPU seconds of `count` batches after the first."""
    stream = iter(batches)
    first = next(stream)
    size = len(first["chunk_index"])
    start, cpu = time.perf_counter(), time.process_time()
    for _ in itertools.islice(stream, count):
        pass
    return {"examples": count * size, "wall": time.perf_counter() - start,
            "cpu": time.process_time() - cpu}


def tf_batches(codec, args, seed: int):
    source, _ = get_source("shapes", split="train", num_examples=args.num_images,
                           size=args.resolution)
    sequences = encode_dataset(source, codec, args.max_length)
    return chunking.chunk_dataset(sequences.repeat(), codec, args.chunk_size, args.overlap,
                                  args.batch_size, seed, p_min=args.p_min,
                                  shuffle_buffer=args.shuffle_buffer).as_numpy_iterator()


def numpy_batches(codec, args, seed: int, workers: int):
    return NumpyChunkBatches(codec, args.chunk_size, args.overlap, args.max_length,
                             args.batch_size, seed, num_examples=args.num_images,
                             image_size=args.resolution, p_min=args.p_min,
                             shuffle_buffer=args.shuffle_buffer, workers=workers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--resolution", type=int, default=64,
                        help="canvas side R; the shapes images are rendered at R too")
    parser.add_argument("--max_length", type=int, default=None,
                        help="default: 4096 at 64², scaled with the side (shapes sequences "
                        "grow about as the side: median 634, 1686, 4525 at 64, 128, 256)")
    parser.add_argument("--num_images", type=int, default=4000)
    parser.add_argument("--workers", type=int, nargs="*", default=[],
                        help="also run the numpy path with these worker counts")
    parser.add_argument("--quality", type=int, default=75)
    parser.add_argument("--clip", type=int, default=255)
    parser.add_argument("--chunk_size", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--p_min", type=float, default=1.0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--shuffle_buffer", type=int, default=2048)
    args = parser.parse_args()
    if args.max_length is None:
        args.max_length = 4096 * args.resolution // 64
    codec = SparseCodec(quality=args.quality, clip=args.clip, resolution=args.resolution)

    print(f"Shapes {args.resolution}², q{args.quality}, chunks {args.chunk_size} + "
          f"{args.overlap}, max_length {args.max_length}, batch {args.batch_size}, "
          f"{args.batches} batches after the first; {os.cpu_count()} CPUs")
    rows = [("numpy, in process", 0, timed(numpy_batches(codec, args, 0, 0), args.batches)),
            ("tf.data", None, timed(tf_batches(codec, args, 0), args.batches))]
    for workers in args.workers:
        result = timed(numpy_batches(codec, args, 0, workers), args.batches)
        rows.append((f"numpy, workers={workers}", workers, result))

    print(f"{'path':<20} {'examples':>8} {'wall s':>7} {'ex/s':>7} {'CPU s':>7} {'ex/CPU s':>9}")
    for name, workers, r in rows:
        per_cpu = f"{r['examples'] / r['cpu']:9.0f}" if not workers else f"{'-':>9}"
        cpu = f"{r['cpu']:7.2f}" if not workers else f"{'-':>7}"
        print(f"{name:<20} {r['examples']:>8} {r['wall']:7.2f} "
              f"{r['examples'] / r['wall']:7.0f} {cpu} {per_cpu}")
    numpy_rate, tf_rate = (r["examples"] / r["cpu"] for _, _, r in rows[:2])
    print(f"numpy / tf.data, examples per CPU second: {numpy_rate / tf_rate:.2f}")


if __name__ == "__main__":
    main()
