"""`dctformer --help` and every sub-command's `--help`, each in a fresh interpreter: they answer
without importing TensorFlow, so no TensorFlow log line can appear (timings: tools/bench_cli.py)."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dctformer_tf.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]

# The flags a reader of each help text looks for first.
KEY_FLAGS = {
    None: ["--verbose", "encode", "train", "sample", "evaluate", "export"],
    "encode": ["--out", "--quality", "--block-size", "--order", "--resolution"],
    "decode": ["--out", "--prefix"],
    "show": ["--out", "--quality", "--block-size"],
    "lengths": ["--resolution", "--quality", "--block-size", "--split", "--num", "--max_length",
                "--data_dir", "--out", "--json"],
    "train": ["--gin_file", "--gin_bindings", "--model_dir", "--strategy", "mirrored"],
    "export": ["--model_dir", "--checkpoint", "--out", "--max_length"],
    "sample": ["--model_dir", "--out", "--num", "--temperature", "--top_k", "--top_p", "--head",
               "--seed", "--class"],
    "upsample": ["--model_dir", "--out", "--num_samples", "--original", "--temperature"],
    "colorize": ["--model_dir", "--out", "--num_samples", "--original", "--temperature"],
    "evaluate": ["--model_dir", "--out", "--metrics", "fid", "--features", "--split",
                 "--gin_file"],
    "train-portable": ["--gin_file", "--gin_bindings", "--model_dir", "--steps", "--minutes",
                       "--workers"],
    "import-weights": ["--model_dir", "--weights"],
}
# Independent markers of TensorFlow's start-up logs (oneDNN notice, CUDA stub, CPU features).
TF_LOG_MARKERS = ("oneDNN", "cuda", "cpu_feature_guard", "TensorFlow binary is optimized",
                  "absl::InitializeLog")
HEAVY_MODULES = ("tensorflow", "keras", "tensorflow_datasets", "tensorflow_probability", "gin",
                 "numpy", "PIL")


def commands() -> list:
    subparsers = [action for action in build_parser()._actions
                  if isinstance(action, argparse._SubParsersAction)]
    return sorted(subparsers[0].choices)


def fresh_env() -> dict:
    """This checkout first on the path; TF's log level as a user's shell has it (unset), so
    that TensorFlow, if imported, would log."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_cli(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dctformer_tf.cli.main", *argv],
                          capture_output=True, text=True, env=fresh_env(), timeout=120)


def test_every_command_has_key_flags_listed():
    assert sorted(k for k in KEY_FLAGS if k) == commands()


@pytest.mark.parametrize("command", [None, *sorted(KEY_FLAGS.keys() - {None})],
                         ids=lambda c: c or "dctformer")
def test_help_names_key_flags_without_tensorflow_logs(command):
    done = run_cli(*filter(None, [command]), "--help")
    assert done.returncode == 0, done.stderr
    for flag in KEY_FLAGS[command]:
        assert flag in done.stdout, (command, flag)
    printed = done.stdout + done.stderr
    for marker in TF_LOG_MARKERS:
        assert marker.lower() not in printed.lower(), (command, marker, printed)
    assert done.stderr == ""


def test_parser_and_help_import_no_heavy_module():
    script = f"""
import sys
from dctformer_tf.cli.main import build_parser
for argv in [["--help"]] + [[c, "--help"] for c in {commands()!r}]:
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit:
        assert exit.code == 0, argv
print(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY_MODULES!r}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=fresh_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv", [
    ["--verbose", "decode", "x.npz", "--out", "y.png"],
    ["decode", "x.npz", "--out", "y.png", "--verbose"],
    ["decode", "--verbose", "x.npz", "--out", "y.png"],
])
def test_verbose_before_or_after_the_command(argv):
    assert build_parser().parse_args(argv).verbose is True


def test_quiet_by_default():
    assert build_parser().parse_args(["decode", "x.npz", "--out", "y.png"]).verbose is False
