"""Builds each Table 3 model (no training) and prints its parameter count beside the paper's.

    python tools/param_counts.py                      # the seven Table 3 configurations
    python tools/param_counts.py gin/models/lsun.gin  # chosen files
    python tools/param_counts.py --no-build           # analytic counts only (seconds)

Building creates every weight in float32 (up to ~3 GB for ImageNet) on the CPU; the analytic
count (`dctformer_tf.model.configs.count_parameters`) is printed beside it as a cross-check.
"""

import argparse
import dataclasses
import gc
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import keras  # noqa: E402

from dctformer_tf.model.configs import build_model, count_parameters  # noqa: E402
from dctformer_tf.train.experiment import gin_model_config  # noqa: E402

GIN_MODELS = pathlib.Path(__file__).resolve().parents[1] / "gin" / "models"
TABLE3 = ["lsun", "ffhq", "imagenet", "openimages", "plant_leaves", "retinopathy", "clevr"]

TRAIN_GIN = pathlib.Path(__file__).resolve().parents[1] / "gin" / "runs" / "train.gin"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="gin model files (default: Table 3 files)")
    parser.add_argument("--no-build", action="store_true", help="analytic counts only")
    args = parser.parse_args()
    files = args.files or [str(GIN_MODELS / f"{name}.gin") for name in TABLE3]

    print(f"{'config':<14}{'built':>14}{'analytic':>14}{'paper':>10}{'ratio':>8}")
    for path in files:
        gin.clear_config()
        # train.gin binds the codec and chunking; its run-only train.model_dir gets a dummy.
        gin.parse_config_files_and_bindings([path, str(TRAIN_GIN)], ["train.model_dir = ''"])
        paper = gin.query_parameter("%PAPER_PARAMETERS")
        model = build_model(build=not args.no_build, **dataclasses.asdict(gin_model_config()))
        analytic = count_parameters(model.get_config())
        built = "-" if args.no_build else f"{model.count_params():,}"
        name = pathlib.Path(path).stem
        print(f"{name:<14}{built:>14}{analytic:>14,}{paper / 1e6:>9.0f}M{analytic / paper:>8.3f}")
        del model
        keras.backend.clear_session()
        gc.collect()


if __name__ == "__main__":
    main()
