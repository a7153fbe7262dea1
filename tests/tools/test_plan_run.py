"""tools/plan_run.py: the memory plan of the Table 3 runs. Parameter and optimizer bytes
against the analytic parameter count, the attention-score term against a hand count, the
properties every plan must have (monotonic in batch, remat and bfloat16 never add
activations, the largest batch is the largest that fits), and the command line (--json,
errors)."""

import json

import pytest

from dctformer_tf.model.configs import count_parameters
from tests.tools import load_tool

plan_run = load_tool("plan_run")


@pytest.fixture(scope="module")
def models():
    return plan_run.load_table3(plan_run.TABLE3)


def test_parameter_and_optimizer_bytes_follow_the_analytic_count(models):
    import gin

    from dctformer_tf.train.experiment import gin_model_config

    for m in models:
        gin.clear_config()
        gin.parse_config_files_and_bindings(
            [str(plan_run.GIN_MODELS / f"{m.name}.gin"), str(plan_run.TRAIN_GIN)],
            ["train.model_dir = 'unused'"])
        count = count_parameters(gin_model_config().model_kwargs())
        for precision, remat in plan_run.SETTINGS:
            parts = plan_run.replica_bytes(m, 4, precision, remat)
            assert parts["parameters"] == 4 * count, m.name
            assert parts["optimizer"] == 8 * count, m.name
            assert parts["gradients"] == 4 * count, m.name
    gin.clear_config()


def test_attention_scores_of_lsun_by_hand(models):
    lsun = next(m for m in models if m.name == "lsun")
    heads, t, n = 14, 1024, 24 * 24  # Table 3 LSUN: 14 heads, window 896 + 128, 24x24 tokens
    decoder_attention = 4 + 4 + 6  # attention layers of the channel, position, value specs
    float32 = 4 * heads * (4 * n * n + decoder_attention * (t * t + t * n))
    terms = plan_run.activation_terms(lsun, 1, "float32", remat=False)
    assert terms["attention scores"] == float32
    # bfloat16 keeps the float32 softmax and its bfloat16 cast
    terms = plan_run.activation_terms(lsun, 1, "bfloat16", remat=False)
    assert terms["attention scores"] == float32 * 6 // 4


def test_grid_attention_bias_of_lsun_by_hand(models):
    """With `attention_bias="grid_2d"`, LSUN (14 heads, window 1024) holds per sample the
    int32 [T, T] offset index (4 MiB) and the float32 [H, T, T] gradient of the bias
    (56 MiB); with remat also the bias itself, kept for the recomputation (56 MiB more)."""
    import dataclasses

    lsun = next(m for m in models if m.name == "lsun")
    with_bias = dataclasses.replace(lsun, grid_bias=True)
    mib = 2**20
    for precision, remat in plan_run.SETTINGS:
        plain = plan_run.activation_terms(lsun, 2, precision, remat)
        terms = plan_run.activation_terms(with_bias, 2, precision, remat)
        assert "grid attention bias" not in plain
        assert terms["total"] - plain["total"] == 2 * (116 if remat else 60) * mib


def test_gin_bindings_reach_the_plan(capsys):
    binding = 'build_model.attention_bias = "grid_2d"'
    settings = {}
    for argv in ([], ["--gin_bindings", binding]):
        plan_run.main(["--json", "--config", "lsun", "--accelerator", "8xa100-80gb", *argv])
        settings[bool(argv)] = json.loads(capsys.readouterr().out)["configs"]["lsun"]["settings"]
    for plain, biased in zip(settings[False], settings[True], strict=True):
        assert "grid attention bias" not in plain["activation_terms"]
        extra = biased["per_replica_batch"] * (116 if biased["remat"] else 60) * 2**20
        assert biased["activation_terms"]["grid attention bias"] == extra
        assert biased["bytes"]["activations"] - plain["bytes"]["activations"] == extra


def test_model_from_config_reads_the_attention_bias():
    from dctformer_tf.model.configs import ModelConfig

    for name, grid_bias in (("window-1024", False), ("window-1024-grid", True)):
        config = ModelConfig(**plan_run.VALIDATION[name][0])
        assert plan_run.model_from_config(name, config).grid_bias is grid_bias


