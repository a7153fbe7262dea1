"""tools/compute_ladder.py: the report reads each rung's record and evaluation, fits the power
laws the figures were made from, and predicts where they reach a goal."""

import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from tests.tools import load_tool

ladder = load_tool("compute_ladder")


def _rung(out, cpu_minutes, tokens, ratio, fid):
    folder = os.path.join(out, ladder.rung_name(cpu_minutes))
    os.makedirs(os.path.join(folder, "eval"))
    with open(os.path.join(folder, "rung.json"), "w") as f:
        json.dump({"cpu_minutes_target": cpu_minutes, "steps": int(cpu_minutes * 100),
                   "cpu_seconds": 60.0 * cpu_minutes, "wall_seconds": 30.0 * cpu_minutes,
                   "tokens": tokens, "command": "train ..."}, f)
    report = {"bpd": {"bpd": 0.2}, "compression": {"model_over_jpeg": ratio},
              "samples": {"fid": fid, "precision": 0.5, "recall": 0.1},
              "codec_floor": {"fid": 10.0},
              "structure": {"samples": {"mean": 0.01}, "data": {"mean": 0.3}}}
    with open(os.path.join(folder, "eval", "evaluation.json"), "w") as f:
        json.dump(report, f)
    # 8 x 8 tiles of 6 pixels, 2 apart (`image_grid`): 62 x 62
    Image.new("RGB", (62, 62)).save(os.path.join(folder, "eval", "samples_grid.png"))


def test_report_recovers_the_power_laws_and_their_goals(tmp_path, capsys):
    out = str(tmp_path / "ladder")
    # ratio = 2 · tokens^-0.05 and FID = 4000 · tokens^-0.3, tokens = 1e5 per CPU-minute
    for minutes in (2.5, 10, 40):
        tokens = 1e5 * minutes
        _rung(out, minutes, tokens, 2.0 * tokens**-0.05, 4000.0 * tokens**-0.3)
    os.makedirs(os.path.join(out, "rung_80"))  # not evaluated yet: left out
    # The class-conditional twins of two rungs, their error 1 - accuracy = 8 · tokens^-0.25
    # over their own tokens (2e5 per CPU-minute).
    for minutes, accuracy in ((10, 1 - 8 * 2e6**-0.25), (40, 1 - 8 * 8e6**-0.25)):
        twin = os.path.join(out, f"twin_{minutes}")
        os.makedirs(os.path.join(twin, "class_accuracy"))
        with open(os.path.join(twin, "generative.json"), "w") as f:
            json.dump({"accuracy": accuracy}, f)
        with open(os.path.join(twin, "rung.json"), "w") as f:
            json.dump({"tokens": 2e5 * minutes, "cpu_seconds": 60.0 * minutes}, f)
        with open(os.path.join(twin, "class_accuracy", "class_accuracy.json"), "w") as f:
            json.dump({"samples": {"circle": {"accuracy": 0.4}, "square": {"accuracy": 0.9},
                                   "triangle": {"accuracy": 0.7}}}, f)
    rungs = ladder.load_rungs(out)
    assert [r["cpu_minutes_target"] for r in rungs] == [2.5, 10, 40]
    fit = ladder.power_law(np.array([r["tokens"] for r in rungs]),
                           np.array([r["fid"] for r in rungs]))
    np.testing.assert_allclose(fit, (math.log(4000.0), -0.3), rtol=1e-9)
    # FID reaches 3 x 10 where 4000 t^-0.3 = 30.
    np.testing.assert_allclose(ladder.solve(fit, 30.0), (4000.0 / 30.0) ** (1 / 0.3), rtol=1e-9)
    assert ladder.solve((0.0, 0.1), 0.5) == math.inf  # a rising trend never gets there

    figure, grids = str(tmp_path / "fig" / "ladder.png"), str(tmp_path / "grids")
    ladder.main(["report", "--out", out, "--figure", figure, "--grids", grids])
    printed = capsys.readouterr().out
    assert printed.count("\n| 2.5 |") + printed.count("\n| 10 |") + printed.count("\n| 40 |") == 3
    assert f"| {1 - 8 * 2e6**-0.25:.3f} | circle 0.40, square 0.90, triangle 0.70 |" in printed
    assert printed.count("| not run | not run |") == 1
    # the twin's error reaches 0.2 where 8 t^-0.25 = 0.2, at 2e5 twin tokens per CPU-minute
    assert "twin generative-classifier error = 8 · tokens^-0.2500 (over 2 twin rungs)" in printed
    twin_needed = (8 / 0.2) ** 4
    assert (f"twin generative classifier >= 0.8: {twin_needed:.3g} tokens, about "
            f"{twin_needed / 2e5:.3g} CPU-minutes") in printed
    assert "tokens^-0.3000" in printed and "tokens^-0.0500" in printed
    needed = (4000.0 / 30.0) ** (1 / 0.3)
    assert f"{needed:.3g} tokens, about {needed / 1e5:.3g} CPU-minutes" in printed
    assert Image.open(figure).size == (900, 380)
    assert sorted(os.listdir(grids)) == [f"ladder_rung_{m}.png" for m in ("10", "2.5", "40")]
    assert Image.open(os.path.join(grids, "ladder_rung_10.png")).size == (62, 14)  # 2 rows


def test_tokens_come_from_the_train_log(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("step 10 ...\nDone at step 330, 5.28e+05 tokens seen\n")
    assert ladder.tokens_seen(str(log)) == 5.28e5
    log.write_text("Traceback ...\n")
    with pytest.raises(ValueError, match="no 'Done at step"):
        ladder.tokens_seen(str(log))


def test_an_interrupted_rung_is_trained_again_from_scratch(tmp_path, monkeypatch):
    out = str(tmp_path)
    stale = tmp_path / "rung_2.5" / "model" / "checkpoints"
    stale.mkdir(parents=True)
    (stale / "ckpt-10.index").write_text("from the run that was cut short")
    commands = []

    def fake_run(command, stdout, **kwargs):
        commands.append(command)
        assert not stale.exists()  # the cut-short run's checkpoints are gone before training
        stdout.write("Done at step 30, 4.5e+04 tokens seen\n")

    monkeypatch.setattr(ladder.subprocess, "run", fake_run)
    args = ladder.argparse.Namespace(gin_file=None, gin_bindings=None, steps_per_epoch=10)
    record = ladder.train_rung(out, 2.5, 30, args)
    assert record["tokens"] == 4.5e4 and record["steps"] == 30
    assert "train.total_steps = 30" in commands[0]
    assert ladder.train_rung(out, 2.5, 30, args) == record  # done: not trained again
    assert len(commands) == 1
