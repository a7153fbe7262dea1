"""`dctformer`: the command-line entry point. Each sub-command lives in its own module and
registers itself with `add_parsers(subparsers)`; its `run(args)` calls one library function.
Bad input ends in one clear error line; set DCTFORMER_TRACEBACK=1 for the full traceback."""

import argparse
import os
import sys

from dctformer_tf.cli import (
    codec_commands,
    conditional_commands,
    evaluate_commands,
    export_commands,
    sample_commands,
    train_commands,
)

COMMAND_MODULES = (codec_commands, train_commands, export_commands, sample_commands,
                   conditional_commands, evaluate_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dctformer",
        description="DCTransformer: images as sparse JPEG-style DCT sequences (TF/Keras).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, OSError) as error:  # bad input: one clear line, no traceback
        if os.environ.get("DCTFORMER_TRACEBACK"):
            raise
        print(f"dctformer {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
