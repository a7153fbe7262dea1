"""`dctformer`: the command-line entry point. Each sub-command lives in its own module and
registers itself with `add_parsers(subparsers)`; its `run(args)` calls one library function.
Bad input ends in one clear error line; set DCTFORMER_TRACEBACK=1 for the full traceback.

Building the parser imports no TensorFlow, gin, numpy or Pillow: the command modules import
them inside `run`, so `dctformer ... --help` answers at once. TensorFlow's C++ logs are hidden
unless --verbose is given (`logs`)."""

import argparse
import contextlib
import os
import sys

from dctformer_tf.cli import (
    codec_commands,
    conditional_commands,
    evaluate_commands,
    export_commands,
    lengths_commands,
    logs,
    sample_commands,
    train_commands,
)

COMMAND_MODULES = (codec_commands, lengths_commands, train_commands, export_commands,
                   sample_commands, conditional_commands, evaluate_commands)
VERBOSE_HELP = ("show TensorFlow's C++ logs and every library's INFO lines "
                "(default: dctformer's progress lines and warnings only)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dctformer",
        description="DCTransformer: images as sparse JPEG-style DCT sequences (TF/Keras).",
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(subparsers)
    for command in subparsers.choices.values():
        # Also after the command name; SUPPRESS keeps a --verbose given before it.
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help=VERBOSE_HELP)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup_logging(args.verbose)
    try:
        with contextlib.nullcontext() if args.verbose else logs.quiet_import("tensorflow"):
            return args.run(args) or 0
    # Bad input, or a run that diverged (TrainingDiverged): one clear line, no traceback.
    except (ValueError, OSError, FloatingPointError) as error:
        if os.environ.get("DCTFORMER_TRACEBACK"):
            raise
        # gin appends "  In call to configurable 'train' (...)" to errors raised in a
        # configurable: a location for gin's own debugging, noise on the command line.
        message = "\n".join(line for line in str(error).splitlines()
                            if not line.strip().startswith("In call to configurable"))
        print(f"dctformer {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
