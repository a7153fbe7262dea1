"""What the sub-commands and tools share: the gin flags (--gin_file, --gin_bindings) and the
trained-run flags (--model_dir, --checkpoint)."""

import os
import re


def add_gin_arguments(parser) -> None:
    parser.add_argument("--gin_file", action="append", default=[],
                        help="gin config file; repeat to combine (model, data, run)")
    parser.add_argument("--gin_bindings", action="append", default=[],
                        help="extra gin binding, e.g. \"train.batch_size = 8\"; repeatable")


def add_run_arguments(parser) -> None:
    """--model_dir and --checkpoint: the trained run a command reads."""
    parser.add_argument("--model_dir", required=True, help="a `dctformer train` model_dir")
    parser.add_argument("--checkpoint", default=None,
                        help="a checkpoint prefix, e.g. MODEL_DIR/checkpoints/ckpt-500 "
                             "(default: the latest)")


def parse_gin(args, extra_bindings=()) -> None:
    """Parse the files, then the bindings (later ones win), then `extra_bindings`."""
    import gin

    from dctformer_tf.train.gin_model import RENAMED

    missing = [path for path in args.gin_file if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError(f"gin file not found: {', '.join(missing)}")
    # A command owns the whole config: start clean (several commands may run in one process,
    # as in tools/demo.py). Not finalized: a locked config would refuse the configurables of
    # modules imported later in the same process (evaluation.features).
    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings(args.gin_file,
                                            list(args.gin_bindings) + list(extra_bindings),
                                            finalize_config=False)
    except ValueError as error:
        renamed = re.search(r"No configurable matching '(\w+)'", str(error))
        if renamed and renamed.group(1) in RENAMED:
            old = renamed.group(1)
            raise ValueError(f"{error}\n`{old}.*` is now `{RENAMED[old]}.*`") from None
        raise

