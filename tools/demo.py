"""`make demo`: the main job on the embedded `shapes` data.

Stage 1 (codec): writes a few `shapes` test images, runs `dctformer show` on each (the
progressive-decoding strip of paper Figure 2, sequence length, JPEG bits/pixel) and a
round trip `encode` -> `decode`. Later stages (train, evaluate, sample) build on this.

Usage: python tools/demo.py --out outputs/demo
"""

import argparse
import os
import sys

import numpy as np
from PIL import Image

from dctformer_tf.cli.main import main as dctformer
from dctformer_tf.data.shapes import SHAPE_CLASSES, shapes_arrays


def codec_stage(out: str, num_images: int = 3) -> None:
    print("== Codec: progressive decoding of shapes test images ==")
    images, labels = shapes_arrays("test", num_images)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = os.path.join(out, f"shapes_{i}_{SHAPE_CLASSES[label]}.png")
        Image.fromarray(image).save(path)
        for args in (
            ["show", path, "--quality", "75", "--out", path.replace(".png", "_strip.png")],
            ["encode", path, "--quality", "75", "--out", path.replace(".png", ".npz")],
            ["decode", path.replace(".png", ".npz"), "--out", path.replace(".png", "_decoded.png")],
        ):
            if dctformer(args) != 0:
                raise SystemExit(f"demo: `dctformer {' '.join(args)}` failed")
        decoded = np.asarray(Image.open(path.replace(".png", "_decoded.png")), np.float64)
        mse = np.mean((decoded - image.astype(np.float64)) ** 2)
        print(f"   round trip PSNR {10 * np.log10(255**2 / mse):.2f} dB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    codec_stage(args.out)
    print(f"demo outputs in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
