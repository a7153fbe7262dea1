"""`make demo`'s script: its codec stage from a user's shell prints the demo's own lines and
none of TensorFlow's C++ start-up logs (the training stages run the same CLI in-process);
`--verbose` reaches every stage and every CLI call."""

import os
import subprocess
import sys

import pytest

from tests.cli.test_help import ROOT, TF_LOG_MARKERS, fresh_env
from tests.tools import load_tool


def run_demo(out, *flags) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--out",
                           str(out), "--skip_train", *flags], capture_output=True, text=True,
                          env=fresh_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "round trip PSNR" in done.stdout
    assert (out / "shapes_0_square_decoded.png").exists()
    return done


def test_demo_codec_stage_prints_no_tensorflow_log_line(tmp_path):
    done = run_demo(tmp_path)
    printed = done.stdout + done.stderr
    for marker in (*TF_LOG_MARKERS, "cuInit"):
        assert marker.lower() not in printed.lower(), (marker, done.stderr)


def test_verbose_reaches_every_stage_and_cli_call(tmp_path, monkeypatch):
    demo = load_tool("demo")
    stages = []
    for name in ("codec_stage", "train_stage", "sample_stage"):
        monkeypatch.setattr(demo, name, lambda *args, name=name, **_: stages.append((name,
                                                                                     args[-1])))
    monkeypatch.setattr(demo, "evaluate_stage", lambda *args: None)
    monkeypatch.setattr(demo.logs, "setup_logging", lambda verbose: stages.append(("logs",
                                                                                   verbose)))
    assert demo.main(["--out", str(tmp_path), "--verbose"]) == 0
    assert stages == [("logs", True), ("codec_stage", True), ("train_stage", True),
                      ("sample_stage", True)]

    calls = []
    monkeypatch.setattr(demo, "dctformer", lambda argv: calls.append(argv) or len(calls) - 1)
    demo.cli(["show", "a.png"], verbose=True)
    assert calls == [["show", "a.png", "--verbose"]]
    with pytest.raises(SystemExit, match="`dctformer sample --num 2` failed"):
        demo.cli(["sample", "--num", "2"], verbose=False)  # returns 1: a failure
    assert calls[1] == ["sample", "--num", "2"]