def test_bytes_grow_with_the_batch(models):
    for m in models:
        for precision, remat in plan_run.SETTINGS:
            totals = [plan_run.total(plan_run.replica_bytes(m, b, precision, remat))
                      for b in (1, 2, 3, 8, 16, 64)]
            assert totals == sorted(set(totals)), (m.name, precision, remat)


def test_remat_and_bfloat16_never_add_activations(models):
    for m in models:
        for batch in (1, 4, 16):
            for precision in plan_run.PRECISIONS:
                with_remat = plan_run.activation_terms(m, batch, precision, remat=True)
                without = plan_run.activation_terms(m, batch, precision, remat=False)
                assert with_remat["total"] <= without["total"], (m.name, precision, batch)
            for remat in (False, True):
                bf16 = plan_run.activation_terms(m, batch, "bfloat16", remat)
                f32 = plan_run.activation_terms(m, batch, "float32", remat)
                # (the bfloat16 copies of the weights, a term of their own, can outweigh
                # the saving at small batches)
                assert bf16["total"] <= f32["total"], (m.name, remat, batch)


def test_the_largest_batch_fits_and_one_more_does_not(models):
    for accelerator in plan_run.ACCELERATORS.values():
        plans = plan_run.plans_json(models, accelerator, headroom=0.1)
        budget = plans["budget_bytes_per_replica"]
        for m in models:
            for s in plans["configs"][m.name]["settings"]:
                largest = s["largest_batch_per_replica"]
                at = [plan_run.total(plan_run.replica_bytes(m, b, s["precision"], s["remat"]))
                      for b in (largest, largest + 1)]
                assert largest == 0 or at[0] <= budget, (m.name, s["precision"], s["remat"])
                assert at[1] > budget, (m.name, s["precision"], s["remat"])
                assert s["fits"] == (largest >= s["per_replica_batch"])


def test_accumulation_makes_up_the_batch_with_micro_batches_that_fit(models):
    accelerator = plan_run.ACCELERATORS["tpu-v3-32"]
    budget = int(accelerator.memory_bytes * 0.9)
    for m in models:
        for s in plan_run.plan_config(m, accelerator, 0.1)["settings"]:
            steps, micro = s["accumulation_steps"], s["micro_batch"]
            if steps is None:
                assert s["largest_batch_per_replica"] < 1 or plan_run.total(plan_run.replica_bytes(
                    m, 1, s["precision"], s["remat"], accumulation=2)) > budget
                continue
            assert steps * micro == s["per_replica_batch"]
            assert s["bytes_at_micro_batch"] <= budget
            if steps > 1:  # the accumulator is counted
                assert s["bytes_at_micro_batch"] == plan_run.total(plan_run.replica_bytes(
                    m, micro, s["precision"], s["remat"])) + 4 * m.parameters


def test_accumulation_steps():
    assert plan_run.accumulation_steps(16, 16) == (1, 16)
    assert plan_run.accumulation_steps(16, 5) == (4, 4)
    assert plan_run.accumulation_steps(14, 5) == (7, 2)  # equal micro-batches only
    assert plan_run.accumulation_steps(16, 0) is None


def test_json_has_every_table3_config(capsys):
    plan_run.main(["--json", "--accelerator", "8xa100-80gb"])
    out = json.loads(capsys.readouterr().out)
    assert set(out["configs"]) == set(plan_run.TABLE3)
    assert out["accelerator"]["replicas"] == 8
    for config in out["configs"].values():
        assert len(config["settings"]) == 4
        assert config["global_batch"] == config["paper_batch"]
        assert config["smallest"]["smallest"] in plan_run.ACCELERATORS
        for s in config["settings"]:
            assert set(s["bytes"]) >= {"parameters", "optimizer", "gradients", "activations",
                                       "total"}


def test_custom_machine(capsys):
    plan_run.main(["--replicas", "64", "--memory-gib", "16", "--config", "lsun"])
    out = capsys.readouterr().out
    assert "64 replicas x 16 GiB" in out and "512 = 8 per replica" in out


