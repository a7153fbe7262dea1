"""Run the fused encoder kernel under AddressSanitizer: every out-of-bounds read or write, or
use after free, in `dctformer_tf/dct/sparse_dct_op.cc` aborts with a report.

Builds the kernel with `-fsanitize=address` into a temporary cache, re-runs this script with
libasan preloaded (TensorFlow itself is not instrumented), then encodes the fast-encoder
encoder tests' codecs (S = 8, 16, 32; dequantized values; clipping) on photos and noise,
flat and saturated images at buffer
lengths from 1 to past the longest sequence, plus odd canvases, and checks each output
against the numpy fast twin. Run it after any change to the kernel.

Usage: python tools/asan_fused_op.py [--plain]     (--plain: without AVX2, the plain loops)
"""

import argparse
import os
import subprocess
import sys
import tempfile

CHILD = "DCTFORMER_ASAN_CHILD"
CODECS = [dict(quality=75), dict(quality=50), dict(quality=90), dict(quality=100),
          dict(block_size=16, quality=35, clip=3200),
          dict(block_size=32, quality=90, clip=4000, order="luma_first",
               value_encoding="dequantized"),
          dict(quality=10, clip=20)]


def parent(args) -> int:
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    if not os.path.isabs(libasan):
        print("libasan not found (gcc -print-file-name=libasan.so)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, CHILD: "1", "LD_PRELOAD": libasan,
               "ASAN_OPTIONS": "detect_leaks=0", "DCTFORMER_OP_CACHE": cache,
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        return subprocess.run([sys.executable, __file__, *sys.argv[1:]], env=env).returncode


def child(args) -> int:
    import numpy as np
    import tensorflow as tf

    from dctformer_tf.data.photos import photo_crops
    from dctformer_tf.dct import SparseCodec, fused_op, np_fast

    def images_for(codec, rng):
        """Photos, noise, flat and saturated images: uint8 [N, size, size, 3]."""
        size = max(64, 4 * codec.block_size)
        flat = np.full((size, size, 3), 131, np.uint8)
        saturated = np.where(rng.random((size, size, 1)) < 0.5, 0, 255).astype(np.uint8)
        noise = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
        return np.concatenate([photo_crops(size, 6, seed=codec.block_size),
                               np.stack([noise, flat, np.repeat(saturated, 3, axis=2)])])

    vector = [] if args.plain else fused_op.cpu_flags()
    fused_op.cpu_flags = lambda: vector + ["-fsanitize=address", "-fno-omit-frame-pointer"]
    rng = np.random.default_rng(1)
    cases = []
    for kwargs in CODECS:  # the fast encoder's codecs: S = 8, 16, 32, dequantized, clipping
        codec = SparseCodec(**kwargs)
        images = images_for(codec, rng)
        longest = max(len(s) for s in np_fast.encode_canvas(images, codec))
        cases += [(codec, images, n) for n in (1, 2, longest // 2, longest - 1, longest,
                                               longest + 7)]
    noise = np.random.default_rng(2)
    for shape in ((1, 48, 80), (3, 16, 16), (2, 256, 256)):
        cases.append((SparseCodec(quality=90), noise.integers(0, 256, shape + (3,))
                      .astype(np.uint8), 5000))
    for codec, images, max_length in cases:
        got = fused_op.encode_canvas(tf.constant(images), codec, max_length)
        want = np_fast.encode_canvas(images, codec, max_length)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    print(f"{len(cases)} cases equal the numpy twin under AddressSanitizer "
          f"({'plain loops' if args.plain else 'AVX2' if vector else 'no AVX2 on this CPU'}); "
          f"kernel {fused_op.build()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true", help="build without AVX2")
    args = parser.parse_args()
    return child(args) if os.environ.get(CHILD) else parent(args)


if __name__ == "__main__":
    sys.exit(main())
