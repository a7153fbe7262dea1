"""`make demo`'s script: its codec stage from a user's shell prints the demo's own lines and
none of TensorFlow's C++ start-up logs (the training stages run the same CLI in-process)."""

import os
import subprocess
import sys

from tests.cli.test_help import ROOT, TF_LOG_MARKERS, fresh_env


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


def test_demo_runs_with_verbose(tmp_path):
    run_demo(tmp_path, "--verbose")  # the flag reaches every CLI call (each accepts it)
