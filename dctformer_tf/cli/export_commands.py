"""`dctformer export`: a training run's checkpoint (the latest by default) as a SavedModel."""

from dctformer_tf.cli.common import add_run_arguments


def add_parsers(subparsers):
    export = subparsers.add_parser("export", help="write a SavedModel with serving signatures")
    add_run_arguments(export)
    export.add_argument("--out", required=True, help="SavedModel directory to write")
    export.add_argument("--max_length", type=int, default=None,
                        help="static sequence length of the signatures (default: training's)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an existing SavedModel folder at --out")
    export.set_defaults(run=run_export)


def run_export(args):
    from dctformer_tf.export.saved_model import export_saved_model

    export_saved_model(args.model_dir, args.out, args.max_length, args.checkpoint,
                       overwrite=args.overwrite)
    print(f"SavedModel written to {args.out} (signatures: encode, score, sample)")
