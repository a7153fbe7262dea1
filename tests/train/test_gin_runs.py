"""The run files (gin/runs/*.gin), read as the `dctformer train` command in each one's header
gives them: every command yields a valid run, the settings that must agree across files and
docs agree, and one run's sizes are counted by hand. Files are read with
`gin_model.read_bindings`, except where gin's own parser, with the configurables registered,
is the check."""

import re
import shlex
from pathlib import Path

import gin
import pytest

from dctformer_tf.data.shapes import SHAPE_CLASSES
from dctformer_tf.plan import ASSUMED_LENGTHS
from dctformer_tf.train import experiment  # noqa: F401  (registers the configurables)
from dctformer_tf.train.gin_model import (
    REQUIRED,
    chunk_policy,
    read_bindings,
    run_from_bindings,
    selector_kwargs,
)

ROOT = Path(__file__).resolve().parents[2]
RUNS = sorted(path.stem for path in (ROOT / "gin" / "runs").glob("*.gin"))
# Test ids "runs/NAME.gin": a bare "accelerator" id would read as the marker of that name.
RUN_IDS = [f"runs/{run}.gin" for run in RUNS]
TABLE3 = ["lsun", "ffhq", "imagenet", "openimages", "plant_leaves", "retinopathy", "clevr"]
# Every selector a gin file may bind: the configurables of `train/experiment.py` and
# `train/gin_model.py`. A misspelt or renamed one would otherwise surface only at run time.
SELECTORS = {"train", "build_sequences", "build_chunks", "build_codec", "build_chunking",
             "architecture"}


def documented_command(run: str) -> tuple[list[Path], list[str]]:
    """The gin files and bindings of the `dctformer train` command in the header of
    gin/runs/<run>.gin, `--model_dir` as the binding `train.model_dir`."""
    comments = [line.lstrip("#").strip()
                for line in (ROOT / "gin" / "runs" / f"{run}.gin").read_text().splitlines()
                if line.startswith("#")]
    start = next(i for i, line in enumerate(comments) if line.startswith("dctformer train "))
    command = []
    for line in comments[start:]:
        command.append(line.removesuffix("\\"))
        if not line.endswith("\\"):
            break
    args = shlex.split(" ".join(command))
    values = {flag: [args[i + 1] for i, arg in enumerate(args) if arg == flag]
              for flag in ("--gin_file", "--gin_bindings", "--model_dir")}
    assert len(values["--model_dir"]) == 1, args
    bindings = [f"train.model_dir = {values['--model_dir'][0]!r}", *values["--gin_bindings"]]
    return [ROOT / f for f in values["--gin_file"]], bindings


def documented_run(run: str) -> dict:
    return read_bindings(*documented_command(run))


@pytest.mark.parametrize("run", RUNS, ids=RUN_IDS)
def test_the_documented_command_yields_a_complete_valid_run(run):
    files, bindings = documented_command(run)
    assert all(f.exists() for f in files), files
    assert ROOT / "gin" / "runs" / f"{run}.gin" in files
    kinds = [f.parent.name for f in files]
    assert (kinds.count("models"), kinds.count("data")) == (1, 1), files

    bound = read_bindings(files, bindings)
    assert [key for key, value in bound.items() if value is REQUIRED] == []
    assert {key.split(".")[0] for key in bound} <= SELECTORS
    run_from_bindings(bound)  # raises on settings that build no model
    chunk_policy(**selector_kwargs(bound, "build_chunks"))
    run_length = [bound.get(key) for key in ("train.total_steps", "train.tokens")]
    assert sum(value is not None for value in run_length) == 1, run_length  # as train needs


@pytest.mark.parametrize("run", RUNS, ids=RUN_IDS)
def test_gins_own_parser_accepts_the_documented_command(run):
    """gin checks each argument name against the registered function's signature, which
    `read_bindings` cannot."""
    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings(*documented_command(run))
    finally:
        gin.clear_config()


@pytest.mark.parametrize("run, classes", [
    ("class_conditional_shapes", len(SHAPE_CLASSES)),
    ("imagenet_class_conditional", 1000),  # ILSVRC-2012
    ("upsample_shapes", 0),
    ("colorize_shapes", 0),
    ("imagenet_upsample", 0),
    ("openimages_colorize", 0),
])
def test_a_class_conditional_run_has_one_class_per_label_of_its_source(run, classes):
    assert documented_run(run)["architecture.num_classes"] == classes


@pytest.mark.parametrize("run", ["upsample_shapes", "imagenet_upsample"])
def test_upsampling_runs_put_the_dc_band_first(run):
    """The low-resolution input is forced as the prefix: its DC coefficients must come first,
    as they do in the "bands" order."""
    assert run_from_bindings(documented_run(run)).codec.order == "bands"


