"""`dctformer evaluate`: bpd (total, per component, per chunk; Figure 9 plot), compression
against JPEG, and FID / sFID / precision-recall of samples (`evaluation.report`)."""

from dctformer_tf.cli.common import add_gin_arguments, parse_gin
from dctformer_tf.cli.flag_defaults import METRICS
from dctformer_tf.cli.sample_commands import add_sampling_arguments, settings_from_args


def add_parsers(subparsers):
    evaluate = subparsers.add_parser("evaluate", help="bpd, compression, FID/sFID/PR of a run")
    add_sampling_arguments(evaluate)
    add_gin_arguments(evaluate)
    evaluate.add_argument("--split", default="test", help="data split to evaluate on")
    evaluate.add_argument("--metrics", default="bpd,compression",
                          help="comma-separated: " + ", ".join(METRICS))
    evaluate.add_argument("--num_images", type=int, default=200,
                          help="split images scored for bpd / compression")
    evaluate.add_argument("--num_samples", type=int, default=1000,
                          help="samples (and split images) for fid / sfid / pr / structure")
    evaluate.add_argument("--features", default="shapes_classifier",
                          choices=("shapes_classifier", "inception"),
                          help="feature network for fid / sfid / pr")
    evaluate.add_argument("--feature_weights", default=None,
                          help="shapes_classifier: the .keras file of "
                               "tools/train_shapes_classifier.py; inception: the InceptionV3 "
                               "weights file (or bind inception_features.weights_path)")
    evaluate.add_argument("--source", default=None,
                          help="data source (default: the one the run's run.json records)")
    evaluate.add_argument("--baseline_split", default="train",
                          help="the floor: --split against this split ('' for none)")
    evaluate.set_defaults(run=run_evaluate)


def make_features(args):
    from dctformer_tf.evaluation import features

    if args.features == "shapes_classifier":
        if not args.feature_weights:
            raise ValueError("--features shapes_classifier needs --feature_weights PATH.keras "
                             "(train it: python tools/train_shapes_classifier.py --out PATH)")
        return features.ShapesClassifierFeatures(args.feature_weights)
    if args.feature_weights:
        return features.inception_features(args.feature_weights)
    return features.inception_features()  # weights_path from gin, or a clear error


def run_evaluate(args):
    from dctformer_tf.evaluation.report import evaluate_run

    parse_gin(args)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    needs_features = any(m in ("fid", "sfid", "pr") for m in metrics)
    evaluate_run(
        args.model_dir, args.out, metrics, split=args.split, num_images=args.num_images,
        num_samples=args.num_samples, features=make_features(args) if needs_features else None,
        source=args.source, baseline_split=args.baseline_split or None, seed=args.seed,
        batch_size=args.batch_size, settings=settings_from_args(args),
        checkpoint=args.checkpoint, max_chunks=args.max_chunks, max_length=args.max_length,
        cache=not args.no_cache, jit_compile=not args.no_jit)
    print(f"evaluation written to {args.out}/evaluation.json")
