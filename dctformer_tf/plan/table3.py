"""The paper's Table 3 runs as the planner knows them: their names, the paper's parameter
counts, and the gin files that make each run.

The configs are named after their files: `gin/models/NAME.gin` (the architecture, batch and
schedule), `gin/data/NAME.gin` (the source and the sequence buffer) and `gin/runs/train.gin`
(the codec and chunking bound from the model file's macros). The CPU models `tiny` and
`small` have no data file of their own and train on `gin/data/shapes.gin`.
"""

import pathlib

# Paper Table 3 columns, in the paper's order.
TABLE3 = ("lsun", "ffhq", "imagenet", "openimages", "plant_leaves", "retinopathy", "clevr")

# Paper Table 3, "Parameters" row: what each column reports, to set our analytic count
# (`model.configs.count_parameters`) beside. The paper does not list its layer sizes
# exactly, so the two differ by some percent.
PAPER_PARAMETERS = {
    "lsun": 448e6,
    "ffhq": 473e6,
    "imagenet": 738e6,
    "openimages": 533e6,
    "plant_leaves": 325e6,
    "retinopathy": 318e6,
    "clevr": 483e6,
}

# The data file of the configs that have none of their own.
FALLBACK_DATA = "shapes"


def data_file(gin_dir: pathlib.Path, name: str) -> pathlib.Path:
    """`gin_dir/data/NAME.gin`, or `gin_dir/data/shapes.gin` where there is none."""
    path = pathlib.Path(gin_dir) / "data" / f"{name}.gin"
    return path if path.exists() else path.with_name(f"{FALLBACK_DATA}.gin")


def config_files(gin_dir: pathlib.Path, name: str) -> list[pathlib.Path]:
    """The gin files of config NAME, in the order training reads them: model file, data file
    (`data_file`), `runs/train.gin`.

    Args:
      gin_dir: the project's `gin/` folder.
      name: a `gin/models` file name ("lsun", "tiny", ...).
    Raises:
      FileNotFoundError naming the missing model file and the Table 3 configs.
    """
    gin_dir = pathlib.Path(gin_dir)
    model = gin_dir / "models" / f"{name}.gin"
    if not model.exists():
        raise FileNotFoundError(f"no model file {model} (Table 3 configs: {', '.join(TABLE3)})")
    return [model, data_file(gin_dir, name), gin_dir / "runs" / "train.gin"]
