"""tools/accelerator_check.sh --dry-run: every stage at toy size on the CPU under JAX, on a
host where TensorFlow cannot be imported; then the run it trained comes home: its weights
become a checkpoint that the TensorFlow code loads. The dry run takes about 100 s of one
core, so it is in the slow tier (as the TensorFlow-only check's dry run was); its syntax and
argument errors are checked in the default tier."""

import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dctformer_tf.runs import load_trained_model
from dctformer_tf.train.portable import import_weights
from tests.backends.test_no_tensorflow import no_tensorflow_env

pytest.importorskip("jax")

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accelerator_check")
    out = folder / "out"
    result = subprocess.run(
        ["bash", str(ROOT / "tools" / "accelerator_check.sh"), "--dry-run", "--out", str(out),
         "--python", sys.executable, "--wheels", str(folder / "no_wheels")],
        env=no_tensorflow_env(folder), capture_output=True, text=True, cwd=ROOT, timeout=900)
    return result, out


@pytest.mark.slow
def test_every_stage_runs_and_the_table_is_written(dry_run):
    result, out = dry_run
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    stages = [row["stage"] for row in rows]
    assert stages == ["peak", "step", "step", "choose", "train"]
    steps = [row for row in rows if row["stage"] == "step"]
    assert [row["label"] for row in steps] == ["small", "lsun-width"]
    for row in steps:
        assert row["backend"] == "jax" and row["precision"] == "mixed_bfloat16"
        assert row["step_ms"] > 0 and 0 < row["mfu"] < 1
        # The plan counts the same model: its parameters (the trainer adds its token count).
        assert row["plan_parameters"] == row["parameters"] - 1
        assert row["planned_gib"] > 0
    train = rows[-1]
    assert train["steps"] == 6 and train["tokens_seen"] > 0
    assert train["parameters"] == rows[3]["parameters"] + 1  # the model `choose` picked
    table = (out / "table.txt").read_text()
    assert "lsun-width" in table and "shapes run: 6 steps" in table


@pytest.mark.slow
def test_what_comes_back_fits_the_device_tools_limits(dry_run):
    _, out = dry_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in files)
    weights = next((out / "shapes_run" / "weights").iterdir())
    parameters = json.loads((out / "results.jsonl").read_text().splitlines()[-1])["parameters"]
    assert weights.stat().st_size < 4.5 * parameters  # float32 weights, no optimizer state
    assert all(len(p.relative_to(out).parts) <= 3 for p in files)  # two folders down at most


@pytest.mark.slow
def test_the_run_comes_home_to_tensorflow(dry_run, tmp_path):
    _, out = dry_run
    run_dir = tmp_path / "shapes_run"  # a copy: the other tests read what came back
    shutil.copytree(out / "shapes_run", run_dir)
    checkpoint = import_weights(str(run_dir))
    assert checkpoint.endswith("ckpt-6")
    model, run = load_trained_model(str(run_dir))
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert run.model.d_model == rows[3]["d_model"]  # the model `choose` picked
    window = run.model.window
    x = {"partial_image": np.zeros((1, *run.model.input_shapes()["partial_image"][1:]), "int32"),
         "inputs": np.zeros((1, window, 3), "int32"), "targets": np.zeros((1, window, 3), "int32")}
    logits = model(x)
    assert all(np.isfinite(v.numpy()).all() for v in logits.values())


def test_the_script_parses():
    script = str(ROOT / "tools" / "accelerator_check.sh")
    assert subprocess.run(["bash", "-n", script], capture_output=True).returncode == 0


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["--minutes", "soon"], "--minutes 'soon' is not a number"),
    (["--workers", "many"], "--workers 'many' is not a whole number"),
])
def test_a_bad_argument_is_named_with_exit_2(tmp_path, args, message):
    result = subprocess.run(["bash", str(ROOT / "tools" / "accelerator_check.sh"),
                             "--out", str(tmp_path), *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2 and message in result.stderr
