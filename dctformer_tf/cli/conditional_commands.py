"""`dctformer upsample | colorize`: super-resolution and colorization with a forced prefix
(docs/design.md §6, paper Figures 13–14).

    dctformer upsample --model_dir runs/shapes LOWRES.png --out out/up --num_samples 3
    dctformer colorize --model_dir runs/colorize GRAY.png --out out/color --original RGB.png

`upsample` forces the DC band of a `"bands"` model from a low-resolution input of G×G pixels
(G = R/S; ×S to the R×R canvas); `colorize` forces the luma part of a `"luma_first"` model from
a grayscale input (colour input is converted to its luma). For input i, --out gets
`iii_sample_nn.png` (each sample), `iii_row.png` (input at the output size — nearest-upscaled
for upsampling, gray for colorization —, the samples, and the original with --original),
`figure.png` (all rows), and `upsample.json` / `colorize.json` (settings; per input the prefix
length and, per sample, the sampler's statistics and the prefix-fidelity numbers of
`sampling.conditional.upsample_fidelity` / `colorize_fidelity`).
"""

import json
import os

from dctformer_tf.cli.flag_defaults import HEADS
from dctformer_tf.cli.sample_commands import (
    add_sampling_arguments,
    load_sampler,
    save_png,
    settings_from_args,
)

HELP = {
    "upsample": "x S super-resolution: the low-resolution input forced as the DC band",
    "colorize": "colorization: the grayscale input forced as the luma part",
}
INPUT_HELP = {
    "upsample": "low-resolution image(s) of G x G pixels, G = resolution / block_size",
    "colorize": "grayscale image(s) (colour images are converted to their luma)",
}


def add_parsers(subparsers):
    for task in ("upsample", "colorize"):
        parser = subparsers.add_parser(task, help=HELP[task])
        add_sampling_arguments(parser)
        parser.add_argument("images", nargs="+", metavar="IMAGE", help=INPUT_HELP[task])
        parser.add_argument("--num_samples", type=int, default=3, help="samples per input")
        parser.add_argument("--original", action="append", default=[], metavar="PATH",
                            help="the full-resolution colour original of an input, shown last "
                                 "in its row; give one per input, in the same order")
        parser.add_argument("--class", dest="label", type=int, default=None,
                            help="class id for a class-conditional model")
        parser.set_defaults(run=lambda args, task=task: run_conditional(args, task))


def run_conditional(args, task: str) -> None:
    from dctformer_tf.data.image_io import load_image
    from dctformer_tf.runs import read_run_file
    from dctformer_tf.sampling import conditional
    from dctformer_tf.sampling.figures import image_grid

    if args.num_samples < 1:
        raise ValueError(f"--num_samples must be positive, got {args.num_samples}")
    if args.original and len(args.original) != len(args.images):
        raise ValueError(f"--original given {len(args.original)} times for "
                         f"{len(args.images)} inputs: give one per input, in the same order")
    settings = settings_from_args(args)
    # Order and input sizes are checked against the run's codec before the model loads.
    codec = read_run_file(args.model_dir).codec
    conditional.check_task_order(codec, task)
    make_prefix = (conditional.downsample_prefix if task == "upsample"
                   else conditional.luma_prefix)
    inputs = [load_image(path) for path in args.images]
    for path, image in zip(args.images, inputs, strict=True):
        make_prefix(codec, image, name=path)
    originals = [codec.content_pixels(load_image(path), name=path) for path in args.original]

    sampler = load_sampler(args)
    draw = conditional.upsample if task == "upsample" else conditional.colorize
    os.makedirs(args.out, exist_ok=True)
    figure, report = [], []
    for i, (path, image) in enumerate(zip(args.images, inputs, strict=True)):
        samples = draw(sampler, image, args.num_samples, args.seed, name=path,
                       settings=settings, batch_size=args.batch_size,
                       max_chunks=args.max_chunks, label=args.label)
        for n, sample in enumerate(samples.result.images):
            save_png(sample, os.path.join(args.out, f"{i:03d}_sample_{n:02d}.png"))
        row = [samples.shown_input, *samples.result.images]
        if originals:
            row.append(originals[i])
        save_png(image_grid(row, len(row)), os.path.join(args.out, f"{i:03d}_row.png"))
        figure.append(row)
        report.append({"input": path, "original": args.original[i] if originals else None,
                       "content_hw": [int(x) for x in samples.content_hw],
                       "prefix_length": int(len(samples.prefix)),
                       "samples": samples.statistics()})
    columns = max(len(row) for row in figure)
    save_png(image_grid([image for row in figure for image in row], columns),
             os.path.join(args.out, "figure.png"))
    with open(os.path.join(args.out, f"{task}.json"), "w") as f:
        json.dump({"task": task, "model_dir": args.model_dir, "seed": args.seed,
                   "order": codec.order, "block_size": codec.block_size,
                   "resolution": codec.resolution,
                   "settings": {name: vars(settings.head(name)) for name in HEADS},
                   "inputs": report}, f, indent=2)
    key = "dc_band_equal" if task == "upsample" else "luma_equal"
    kept = sum(s[key] for entry in report for s in entry["samples"])
    total = sum(len(entry["samples"]) for entry in report)
    print(f"{task}: {len(inputs)} input(s) x {args.num_samples} samples, prefix kept in "
          f"{kept}/{total}: {os.path.join(args.out, 'figure.png')}")
