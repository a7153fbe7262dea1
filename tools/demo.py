"""`make demo`: the main job on the embedded `shapes` data.

Stage 1 (codec): writes a few `shapes` test images, runs `dctformer show` on each (the
progressive-decoding strip of paper Figure 2, sequence length, JPEG bits/pixel) and a
round trip `encode` -> `decode`.
Stage 2 (train): `dctformer train` with gin/runs/quickstart.gin (the `small` model on
`shapes`, about ten minutes on 2 CPU cores; rerunning resumes or skips a finished run).
Stage 3 (evaluate): held-out bpd of the `shapes` test split, and the model's bits per image
against the entropy-coded bits of Pillow's JPEG of the same images at the same quality.

Usage: python tools/demo.py --out outputs/demo
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image

from dctformer_tf.cli.main import main as dctformer
from dctformer_tf.data.shapes import SHAPE_CLASSES, shapes_arrays

QUICKSTART = ["gin/models/small.gin", "gin/data/shapes.gin", "gin/runs/train.gin",
              "gin/runs/quickstart.gin"]


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


def train_stage(model_dir: str) -> None:
    print("== Train: gin/runs/quickstart.gin (small model, shapes) ==", flush=True)
    args = ["train", "--model_dir", model_dir]
    for path in QUICKSTART:
        args += ["--gin_file", path]
    start = time.time()
    if dctformer(args) != 0:
        raise SystemExit("demo: training failed")
    print(f"   training stage took {time.time() - start:.0f} s")


def evaluate_stage(model_dir: str, out: str, num_images: int) -> dict:
    import tensorflow as tf

    from dctformer_tf.data.pipeline import encode_dataset
    from dctformer_tf.evaluation.bpd import evaluate_bpd
    from dctformer_tf.evaluation.compression import compression_report
    from dctformer_tf.export.saved_model import load_trained_model

    print(f"== Evaluate: {num_images} held-out shapes test images ==", flush=True)
    model, codec, config, max_length = load_trained_model(model_dir)
    images, labels = shapes_arrays("test", num_images)
    source = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    sequences = encode_dataset(source, codec, max_length)
    result = evaluate_bpd(model, codec, sequences, config.chunk_size, config.chunk_overlap)
    compression = compression_report(result.pop("bits_per_image"), images, codec)
    report = {
        **result,
        **{key: compression[key] for key in ("model_bits_per_image",
                                             "jpeg_entropy_coded_bits_per_image",
                                             "model_over_jpeg", "jpeg_bpd")},
    }
    print(f"   held-out bpd {report['bpd']:.4f} (channel {report['bpd_channel']:.4f}, "
          f"position {report['bpd_position']:.4f}, value {report['bpd_value']:.4f})")
    print(f"   per chunk: {', '.join(f'{b:.4f}' for b in report['bpd_per_chunk'])}")
    print(f"   model {report['model_bits_per_image']:.0f} bits/image vs JPEG q={codec.quality} "
          f"entropy-coded {report['jpeg_entropy_coded_bits_per_image']:.0f} bits/image "
          f"(Pillow, optimize=True, headers and tables excluded): ratio "
          f"{report['model_over_jpeg']:.3f} (target <= 0.8)")
    with open(os.path.join(out, "evaluation.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--num_eval", type=int, default=200, help="held-out images for bpd")
    parser.add_argument("--skip_train", action="store_true", help="codec stage only")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    codec_stage(args.out)
    if not args.skip_train:
        model_dir = os.path.join(args.out, "model")
        train_stage(model_dir)
        evaluate_stage(model_dir, args.out, args.num_eval)
    print(f"demo outputs in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
