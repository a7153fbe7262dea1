"""Super-resolution and colorization figures laid out like the paper's Figures 13–14, for
held-out `shapes` test images at the run's resolution: `upsampling.png` and `colorization.png`
(one row per image: input, samples, original) and `conditional_figures.json` (per sample the
sampler's statistics and the prefix-fidelity numbers, plus a summary per task).

    python tools/conditional_figures.py --upsample_model_dir outputs/upsample_shapes \
        --colorize_model_dir outputs/colorize_shapes --out outputs/figures

The upsampling input is the original downsampled ×S by block means (shown nearest-upscaled);
the colorization input is the original's luma (shown gray). Either model_dir may be left out.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from dctformer_tf.data.shapes import shapes_arrays  # noqa: E402
from dctformer_tf.sampling import Sampler, SamplingSettings  # noqa: E402
from dctformer_tf.sampling import conditional as cond  # noqa: E402
from dctformer_tf.sampling.figures import image_grid  # noqa: E402

FIGURES = {"upsample": "upsampling.png", "colorize": "colorization.png"}
KEPT = {"upsample": "dc_band_equal", "colorize": "luma_equal"}
SUMMED = {"upsample": "luma_block_psnr_db", "colorize": "luma_psnr_db"}


def task_figure(task: str, model_dir: str, args) -> tuple:
    """(uint8 figure, JSON-ready dict) of one task over the chosen test images."""
    print(f"Loading {model_dir} for {task}...", flush=True)
    sampler = Sampler.from_model_dir(model_dir, jit_compile=not args.no_jit)
    codec = sampler.codec
    settings = SamplingSettings.uniform(temperature=args.temperature, top_p=args.top_p)
    originals, _ = shapes_arrays("test", args.num_images, start=args.start,
                                 size=codec.resolution)
    rows, entries = [], []
    for i, original in enumerate(originals):
        kwargs = dict(settings=settings, batch_size=args.batch_size,
                      max_chunks=args.max_chunks, name=f"shapes test {args.start + i}")
        if task == "upsample":
            samples = cond.upsample(sampler, cond.downsample(original, codec.block_size),
                                    args.num_samples, args.seed, **kwargs)
        else:
            samples = cond.colorize(sampler, cond.gray_rgb(original), args.num_samples,
                                    args.seed, **kwargs)
        rows += [samples.shown_input, *samples.result.images,
                 codec.content_pixels(original)]
        entries.append({"index": args.start + i, "prefix_length": int(len(samples.prefix)),
                        "samples": samples.statistics()})
        print(f"  image {args.start + i}: prefix {len(samples.prefix)} elements, lengths "
              f"{samples.result.length.tolist()}", flush=True)
    stats = [s for entry in entries for s in entry["samples"]]
    summary = {KEPT[task]: all(s[KEPT[task]] for s in stats),
               f"mean_{SUMMED[task]}": round(float(np.mean([s[SUMMED[task]] for s in stats])), 2)}
    figure = image_grid(rows, columns=args.num_samples + 2)
    return figure, {"model_dir": model_dir, "order": codec.order,
                    "resolution": codec.resolution, "block_size": codec.block_size,
                    "summary": summary, "images": entries}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upsample_model_dir", default=None, help='a "bands" run')
    parser.add_argument("--colorize_model_dir", default=None, help='a "luma_first" run')
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--num_images", type=int, default=4, help="shapes test images")
    parser.add_argument("--start", type=int, default=0, help="first shapes test image")
    parser.add_argument("--num_samples", type=int, default=3, help="samples per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0, help="all heads")
    parser.add_argument("--top_p", type=float, default=1.0, help="all heads; 1 = off")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_chunks", type=int, default=None)
    parser.add_argument("--no_jit", action="store_true", help="do not compile with XLA")
    args = parser.parse_args(argv)
    dirs = {"upsample": args.upsample_model_dir, "colorize": args.colorize_model_dir}
    if not any(dirs.values()):
        parser.error("give --upsample_model_dir and/or --colorize_model_dir")
    os.makedirs(args.out, exist_ok=True)
    report = {}
    for task, model_dir in dirs.items():
        if model_dir is None:
            continue
        figure, report[task] = task_figure(task, model_dir, args)
        path = os.path.join(args.out, FIGURES[task])
        Image.fromarray(figure).save(path)
        print(f"{task}: {report[task]['summary']} -> {path}", flush=True)
    with open(os.path.join(args.out, "conditional_figures.json"), "w") as f:
        json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