@pytest.mark.parametrize("argv, message", [
    (["--accelerator", "tpu-v9"], "invalid choice: 'tpu-v9'"),
    (["--replicas", "8"], "--replicas and --memory-gib go together"),
    (["--replicas", "0", "--memory-gib", "16"], "--replicas must be >= 1"),
    (["--headroom", "1.5"], "--headroom must be in [0, 1)"),
])
def test_argument_errors_say_what_is_wrong(argv, message, capsys):
    with pytest.raises(SystemExit):
        plan_run.main(argv)
    assert message in capsys.readouterr().err


def test_unknown_config_names_the_table3_files():
    with pytest.raises(SystemExit, match="no model file .*nope.gin.*lsun, ffhq"):
        plan_run.main(["--config", "nope"])


def test_input_side_of_every_table3_config(capsys):
    """Input plan (docs/design.md §2.4): compact examples at most 1/8 of dense ones at the
    LSUN and FFHQ geometries, encodes per example = 1 / (r · E[min(1, L / l_max)]) from the
    data file's assumed mean length, and host cores = steps/s · batch · CPU s per example."""
    plan_run.main(["--json", "--steps-per-second", "2", "--encode-ms-per-megapixel", "50"])
    configs = json.loads(capsys.readouterr().out)["configs"]
    for name, config in configs.items():
        p = config["input"]
        keep = (1 - p["assumed_overlong_fraction"]) * min(
            1.0, p["assumed_mean_kept_length"] / p["l_max"])
        assert p["mean_keep_probability"] == pytest.approx(keep)
        assert p["paper_encodes_per_example"] == pytest.approx(1 / keep)
        assert p["this_run_encodes_per_example"] == pytest.approx(
            1 / (p["examples_per_encode"] * keep))
        assert p["encode_cpu_s"] == pytest.approx(50e-3 * p["resolution"] ** 2 / 1e6)
        assert p["this_run_host_cores"] == pytest.approx(
            2 * config["paper_batch"] * p["this_run_encodes_per_example"] * p["encode_cpu_s"])
        assert p["compact_bytes"] < p["dense_bytes"], name
    for name in ("lsun", "ffhq"):
        assert configs[name]["input"]["ratio"] <= 1 / 8
        assert configs[name]["input"]["this_run_encodes_per_example"] <= 0.5
    # The LSUN dense example by hand: int32 [48, 48, 192] image, two [1024, 3] windows, a
    # [1024] mask, content size [2] and five scalars.
    assert configs["lsun"]["input"]["dense_bytes"] == 4 * (48 * 48 * 192 + 6 * 1024 + 1024
                                                           + 2 + 5)


def test_cpu_models_plan_memory_without_an_input_side(capsys):
    """tiny and small have no data file of their own: shapes.gin gives their max_length, and
    no length distribution is assumed, so there is no input plan."""
    plan_run.main(["--config", "small", "--json"])
    config = json.loads(capsys.readouterr().out)["configs"]["small"]
    assert "input" not in config and len(config["settings"]) == 4
    plan_run.main(["--config", "small", "tiny", "--smallest"])
    assert "small" in capsys.readouterr().out


@pytest.mark.parametrize("encoder", ["ops", "auto"])
def test_measured_encode_runs_the_chosen_encoder(monkeypatch, encoder):
    """--measure-encode times the pipeline with the encoder --encoder names, over every
    repeat of its canvases, and returns CPU seconds per image."""
    import types

    from dctformer_tf.data import pipeline
    from dctformer_tf.dct import SparseCodec

    calls = []
    real = pipeline.encode_dataset

    def recording(source, *args, **kwargs):
        calls.append((kwargs["encoder"], int(source.cardinality())))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pipeline, "encode_dataset", recording)
    run = types.SimpleNamespace(codec=SparseCodec(resolution=32, block_size=8, quality=75),
                                max_length=2000)
    seconds = plan_run.measure_encode_seconds(run, num=2, repeats=3, encoder=encoder)
    assert calls == [(encoder, 6)] and 0 < seconds < 1
    with pytest.raises(SystemExit):
        plan_run.parse_args(["--measure-encode", "--encoder", "numpy"])
