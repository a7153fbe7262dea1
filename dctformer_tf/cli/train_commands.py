"""`dctformer train`: gin-configured training (`dctformer_tf.train.experiment.train`);
`dctformer train-portable`: the same gin files trained without TensorFlow, on any Keras
backend (`train.portable`); `dctformer import-weights`: such a run's weights as a checkpoint
that the TensorFlow commands read."""

import os

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

    portable = subparsers.add_parser(
        "train-portable", help="train on numpy input without TensorFlow (KERAS_BACKEND=jax)")
    add_gin_arguments(portable)
    portable.add_argument("--model_dir", required=True, help="run.json, weights/, summary")
    portable.add_argument("--steps", type=int, default=None,
                          help="steps to run (default: train.total_steps)")
    portable.add_argument("--minutes", type=float, default=None,
                          help="stop after this much wall time (the schedule keeps --steps)")
    portable.add_argument("--workers", type=int, default=0,
                          help="input worker processes (0: encode in this process)")
    portable.add_argument("--steps_per_epoch", type=int, default=100)
    portable.set_defaults(run=run_train_portable)

    imports = subparsers.add_parser(
        "import-weights", help="a train-portable run's weights as a TensorFlow checkpoint")
    imports.add_argument("--model_dir", required=True, help="a train-portable model_dir")
    imports.add_argument("--weights", default=None,
                         help="a step-STEP.weights.h5 file (default: the latest in weights/)")
    imports.set_defaults(run=run_import_weights)


def run_train(args):
    from dctformer_tf.train import experiment

    bindings = [f"train.model_dir = {args.model_dir!r}"]
    if args.strategy:
        bindings.append(f"train.strategy = {args.strategy!r}")
    if args.tpu:
        bindings.append(f"train.tpu = {args.tpu!r}")
    parse_gin(args, bindings)
    try:
        experiment.train()
    except RuntimeError as error:
        injected = ("codec", "chunking", "architecture", "sequences", "chunk_policy")
        if "Required bindings for `train`" in str(error) and \
                any(f"'{name}'" in str(error) for name in injected):
            raise ValueError(f"{error}\nA run file binds what the run is made of: include "
                               "gin/runs/train.gin, or bind train.codec = @build_codec(), "
                               "train.chunking = @build_chunking(), train.architecture = "
                               "@architecture(), train.sequences = @build_sequences() and "
                               "train.chunk_policy = @build_chunks()") from None
        raise


def run_train_portable(args):
    from dctformer_tf.train.portable import PortableSettings, train_portable

    missing = [path for path in args.gin_file if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError(f"gin file not found: {', '.join(missing)}")
    settings = PortableSettings.from_gin(args.gin_file, args.gin_bindings)
    summary = train_portable(args.model_dir, settings, total_steps=args.steps,
                             minutes=args.minutes, steps_per_epoch=args.steps_per_epoch,
                             workers=args.workers)
    print(f"{summary['steps']} steps, {summary['tokens_seen']} tokens in "
          f"{summary['wall_seconds']} s on {summary['backend']}; weights: "
          f"{os.path.join(args.model_dir, summary['weights'])}")


def run_import_weights(args):
    from dctformer_tf.train.portable import import_weights

    print(f"checkpoint written: {import_weights(args.model_dir, args.weights)}")
