"""The gin flags every training-side command shares: --gin_file, --gin_bindings."""

import os

import gin


def add_gin_arguments(parser) -> None:
    parser.add_argument("--gin_file", action="append", default=[],
                        help="gin config file; repeat to combine (model, data, run)")
    parser.add_argument("--gin_bindings", action="append", default=[],
                        help="extra gin binding, e.g. \"train.batch_size = 8\"; repeatable")


def parse_gin(args, extra_bindings=()) -> None:
    """Parse the files, then the bindings (later ones win), then `extra_bindings`."""
    missing = [path for path in args.gin_file if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError(f"gin file not found: {', '.join(missing)}")
    gin.parse_config_files_and_bindings(args.gin_file, list(args.gin_bindings) + list(extra_bindings))

