"""`dctformer lengths SOURCE`: the sequence-length distribution of a data source under a codec
(`evaluation.lengths`), to choose `max_length` and `l_max` (docs/design.md §2)."""

import json
import os

from dctformer_tf.cli.codec_commands import add_codec_arguments, codec_from_args


def add_parsers(subparsers):
    lengths = subparsers.add_parser(
        "lengths", help="sequence-length percentiles and histogram of a data source")
    lengths.add_argument("source", help="'shapes', 'folder:PATH' (or a folder), or a prepared "
                                        "TFDS name")
    add_codec_arguments(lengths, resolution_required=True)
    lengths.add_argument("--split", default="train", help="the source's split")
    lengths.add_argument("--num", type=int, default=1000,
                         help="images to encode, from the start of the split (0: all)")
    lengths.add_argument("--max_length", type=int, default=None,
                         help="count (and name) the images whose sequence is longer")
    lengths.add_argument("--data_dir", default=None, help="TFDS data directory")
    lengths.add_argument("--out", default=None, help="histogram of the lengths (.png)")
    lengths.add_argument("--json", default=None, help="the numbers as JSON")
    lengths.set_defaults(run=run_lengths)


def run_lengths(args):
    from dctformer_tf.evaluation.lengths import format_length_report, length_report
    from dctformer_tf.evaluation.plots import save_length_histogram

    if args.num < 0:
        raise ValueError(f"--num must be 0 (all) or positive, got {args.num}")
    report, lengths = length_report(args.source, codec_from_args(args), args.split,
                                    args.num or None, args.max_length, args.data_dir)
    print(format_length_report(report))
    if args.out:
        _make_parent(args.out)
        save_length_histogram(lengths, args.out, max_length=args.max_length)
        print(f"histogram -> {args.out}")
    if args.json:
        _make_parent(args.json)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"numbers -> {args.json}")


def _make_parent(path: str):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
