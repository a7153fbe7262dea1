"""tools/compile_check.py: the XLA compile of a Table 3 train step on the CPU (slow: the
retinopathy model cut to the first block of every stack, full width, vocabularies and window),
its argument errors and its reading of XLA's buffer assignment."""

import json
import subprocess
import sys

import pytest

from tests.tools import TOOLS, load_tool

TOOL = TOOLS / "compile_check.py"


compile_check = load_tool("compile_check")


def test_argument_errors_say_what_is_wrong(capsys):
    for argv, message in ((["nope"], "no gin/models file for nope"),
                          (["clevr", "--depth", "0"], "--depth must be >= 1")):
        with pytest.raises(SystemExit) as exit_info:
            compile_check.main(argv)
        assert exit_info.value.code == 2  # argparse's usage error
        assert message in capsys.readouterr().err


def test_model_config_reads_the_run_files_and_cuts_the_depth():
    config, run = compile_check.model_config("retinopathy", depth=1)
    assert [len(getattr(config, f"{x}_spec")) for x in ("encoder", "channel", "position",
                                                        "value")] == [1, 1, 1, 1]
    assert run.max_length == 200000  # gin/data/retinopathy.gin: the compact batch's buffer
    assert config.window == run.chunking.window
    full, _ = compile_check.model_config("retinopathy", None)
    assert len(full.value_spec) > 1


def test_the_plan_beside_xla_splits_the_step_into_activations_and_gradients():
    from dctformer_tf.plan import model_from_config, predicted_step

    config, run = compile_check.model_config("tiny", None)
    planned = compile_check.planned_bytes("tiny", None)
    m = model_from_config("tiny", config, max_length=run.max_length)
    assert planned["planned_gradients_bytes"] == 4 * m.parameters
    assert planned["planned_activations_bytes"] + planned["planned_gradients_bytes"] == \
        predicted_step(m, 1)


def test_temp_bytes_reads_the_preallocated_temp_of_the_train_step(tmp_path):
    # The lines XLA:CPU writes (TF 2.21), shortened: parameters are not temporaries.
    (tmp_path / "module_0036.a_inference_train_step_1__.395.cpu_after_optimizations-"
     "buffer-assignment.txt").write_text(
        "allocation 0: size 4, parameter 3, shape |f32[]| at ShapeIndex {}:\n"
        "allocation 1: size 1572864, parameter 176, shape |f32[4,4,192,128]| at ShapeIndex {}\n"
        "allocation 2431: size 269177028, preallocated-temp:\n")
    assert compile_check.temp_bytes(str(tmp_path)) == 269177028
    with pytest.raises(FileNotFoundError, match="no buffer assignment"):
        compile_check.temp_bytes(str(tmp_path / "empty"))


@pytest.mark.slow
def test_a_table3_train_step_compiles_with_xla():
    out = subprocess.run([sys.executable, str(TOOL), "retinopathy", "--depth", "1", "--json"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    (row,) = json.loads(out.stdout)
    assert "error" not in row
    assert row["config"] == "retinopathy" and row["depth"] == 1
    assert row["parameters"] > 50_000_000  # full width: embeddings and logits of V = 6401
    assert row["optimized_hlo_chars"] > 0 and row["optimized_hlo_s"] > 0
