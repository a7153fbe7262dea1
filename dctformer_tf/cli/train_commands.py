"""`dctformer train`: gin-configured training (`dctformer_tf.train.experiment.train`)."""

from dctformer_tf.cli.common import add_gin_arguments, parse_gin
from dctformer_tf.cli.flag_defaults import STRATEGIES


def add_parsers(subparsers):
    train = subparsers.add_parser("train", help="train a DCTransformer (gin-configured)")
    add_gin_arguments(train)
    train.add_argument("--model_dir", required=True, help="checkpoints, logs, run settings")
    train.add_argument("--strategy", default=None,
                       help=" | ".join(STRATEGIES))
    train.add_argument("--tpu", default=None, help="TPU name or address (strategy tpu)")
    train.set_defaults(run=run_train)


def run_train(args):
    from dctformer_tf.train import experiment

    bindings = [f"train.model_dir = {args.model_dir!r}"]
    if args.strategy:
        bindings.append(f"train.strategy = {args.strategy!r}")
    if args.tpu:
        bindings.append(f"train.tpu = {args.tpu!r}")
    parse_gin(args, bindings)
    experiment.train()