@pytest.mark.parametrize("run", ["class_conditional_shapes", "imagenet_class_conditional"])
def test_class_conditional_runs_keep_the_paper_order(run):
    assert run_from_bindings(documented_run(run)).codec.order == "bands"


@pytest.mark.parametrize("run", ["class_conditional_shapes", "upsample_shapes",
                                 "imagenet_class_conditional", "imagenet_upsample"])
def test_only_colorization_restricts_the_loss(run):
    """Class-conditional and upsampling runs train on whole sequences (their prefix is
    forced at sampling only); a loss restricted to a prefix would leave the DC band unlearnt."""
    assert documented_run(run).get("build_chunks.loss_from_channel", 0) == 0


@pytest.mark.parametrize("run", ["colorize_shapes", "openimages_colorize"])
def test_colorization_runs_put_all_of_luma_first(run):
    assert run_from_bindings(documented_run(run)).codec.order == "luma_first"


def test_the_shapes_colorization_loss_starts_after_the_luma_channels():
    """Under "luma_first" the first S² = 8·8 = 64 channels are Y, the part that is given."""
    bound = documented_run("colorize_shapes")
    assert bound["build_codec.block_size"] == 8
    assert bound["build_chunks.loss_from_channel"] == 64


@pytest.mark.parametrize("run", [run for run in RUNS if run.endswith("_shapes")]
                         + ["quickstart"])
def test_shapes_runs_never_clip(run):
    """The CPU runs shrink the value vocabulary (CLIP) for speed; it must stay at or above
    the largest value any image can reach at their quality, so the sequences (and the demo's
    comparison with JPEG) are exactly JPEG's coefficients."""
    codec = run_from_bindings(documented_run(run)).codec
    assert codec.clip >= codec.max_magnitude, (codec.clip, codec.max_magnitude)


def test_class_conditional_shapes_by_hand():
    """small.gin + shapes.gin + train.gin + quickstart.gin + class_conditional_shapes.gin,
    later files overriding earlier ones."""
    bound = documented_run("class_conditional_shapes")
    run = run_from_bindings(bound)
    codec, model = run.codec, run.model
    assert (codec.resolution, codec.block_size, codec.quality, codec.clip) == (32, 8, 75, 255)
    assert model.grid_size == 4  # 32 / 8
    assert codec.num_positions == 16  # 4 × 4 luma blocks
    assert codec.num_channels == 193  # 3 × 8² DCT channels + EOS
    assert codec.num_values == 511  # −255 ... 255
    assert model.window == 160  # chunk 128 + overlap 32
    assert (run.max_length, model.num_classes, model.d_model, model.key_size) == (768, 3, 96, 24)
    assert run.data.source == "shapes"
    assert (bound["train.batch_size"], bound["train.total_steps"]) == (16, 1000)
    assert (bound["train.sample_every"], bound["train.sample_num"]) == (250, 6)


def _length_table() -> dict:
    """docs/benchmarks.md, "Sequence lengths of photos at the Table 3 geometries": per config,
    (resolution, block size, quality), max_length, mean, and the share over max_length."""
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    section = text.split("## Sequence lengths of photos at the Table 3 geometries")[1]
    section = section.split("\n## ")[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] not in TABLE3:
            continue
        geometry = tuple(int(v) for v in re.fullmatch(r"(\d+), (\d+), q(\d+)", cells[1]).groups())
        over, measured = (int(v) for v in re.match(r"(\d+) of (\d+)", cells[8]).groups())
        rows[cells[0]] = (geometry, int(cells[2].replace(",", "")),
                          int(cells[3].replace(",", "")), over / measured)
    return rows


@pytest.mark.parametrize("name", TABLE3)
def test_table3_data_files_assume_the_lengths_measured_at_their_geometry(name):
    """Each data file's max_length and the planner's assumed lengths (`plan.ASSUMED_LENGTHS`)
    are the docs' measurement at its model file's codec geometry; a model file that changed its
    resolution, block size or quality would leave them measured at another geometry."""
    gin_dir = ROOT / "gin"
    bound = read_bindings([gin_dir / "models" / f"{name}.gin", gin_dir / "data" / f"{name}.gin",
                           gin_dir / "runs" / "train.gin"],
                          ["train.model_dir = 'unused'"])
    geometry, max_length, mean, overlong = _length_table()[name]
    codec = run_from_bindings(bound).codec
    assert (codec.resolution, codec.block_size, codec.quality) == geometry
    assert bound["build_sequences.max_length"] == max_length
    assert ASSUMED_LENGTHS[name].mean_length == mean
    assert ASSUMED_LENGTHS[name].overlong_fraction == pytest.approx(overlong, abs=0.005)
