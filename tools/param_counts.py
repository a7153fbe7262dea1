"""Builds each Table 3 model (no training) and prints its parameter count beside the paper's.

    python tools/param_counts.py                      # the seven Table 3 configurations
    python tools/param_counts.py gin/models/lsun.gin  # chosen files
    python tools/param_counts.py --no-build           # analytic counts only (seconds)

Building creates every weight in float32 (up to ~3 GB for ImageNet) on the CPU; the analytic
count (`dctformer_tf.model.configs.count_parameters`) is printed beside it as a cross-check,
and the paper's count (`dctformer_tf.plan.PAPER_PARAMETERS`) where the paper has one.
"""

import argparse
import dataclasses
import gc
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from dctformer_tf.model.configs import build_model, count_parameters  # noqa: E402
from dctformer_tf.plan import PAPER_PARAMETERS, TABLE3  # noqa: E402
from dctformer_tf.train.gin_model import config_from_bindings, read_bindings  # noqa: E402

GIN = pathlib.Path(__file__).resolve().parents[1] / "gin"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="gin model files (default: Table 3 files)")
    parser.add_argument("--no-build", action="store_true", help="analytic counts only")
    args = parser.parse_args(argv)
    files = args.files or [str(GIN / "models" / f"{name}.gin") for name in TABLE3]

    print(f"{'config':<14}{'built':>14}{'analytic':>14}{'paper':>10}{'ratio':>8}")
    for path in files:
        # train.gin binds the codec and chunking from the model file's macros.
        config = config_from_bindings(read_bindings([path, GIN / "runs" / "train.gin"]))
        model = build_model(build=not args.no_build, **dataclasses.asdict(config))
        analytic = count_parameters(model.get_config())
        built = "-" if args.no_build else f"{model.count_params():,}"
        name = pathlib.Path(path).stem
        paper = PAPER_PARAMETERS.get(name)
        against = (f"{paper / 1e6:>9.0f}M{analytic / paper:>8.3f}" if paper
                   else f"{'-':>10}{'-':>8}")
        print(f"{name:<14}{built:>14}{analytic:>14,}{against}")
        del model
        keras.backend.clear_session()
        gc.collect()


if __name__ == "__main__":
    main()
