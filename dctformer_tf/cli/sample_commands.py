"""`dctformer sample`: images from a trained run, with the figures of paper Figure 1.

Writes to --out: `grid.png` (all samples), `sample_NNN.png` (each, cropped to its content),
`generation_NNN.png` (decoded image after each chunk over a heat map of where the chunk's
elements went, for the first few samples), `progressive_NNN.png` (decoding from growing
prefixes), `samples.npz` (triples, lengths, content sizes, labels) and `samples.json`
(settings and per-sample length, chunks, seconds, finished).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from dctformer_tf.cli.common import add_run_arguments
from dctformer_tf.cli.flag_defaults import HEAD_SETTINGS, HEADS

if TYPE_CHECKING:
    import numpy as np

    from dctformer_tf.sampling.processors import SamplingSettings


def add_sampling_arguments(parser) -> None:
    """Flags every sampling command shares (sample, upsample, colorize)."""
    add_run_arguments(parser)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same samples")
    parser.add_argument("--temperature", type=float, default=HEAD_SETTINGS["temperature"],
                        help="all heads")
    parser.add_argument("--top_k", type=int, default=HEAD_SETTINGS["top_k"],
                        help="all heads; 0 = off")
    parser.add_argument("--top_p", type=float, default=HEAD_SETTINGS["top_p"],
                        help="all heads; 1 = off")
    parser.add_argument("--head", action="append", default=[], metavar="HEAD.KEY=VALUE",
                        help="per-head override, e.g. value.temperature=0.8 or channel.top_p=0.9 "
                             f"(heads: {', '.join(HEADS)}); repeatable")
    parser.add_argument("--batch_size", type=int, default=16, help="samples per batch")
    parser.add_argument("--max_chunks", type=int, default=None,
                        help="stop after this many chunks (default: until every EOS)")
    parser.add_argument("--max_length", type=int, default=None,
                        help="sequence buffer incl. EOS (default: the run's max_length)")
    parser.add_argument("--no_cache", action="store_true",
                        help="the slow reference loop without decoder caches")
    parser.add_argument("--no_jit", action="store_true", help="do not compile with XLA")


def settings_from_args(args) -> SamplingSettings:
    """--temperature/--top_k/--top_p for all heads, then the --head overrides."""
    from dctformer_tf.sampling.processors import HeadSettings, SamplingSettings

    values = {name: {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
              for name in HEADS}
    for item in args.head:
        try:
            key, value = item.split("=", 1)
            head, field = key.strip().split(".", 1)
            if head not in values or field not in values[head]:
                raise KeyError(key)
            values[head][field] = int(value) if field == "top_k" else float(value)
        except (ValueError, KeyError):
            raise ValueError(f"--head {item!r}: expected HEAD.KEY=VALUE with HEAD in "
                             f"{HEADS} and KEY in temperature, top_k, top_p") from None
    return SamplingSettings(**{name: HeadSettings(**v) for name, v in values.items()})


def load_sampler(args):
    from dctformer_tf.sampling import Sampler

    return Sampler.from_model_dir(args.model_dir, args.checkpoint, max_length=args.max_length,
                                  cache=not args.no_cache, jit_compile=not args.no_jit)


def save_png(image: np.ndarray, path: str) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


def write_samples(out: str, sampler, result, settings: SamplingSettings, figures: int = 4,
                  extra: dict | None = None) -> None:
    """Everything `dctformer sample` writes (module docstring); `extra` goes into the JSON."""
    import numpy as np

    from dctformer_tf.sampling import figures as figs

    os.makedirs(out, exist_ok=True)
    columns = int(np.ceil(np.sqrt(len(result.images))))
    save_png(figs.image_grid(result.images, columns), os.path.join(out, "grid.png"))
    for n, image in enumerate(result.images):
        save_png(image, os.path.join(out, f"sample_{n:03d}.png"))
    for n in range(min(figures, len(result.images))):
        h, w = result.content_hw[n].tolist()
        triples, length = result.triples[n], int(result.length[n])
        save_png(figs.generation_figure(sampler.codec, triples, length, h, w,
                                        sampler.chunk_size),
                 os.path.join(out, f"generation_{n:03d}.png"))
        if length > 1:
            strip, _ = figs.progressive_strip(sampler.codec, triples[:length], h, w)
            save_png(strip, os.path.join(out, f"progressive_{n:03d}.png"))
    np.savez_compressed(os.path.join(out, "samples.npz"), triples=result.triples,
                        length=result.length, content_hw=result.content_hw, label=result.label)
    report = {"settings": {name: vars(settings.head(name)) for name in HEADS},
              "samples": result.statistics(), **(extra or {})}
    with open(os.path.join(out, "samples.json"), "w") as f:
        json.dump(report, f, indent=2)


def add_parsers(subparsers):
    sample = subparsers.add_parser("sample", help="generate images from a trained run")
    add_sampling_arguments(sample)
    sample.add_argument("--num", type=int, default=16, help="number of samples")
    sample.add_argument("--class", dest="label", type=int, default=None,
                        help="class id for a class-conditional model")
    sample.set_defaults(run=run_sample)


def run_sample(args):
    settings = settings_from_args(args)
    sampler = load_sampler(args)
    result = sampler.sample(args.num, args.seed, settings, batch_size=args.batch_size,
                            max_chunks=args.max_chunks, label=args.label)
    write_samples(args.out, sampler, result, settings,
                  extra={"model_dir": args.model_dir, "seed": args.seed})
    unfinished = int((~result.finished).sum())
    print(f"{args.num} samples in {result.seconds.max():.1f} s, mean length "
          f"{result.length.mean():.0f} elements"
          + (f", {unfinished} without EOS within the chunk limit" if unfinished else "")
          + f": {args.out}/grid.png")
