"""Codec throughput, side by side in one run: the tf.data sparse-sequence encoder (with the
fused kernel, and as TensorFlow ops), the numpy twins and Pillow's JPEG encoder at the same
quality, on the same images; plus sequence-length statistics per quality.

Images: 64x64 `shapes` (the embedded data) and 64x64 / 256x256 crops of the natural photos
that scikit-image ships (astronaut, coffee, chelsea, rocket, hubble_deep_field, retina).
All images are already canvas-sized, as after a source's resize.

Every contender encodes the same N images once per round; rounds interleave the contenders
and the table reports the median rate over rounds, so that load from other processes hits
all of them alike. tf.data is timed in steady state (an iterator already running, as in
training), with its default parallelism; Pillow and numpy run on one thread.

Columns: img/s of each contender (tf.data with the fused kernel, tf.data with the
TensorFlow-ops encoder, the fused kernel alone on batches of 32 already in memory, the numpy
fast twin, the float64 numpy reference, Pillow), ratios to
Pillow, and process CPU µs per image of tf.data (fused, all its threads), of the kernel alone
and of Pillow: tf.data's against Pillow's is the per-core comparison, tf.data's less the
kernel's what the pipeline around the kernel costs.

Usage: python tools/bench_codec.py [--num 512] [--qualities 50 75 90] [--rounds 5]
       [--sets shapes64 photo64 photo256]
"""

import argparse
import io
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One BLAS thread, as Pillow has: the numpy rates are per core.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from dctformer_tf.data.photos import photo_crops  # noqa: E402
from dctformer_tf.data.pipeline import encode_dataset  # noqa: E402
from dctformer_tf.data.shapes import shapes_arrays  # noqa: E402
from dctformer_tf.dct import SparseCodec, fused_op, np_fast  # noqa: E402

SETS = {
    "shapes64": lambda num: shapes_arrays("test", num)[0],
    "photo64": lambda num: photo_crops(64, num),
    "photo256": lambda num: photo_crops(256, num),
}


def contenders(images: np.ndarray, codec: SparseCodec, max_length: int, args) -> dict:
    """name -> fn() that encodes all `images` once (and may return its own (wall, CPU)
    seconds)."""
    num = len(images)
    source = tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": np.zeros(num, np.int32)}).repeat()

    def tf_data(encoder: str):
        pipeline = encode_dataset(source, codec, max_length, encoder=encoder,
                                  encode_batch_size=args.encode_batch)
        pipeline = pipeline.batch(args.batch).prefetch(tf.data.AUTOTUNE)

        def run():
            # A fresh iterator each round, run until its buffers have drained (the loop
            # consumes faster than the encoder produces), so that no batch made while other
            # contenders were timed is counted; only the steady-state batches are timed.
            iterator = iter(pipeline)
            for _ in range(max(4, num // args.batch // 2)):
                next(iterator)
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(num // args.batch):
                next(iterator)
            return time.perf_counter() - start, time.process_time() - cpu

        return run

    batches = [tf.constant(images[i : i + args.batch]) for i in range(0, num, args.batch)]

    def run_kernel():
        for batch in batches:
            fused_op.encode_canvas(batch, codec, max_length)[1].numpy()

    def run_numpy():
        for i in range(0, num, args.batch):
            np_fast.encode_canvas(images[i : i + args.batch], codec)

    def run_pillow():
        for im in images:
            Image.fromarray(im).save(io.BytesIO(), "JPEG", quality=codec.quality, subsampling=2)

    runs = {"tf": tf_data("fused"), "ops": tf_data("ops"), "kernel": run_kernel,
            "numpy": run_numpy, "pillow": run_pillow}
    if not fused_op.available():  # the columns of the fused kernel read nan
        del runs["tf"], runs["kernel"]
    for name in ("tf", "ops", "kernel"):  # start the pipelines, compile
        if name in runs:
            runs[name]()
    return runs


def bench(images: np.ndarray, quality: int, args) -> dict:
    size = images.shape[1]
    codec = SparseCodec(quality=quality, resolution=size)
    lengths = np.array([len(t) for t in np_fast.encode_canvas(images, codec)])
    runs = contenders(images, codec, int(lengths.max()), args)
    rates = {name: [] for name in runs}
    cpu = {"tf": [], "kernel": [], "pillow": []}  # process CPU seconds per image
    for _ in range(args.rounds):
        for name, fn in runs.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            timing = fn()
            if timing is None:
                timing = (time.perf_counter() - start, time.process_time() - cpu_start)
            timed = name in ("tf", "ops")
            num = len(images) // args.batch * args.batch if timed else len(images)
            rates[name].append(num / timing[0])
            if name in cpu:
                cpu[name].append(timing[1] / num)
    reference = images[: args.reference_num]
    start = time.perf_counter()
    for im in reference:
        codec.encode(im)
    result = {name: float(np.median(r)) if r else np.nan
              for name, r in {"tf": [], "kernel": [], **rates}.items()}
    result.update({f"{name} cpu": float(np.median(c)) if c else np.nan
                   for name, c in cpu.items()})
    result["reference"] = len(reference) / (time.perf_counter() - start)
    result["lengths"] = lengths
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=512, help="images per set")
    parser.add_argument("--qualities", type=int, nargs="+", default=[50, 75, 90])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--batch", type=int, default=32, help="images per consumer batch")
    parser.add_argument("--encode-batch", type=int, default=None,
                        help="images per encode call (default: encode_dataset's)")
    parser.add_argument("--reference-num", type=int, default=32,
                        help="images through the float64 numpy reference (slow)")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS),
                        help="image sets to run")
    args = parser.parse_args()
    if not fused_op.available():
        print(f"the fused kernel is unavailable, its columns read nan: "
              f"{fused_op.unavailable_reason()}")
    sets = {name: SETS[name](args.num) for name in args.sets}
    print(f"tf {tf.__version__}, {os.cpu_count()} CPU cores, {args.num} images per set, "
          f"{args.rounds} rounds, consumer batch {args.batch}, "
          f"encode batch {args.encode_batch or 'auto'}")
    print(f"{'images':<10} {'q':>3} {'tf.data':>8} {'tf ops':>7} {'kernel':>7} "
          f"{'numpy':>7} {'np ref':>7} {'Pillow':>7} {'tf/Pil':>7} {'ops/Pil':>8} "
          f"{'np/Pil':>7} {'tf cpu':>7} {'ker cpu':>8} {'Pil cpu':>8} "
          f"{'len mean':>9} {'p50':>7} {'p95':>7} {'max':>7}")
    for name, images in sets.items():
        for quality in args.qualities:
            r = bench(images, quality, args)
            lengths, pillow = r["lengths"], r["pillow"]
            print(f"{name:<10} {quality:>3} {r['tf']:>8.0f} {r['ops']:>7.0f} "
                  f"{r['kernel']:>7.0f} "
                  f"{r['numpy']:>7.0f} {r['reference']:>7.0f} {pillow:>7.0f} "
                  f"{r['tf'] / pillow:>7.2f} {r['ops'] / pillow:>8.2f} "
                  f"{r['numpy'] / pillow:>7.2f} "
                  f"{1e6 * r['tf cpu']:>7.0f} {1e6 * r['kernel cpu']:>8.0f} "
                  f"{1e6 * r['pillow cpu']:>8.0f} "
                  f"{lengths.mean():>9.0f} {np.percentile(lengths, 50):>7.0f} "
                  f"{np.percentile(lengths, 95):>7.0f} {lengths.max():>7d}", flush=True)


if __name__ == "__main__":
    main()
