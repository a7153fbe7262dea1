"""Run the fused encoder kernel under AddressSanitizer: every out-of-bounds read or write, or
use after free, in `dctformer_tf/dct/sparse_dct_op.cc` aborts with a report.

Builds the kernel with `-fsanitize=address` (`DCTFORMER_OP_FLAGS`) into a temporary cache and
runs the fused kernel's tests (`tests/dct/test_fast.py -k fused`: every codec of the fast
encoder's tests, S = 8, 16, 32, dequantized values, clipping, the cut at max_length, 256²
photos) with libasan preloaded (TensorFlow itself is not instrumented). Each test checks the
kernel's output against the reference. Run it after any change to the kernel.

Usage: python tools/asan_fused_op.py [--plain]     (--plain: without AVX2, the plain loops)
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

from dctformer_tf.dct import fused_op

ROOT = pathlib.Path(__file__).resolve().parents[1]
SANITIZE = ["-fsanitize=address", "-fno-omit-frame-pointer"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true", help="build without AVX2")
    args = parser.parse_args()
    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    if not os.path.isabs(libasan):
        print("libasan not found (gcc -print-file-name=libasan.so)", file=sys.stderr)
        return 1
    vector = [] if args.plain else fused_op.cpu_flags()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LD_PRELOAD": libasan, "ASAN_OPTIONS": "detect_leaks=0",
               "DCTFORMER_OP_CACHE": cache, "DCTFORMER_OP_FLAGS": " ".join(vector + SANITIZE),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
                                 "tests/dct/test_fast.py", "-k", "fused"], env=env, cwd=ROOT)
    print(f"fused kernel tests under AddressSanitizer "
          f"({'plain loops' if not vector else 'AVX2'}): "
          f"{'passed' if result.returncode == 0 else 'FAILED'}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
