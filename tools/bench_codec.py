"""Codec throughput, side by side in one run: the tf.data sparse-sequence encoder, its numpy
twin and Pillow's JPEG encoder at the same quality, on the same images; plus sequence-length
statistics per quality.

Images: 64x64 `shapes` (the embedded data) and 64x64 / 256x256 crops of the natural photos
that scikit-image ships (astronaut, coffee, chelsea, rocket, hubble_deep_field, retina), tiled to N.

Usage: python tools/bench_codec.py [--num 512] [--qualities 50 75 90]
"""

import argparse
import io
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

from dctformer_tf.data.pipeline import encode_dataset  # noqa: E402
from dctformer_tf.data.shapes import shapes_arrays  # noqa: E402
from dctformer_tf.dct import SparseCodec  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")


def natural_crops(size: int, num: int, seed: int = 0) -> np.ndarray:
    """uint8 [num, size, size, 3] random crops of the scikit-image photos."""
    rng = np.random.default_rng(seed)
    photos = [np.asarray(getattr(skdata, name)())[..., :3] for name in PHOTOS]
    crops = []
    for i in range(num):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - size + 1)
        left = rng.integers(0, photo.shape[1] - size + 1)
        crops.append(photo[top : top + size, left : left + size])
    return np.stack(crops)


def rate(fn, num: int, repeats: int = 3) -> float:
    """Best images/s over `repeats` runs of fn() that processes `num` images."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return num / best


def bench(images: np.ndarray, quality: int, batch: int) -> dict:
    size = images.shape[1]
    codec = SparseCodec(quality=quality, resolution=size)
    lengths = np.array([len(codec.encode(im)) for im in images])
    max_length = int(lengths.max())
    source = tf.data.Dataset.from_tensor_slices({"image": images,
                                                 "label": np.zeros(len(images), np.int32)})
    dataset = encode_dataset(source, codec, max_length, encode_batch_size=batch)
    dataset = dataset.batch(batch).prefetch(tf.data.AUTOTUNE)

    def run_tf():
        for _ in dataset:
            pass

    def run_numpy():
        for im in images:
            codec.encode(im)

    def run_pillow():
        for im in images:
            Image.fromarray(im).save(io.BytesIO(), "JPEG", quality=quality, subsampling=2)

    run_tf()  # trace and warm up
    return {
        "tf": rate(run_tf, len(images)),
        "numpy": rate(run_numpy, len(images), repeats=1),
        "pillow": rate(run_pillow, len(images)),
        "lengths": lengths,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=512, help="images per set")
    parser.add_argument("--qualities", type=int, nargs="+", default=[50, 75, 90])
    parser.add_argument("--batch", type=int, default=8, help="images per vectorized encode")
    args = parser.parse_args()
    sets = {
        "shapes 64": shapes_arrays("test", args.num)[0],
        "photo 64": natural_crops(64, args.num),
        "photo 256": natural_crops(256, args.num),
    }
    print(f"tf {tf.__version__}, {os.cpu_count()} CPU cores, {args.num} images per set, "
          f"encode batch {args.batch}")
    header = (f"{'images':<10} {'q':>3} {'tf.data img/s':>14} {'numpy img/s':>12} "
              f"{'Pillow img/s':>13} {'tf/Pillow':>10} {'numpy/Pillow':>13} "
              f"{'len mean':>9} {'p50':>7} {'p95':>7} {'max':>7}")
    print(header)
    for name, images in sets.items():
        for quality in args.qualities:
            r = bench(images, quality, args.batch)
            lengths = r["lengths"]
            print(f"{name:<10} {quality:>3} {r['tf']:>14.0f} {r['numpy']:>12.0f} "
                  f"{r['pillow']:>13.0f} {r['tf'] / r['pillow']:>10.2f} "
                  f"{r['numpy'] / r['pillow']:>13.2f} {lengths.mean():>9.0f} "
                  f"{np.percentile(lengths, 50):>7.0f} {np.percentile(lengths, 95):>7.0f} "
                  f"{lengths.max():>7d}")


if __name__ == "__main__":
    main()
