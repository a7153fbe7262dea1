"""What a command prints besides its own output: dctformer's progress lines ("Building
dataset...") always; TensorFlow's C++ logs only with `dctformer --verbose`.

Two settings are needed to quiet TensorFlow's C++ side, and both must be in place before it is
imported. TF_CPP_MIN_LOG_LEVEL=3 hides what TensorFlow logs once running (XLA service start,
cuInit failures, ...); level 3, since some of these are ERROR lines that say nothing is wrong.
It does not reach what its libraries log while `import tensorflow` loads them (the oneDNN
notice, the CUDA stub, the cuDNN/cuBLAS/cuFFT factory registrations): absl writes those to
stderr before absl::InitializeLog() is called, and no setting filters them
(tensorflow/tensorflow#100442). So `quiet_import` runs that import with file descriptor 2 sent
to a file, and writes back the lines that are not such logs (Python warnings, tracebacks).
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile

# One line of TensorFlow's C++ logging: absl's format, TensorFlow's older own format, the
# banner absl writes first, and the second line of the CPU-feature notice.
CPP_LOG_LINE = re.compile(
    r"[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] "  # I0000 00:00:1796078696.743568  4132 port.cc:153] ...
    r"|\d{4}-\d\d-\d\d [\d:.]+: [IWE] \S+:\d+\] "  # 2025-09-17 14:44:05.157831: I .../x.cc:32] ...
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: "
)


def setup_logging(verbose: bool = False) -> None:
    """Call before TensorFlow is imported. Quiet: dctformer's INFO lines, others' warnings,
    absl's errors, TF's C++ logs at the level the environment sets (3 when unset). Verbose:
    every library's INFO lines and dctformer's DEBUG lines; TF's C++ logs at their defaults."""
    logging.basicConfig(format="%(asctime)s %(message)s")
    logging.getLogger("dctformer_tf").setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose:
        logging.getLogger().setLevel(logging.INFO)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def quiet_import(name: str = "tensorflow"):
    """While open, the first `import name` (from anywhere) runs with its C++ logs dropped.

    Nothing is imported up front: a command that never imports TensorFlow does not pay for it.
    Does nothing if the module is already imported.
    """
    finder = _QuietImportFinder(name)
    if name not in sys.modules:
        sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)


class _QuietImportFinder(importlib.abc.MetaPathFinder):
    """Finds `name` with the other finders and wraps its loader in `_QuietLoader`; once."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        # The module keeps its real loader; only this one execution is wrapped.
        module.__loader__ = module.__spec__.loader = self.loader
        with drop_cpp_logs():
            self.loader.exec_module(module)


@contextlib.contextmanager
def drop_cpp_logs():
    """File descriptor 2 goes to a temporary file; on exit every line of it that is not a C++
    log line (`CPP_LOG_LINE`) is written to `sys.stderr`, also when the body raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = [line for line in text.splitlines(keepends=True)
                    if not CPP_LOG_LINE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
