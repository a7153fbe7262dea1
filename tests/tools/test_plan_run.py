"""tools/plan_run.py, the command line over dctformer_tf.plan (whose arithmetic tests/plan
checks): what it reads from the gin files (paper batch, bindings, the input side of the
configs with assumed lengths), its outputs (--json, --predict, tables) and its errors. The
--predict run on a host without TensorFlow is what tools/accelerator_check.sh relies on."""

import json
import subprocess
import sys

import pytest

from dctformer_tf.plan import ACCELERATORS, TABLE3, predictions
from tests.tools import TOOLS, load_tool

plan_run = load_tool("plan_run")


def test_json_has_every_table3_config_with_its_input_side(capsys):
    plan_run.main(["--json", "--accelerator", "8xa100-80gb", "--steps-per-second", "2",
                   "--encode-ms-per-megapixel", "50"])
    out = json.loads(capsys.readouterr().out)
    assert list(out["configs"]) == list(TABLE3)
    assert out["accelerator"]["replicas"] == 8
    for name, config in out["configs"].items():
        assert len(config["settings"]) == 4
        assert config["global_batch"] == config["paper_batch"]  # 8 GPUs divide every batch
        assert config["smallest"]["smallest"] in ACCELERATORS
        for s in config["settings"]:
            assert set(s["bytes"]) >= {"parameters", "optimizer", "gradients", "activations",
                                       "total"}
        p = config["input"]
        assert (p["paper_batch"], p["steps_per_second"]) == (config["paper_batch"], 2)
        assert p["encode_cpu_s"] == pytest.approx(50e-3 * p["resolution"] ** 2 / 1e6)
        assert p["examples_per_encode"] > 1 and p["l_max"] == p["max_length"], name
        # encodes per example = 1 / (r · E[keep]), keep = min(1, L / l_max) of the kept
        # lengths, times the share not over max_length (docs/design.md §2.4)
        keep = (1 - p["assumed_overlong_fraction"]) * min(
            1.0, p["assumed_mean_kept_length"] / p["l_max"])
        assert p["mean_keep_probability"] == pytest.approx(keep)
        assert p["paper_encodes_per_example"] == pytest.approx(1 / keep)
        assert p["this_run_encodes_per_example"] == pytest.approx(
            1 / (p["examples_per_encode"] * keep))
        assert p["this_run_host_cores"] == pytest.approx(
            2 * config["paper_batch"] * p["this_run_encodes_per_example"] * p["encode_cpu_s"])
        assert p["compact_bytes"] < p["dense_bytes"], name
    for name in ("lsun", "ffhq"):
        assert out["configs"][name]["input"]["ratio"] <= 1 / 8
        assert out["configs"][name]["input"]["this_run_encodes_per_example"] <= 0.5
    assert out["configs"]["lsun"]["paper_batch"] == 512  # Table 3


def test_gin_bindings_reach_the_plan(capsys):
    binding = 'architecture.attention_bias = "grid_2d"'
    settings = {}
    for argv in ([], ["--gin_bindings", binding]):
        plan_run.main(["--json", "--config", "lsun", "--accelerator", "8xa100-80gb", *argv])
        settings[bool(argv)] = json.loads(capsys.readouterr().out)["configs"]["lsun"]["settings"]
    for plain, biased in zip(settings[False], settings[True], strict=True):
        assert "grid attention bias" not in plain["activation_terms"]
        # LSUN's grid bias by hand: per sample, 60 MiB of bias tables (116 MiB with remat).
        extra = biased["per_replica_batch"] * (116 if biased["remat"] else 60) * 2**20
        assert biased["activation_terms"]["grid attention bias"] == extra
        assert biased["bytes"]["activations"] - plain["bytes"]["activations"] == extra


def test_predict_prints_the_four_settings(capsys):
    plan_run.main(["--predict", "3", "--config", "small", "lsun"])
    out = json.loads(capsys.readouterr().out)
    models = [m for m, _ in plan_run.load_models(["small", "lsun"]).values()]
    assert out == predictions(models, 3)
    assert set(out["lsun"]) == {"parameters", "float32", "float32+remat", "bfloat16",
                                "bfloat16+remat"}


def test_predict_runs_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    from tests.backends.test_no_tensorflow import no_tensorflow_env

    result = subprocess.run(
        [sys.executable, str(TOOLS / "plan_run.py"), "--predict", "2", "--config", "small"],
        env=no_tensorflow_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["small"]["float32"] > 0


def test_custom_machine(capsys):
    plan_run.main(["--replicas", "64", "--memory-gib", "16", "--config", "lsun"])
    out = capsys.readouterr().out
    assert "64 replicas x 16 GiB" in out and "512 = 8 per replica" in out
    assert "Input side" in out and "lsun" in out.split("Input side")[1]


def test_cpu_models_plan_memory_without_an_input_side(capsys):
    """tiny and small have no data file of their own: shapes.gin gives their max_length, and
    no length distribution is assumed, so there is no input plan."""
    plan_run.main(["--config", "small", "--json"])
    config = json.loads(capsys.readouterr().out)["configs"]["small"]
    assert "input" not in config and len(config["settings"]) == 4
    plan_run.main(["--config", "small", "tiny", "--smallest"])
    out = capsys.readouterr().out
    assert "small" in out and "tiny" in out


@pytest.mark.parametrize("argv, message", [
    (["--accelerator", "tpu-v9"], "invalid choice: 'tpu-v9'"),
    (["--replicas", "8"], "--replicas and --memory-gib go together"),
    (["--replicas", "0", "--memory-gib", "16"], "--replicas must be >= 1"),
    (["--headroom", "1.5"], "--headroom must be in [0, 1)"),
    (["--predict", "0"], "--predict must be a positive batch"),
    (["--measure-encode", "--encoder", "numpy"], "invalid choice: 'numpy'"),
])
def test_argument_errors_say_what_is_wrong(argv, message, capsys):
    with pytest.raises(SystemExit):
        plan_run.main(argv)
    assert message in capsys.readouterr().err


def test_unknown_config_names_the_table3_files():
    with pytest.raises(SystemExit, match="no model file .*nope.gin.*lsun, ffhq"):
        plan_run.main(["--config", "nope"])
