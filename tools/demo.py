"""`make demo`: the main job on the embedded `shapes` data.

Stage 1 (codec): writes a few `shapes` test images, runs `dctformer show` on each (the
progressive-decoding strip of paper Figure 2, sequence length, JPEG bits/pixel) and a
round trip `encode` -> `decode`.
Stage 2 (train): `dctformer train` with gin/runs/quickstart.gin (a narrow `small` model on
`shapes`, sized for a ten-minute budget on 2 CPU cores; rerunning resumes or skips a finished
run).
Stage 3 (evaluate): held-out bpd of the `shapes` test split (with the per-chunk plot), and
the model's bits per image against the entropy-coded bits of Pillow's JPEG of the same images
at the same quality (`evaluation.report`, as `dctformer evaluate`).
Stage 4 (sample): `dctformer sample`: a grid of samples, heat maps, progressive strips.

Usage: python tools/demo.py --out outputs/demo
"""

import argparse
import contextlib
import os
import sys
import time

import numpy as np
from PIL import Image

from dctformer_tf.cli import logs
from dctformer_tf.cli.main import VERBOSE_HELP
from dctformer_tf.cli.main import main as dctformer

QUICKSTART = ["gin/models/small.gin", "gin/data/shapes.gin", "gin/runs/train.gin",
              "gin/runs/quickstart.gin"]


def cli(args: list[str], verbose: bool, failure: str | None = None) -> None:
    """Runs `dctformer ARGS` in this process; stops the demo if it fails."""
    if dctformer(args + ["--verbose"] * verbose) != 0:
        failure = failure or "`dctformer " + " ".join(args) + "` failed"
        raise SystemExit(f"demo: {failure}")


def codec_stage(out: str, verbose: bool = False, num_images: int = 3) -> None:
    from dctformer_tf.data.shapes import SHAPE_CLASSES, shapes_arrays  # imports TensorFlow

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
            cli(args, verbose)
        decoded = np.asarray(Image.open(path.replace(".png", "_decoded.png")), np.float64)
        mse = np.mean((decoded - image.astype(np.float64)) ** 2)
        print(f"   round trip PSNR {10 * np.log10(255**2 / mse):.2f} dB")


def train_stage(model_dir: str, verbose: bool = False) -> None:
    print("== Train: gin/runs/quickstart.gin (narrow small model, shapes) ==", flush=True)
    args = ["train", "--model_dir", model_dir]
    for path in QUICKSTART:
        args += ["--gin_file", path]
    start = time.time()
    cli(args, verbose, "training failed")
    print(f"   training stage took {time.time() - start:.0f} s")


def evaluate_stage(model_dir: str, out: str, num_images: int) -> dict:
    from dctformer_tf.evaluation.report import evaluate_run

    print(f"== Evaluate: {num_images} held-out shapes test images ==", flush=True)
    report = evaluate_run(model_dir, out, ("bpd", "compression"), split="test",
                          num_images=num_images, progress=lambda line: None)
    bpd, compression = report["bpd"], report["compression"]
    print(f"   held-out bpd {bpd['bpd']:.4f} (channel {bpd['bpd_channel']:.4f}, "
          f"position {bpd['bpd_position']:.4f}, value {bpd['bpd_value']:.4f})")
    print(f"   per chunk: {', '.join(f'{b:.4f}' for b in bpd['bpd_per_chunk'])} "
          f"(plot: {out}/bpd_per_chunk.png)")
    print(f"   model {compression['model_bits_per_image']:.0f} bits/image vs JPEG "
          f"entropy-coded {compression['jpeg_entropy_coded_bits_per_image']:.0f} bits/image "
          f"(Pillow, same quality, optimize=True, headers and tables excluded): ratio "
          f"{compression['model_over_jpeg']:.3f} (target <= 0.8); coefficients clipped: "
          f"{compression['clipped_values']}")
    return report


def sample_stage(model_dir: str, out: str, num: int, verbose: bool = False) -> None:
    print(f"== Sample: {num} images (seed 0, temperature 1) ==", flush=True)
    args = ["sample", "--model_dir", model_dir, "--num", str(num), "--seed", "0",
            "--out", out]
    cli(args, verbose, "sampling failed")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--num_eval", type=int, default=200, help="held-out images for bpd")
    parser.add_argument("--num_samples", type=int, default=16, help="samples in the grid")
    parser.add_argument("--skip_train", action="store_true", help="codec stage only")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    # As the CLI does: TensorFlow's C++ start-up lines (CUDA stubs, oneDNN, cuInit errors on a
    # machine without a GPU) are hidden unless --verbose; the first import must be covered.
    logs.setup_logging(args.verbose)
    with contextlib.nullcontext() if args.verbose else logs.quiet_import("tensorflow"):
        codec_stage(args.out, args.verbose)
        if not args.skip_train:
            model_dir = os.path.join(args.out, "model")
            train_stage(model_dir, args.verbose)
            evaluate_stage(model_dir, args.out, args.num_eval)
            sample_stage(model_dir, os.path.join(args.out, "samples"), args.num_samples,
                         args.verbose)
    print(f"demo outputs in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
