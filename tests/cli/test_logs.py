"""TensorFlow's C++ logs are hidden unless --verbose: `cli.logs` on a stand-in module that writes
log lines copied from TensorFlow 2.21's own start-up output, then on a real command and on a
real TensorFlow import, each in a fresh interpreter."""

import logging
import os
import subprocess
import sys
import uuid

import pytest
from absl import logging as absl_logging
from PIL import Image

from dctformer_tf.cli import logs
from tests.cli.test_help import TF_LOG_MARKERS, fresh_env

# As TensorFlow 2.21 (absl format) and 2.19 (its own format) print them at import.
CPP_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796078696.743568    4132 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796078696.744413    4132 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory: "
    "Attempting to register factory for plugin cuDNN when one has already been registered",
    "2025-09-17 14:44:05.176998: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:467] "
    "Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when one "
    "has already been registered",
    "I0000 00:00:1796078697.222328    4132 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
]


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """Writes a module that prints CPP_LINES to file descriptor 2, as a C++ library would,
    and one line of its own through sys.stderr; returns a function making it, by name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(body: str = "") -> str:
        name = f"stand_in_{uuid.uuid4().hex}"
        cpp = "".join(line + "\n" for line in CPP_LINES).encode()
        (tmp_path / f"{name}.py").write_text(
            f"import os, sys\nos.write(2, {cpp!r})\n"
            "sys.stderr.write('a line of its own\\n')\nLOADED = True\n" + body)
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    return make


def test_quiet_import_drops_cpp_lines_and_keeps_the_rest(stand_in, capfd):
    name = stand_in()
    finders = list(sys.meta_path)
    with logs.quiet_import(name):
        module = __import__(name)
        os.write(2, b"after the import\n")
    assert module.LOADED
    assert type(module.__loader__).__name__ == "SourceFileLoader"  # its own loader, not ours
    assert sys.meta_path == finders
    err = capfd.readouterr().err
    assert "a line of its own\n" in err and "after the import\n" in err
    for line in CPP_LINES:
        assert line not in err


def test_without_quiet_import_the_lines_show(stand_in, capfd):
    __import__(stand_in())
    err = capfd.readouterr().err
    for line in CPP_LINES:
        assert line in err


def test_failed_import_restores_stderr_and_keeps_its_message(stand_in, capfd):
    name = stand_in("raise RuntimeError('broken library')\n")
    with pytest.raises(RuntimeError, match="broken library"), logs.quiet_import(name):
        __import__(name)
    os.write(2, b"stderr is back\n")
    err = capfd.readouterr().err
    assert "a line of its own\n" in err and "stderr is back\n" in err
    assert CPP_LINES[1] not in err


def test_quiet_import_of_a_loaded_module_changes_nothing():
    finders = list(sys.meta_path)
    with logs.quiet_import("os"):
        assert sys.meta_path == finders


@pytest.fixture
def restore_logging(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    ours, root = logging.getLogger("dctformer_tf"), logging.getLogger()
    levels = ours.level, root.level, absl_logging.get_verbosity()
    yield
    ours.setLevel(levels[0])
    root.setLevel(levels[1])
    absl_logging.set_verbosity(levels[2])


def test_setup_logging_quiet(restore_logging, monkeypatch):
    logs.setup_logging(verbose=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert logging.getLogger("dctformer_tf").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("absl").getEffectiveLevel() == logging.ERROR
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")  # a user's own setting wins
    logs.setup_logging(verbose=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"


def test_setup_logging_verbose(restore_logging):
    logs.setup_logging(verbose=True)
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert logging.getLogger("dctformer_tf").getEffectiveLevel() == logging.DEBUG
    assert logging.getLogger().getEffectiveLevel() == logging.INFO


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "image.png"
    Image.new("RGB", (16, 16), (200, 30, 90)).save(path)
    return path


def encode(png, *flags) -> subprocess.CompletedProcess:
    out = png.with_suffix(".npz")
    done = subprocess.run([sys.executable, "-m", "dctformer_tf.cli.main", "encode", str(png),
                           "--out", str(out), *flags], capture_output=True, text=True,
                          env=fresh_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.exists() and "triples (EOS included)" in done.stdout
    return done


def test_encode_prints_no_tensorflow_log_line(png):
    done = encode(png)
    for marker in TF_LOG_MARKERS:
        assert marker.lower() not in (done.stdout + done.stderr).lower(), done.stderr


def test_encode_runs_with_verbose(png):
    encode(png, "--verbose")


def test_tensorflow_import_and_xla_run_are_quiet():
    """The real thing: TensorFlow imported under `quiet_import`, then an XLA-compiled function
    (whose service start TF logs at INFO)."""
    script = """
from dctformer_tf.cli import logs
logs.setup_logging(verbose=False)
with logs.quiet_import("tensorflow"):
    import tensorflow as tf
print(tf.function(lambda x: tf.reduce_sum(2 * x), jit_compile=True)(tf.ones([4])).numpy())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=fresh_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "8.0"
    for marker in (*TF_LOG_MARKERS, "XLA service", "StreamExecutor", "cuInit"):
        assert marker.lower() not in done.stderr.lower(), done.stderr
