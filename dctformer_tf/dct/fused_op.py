"""The fused encoder kernel: `sparse_dct_op.cc`, built on first use (docs/design.md §1.10).

`tf_fast.encode_canvas` runs as a handful of TensorFlow ops, each of which writes a whole
plane of the batch to memory and reads it back. The kernel does the same arithmetic block by
block in one CPU op, and its sequences equal the reference's exactly for the same reason
(`fast_plan.py`). TensorFlow has no op of its own for this, so the kernel is C++ compiled
against the installed TensorFlow's headers, the way TensorFlow's guide builds custom ops:

  - `load()` compiles it once per source, TensorFlow build, compiler and CPU features into
    a cache folder (`$DCTFORMER_OP_CACHE`, default `~/.cache/dctformer_tf/ops`) and loads
    it with `tf.load_op_library`. `python -m dctformer_tf.dct.fused_op` builds it ahead of
    time (`make test` and `make demo` do).
  - Where it cannot be built (no C++ compiler, headers missing) `available()` is False and
    says why; `encoders.choose_encoder("auto")` then picks the TensorFlow-ops encoder,
    which computes the same sequences.

It is a host op for input pipelines: a SavedModel uses the TensorFlow-ops encoder instead,
which needs no library to load.
"""

import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from dctformer_tf.dct.fast_plan import plan_for

SOURCE = Path(__file__).with_name("sparse_dct_op.cc")
# A compile that hangs must not hang the input pipeline's start.
BUILD_TIMEOUT_S = 600

log = logging.getLogger(__name__)


class FusedOpUnavailable(RuntimeError):
    """The fused kernel could not be built or loaded; the message says why."""


def cache_dir() -> Path:
    """Where built kernels are kept: $DCTFORMER_OP_CACHE, else ~/.cache/dctformer_tf/ops
    (a temporary folder's if there is no home)."""
    root = os.environ.get("DCTFORMER_OP_CACHE")
    if root:
        return Path(root)
    try:
        return Path.home() / ".cache" / "dctformer_tf" / "ops"
    except RuntimeError:  # no home directory (some containers)
        return Path(tempfile.gettempdir()) / "dctformer_tf_ops"


def compiler() -> str | None:
    """The C++ compiler: $CXX, else c++ or g++ on the PATH."""
    for name in (os.environ.get("CXX"), "c++", "g++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cpu_flags() -> list:
    """Vector-unit flags for this CPU. Not -march=native: TensorFlow's Eigen headers fail to
    compile with AVX-512 FP16 enabled, and AVX2 + FMA already fill the 8-wide DCT rows."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    features = set()
    for line in info.splitlines():
        if line.startswith("flags"):
            features.update(line.split(":", 1)[1].split())
            break
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= features else []


def build_command(cxx: str, output: Path) -> list:
    """The compile-and-link command line for `SOURCE`."""
    return [cxx, "-shared", "-fPIC", "-O3", *cpu_flags(), "-Wno-deprecated-declarations",
            "-Wno-interference-size", *tf.sysconfig.get_compile_flags(), str(SOURCE),
            "-o", str(output), *tf.sysconfig.get_link_flags()]


def library_path(cxx: str) -> Path:
    """The cache path of the kernel built by `cxx` for this TensorFlow and CPU."""
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), tf.__version__.encode(), tf.sysconfig.get_build_info()
                 .get("cpu_compiler", "").encode(), " ".join(build_command(cxx, Path("x")))
                 .encode(), _compiler_version(cxx).encode()):
        key.update(part)
        key.update(b"\0")
    return cache_dir() / f"sparse_dct_{key.hexdigest()[:16]}.so"


def _compiler_version(cxx: str) -> str:
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def build(force: bool = False) -> Path:
    """Compiles the kernel into the cache (unless there already) and returns its path.

    Raises FusedOpUnavailable with the compiler's message when it cannot.
    """
    cxx = compiler()
    if cxx is None:
        raise FusedOpUnavailable("no C++ compiler found (set $CXX, or install g++)")
    if not SOURCE.exists():
        raise FusedOpUnavailable(f"the kernel's source {SOURCE} is missing from the install")
    path = library_path(cxx)
    if path.exists() and not force:
        return path
    log.info("building the fused encoder kernel (once) into %s", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the target and rename: processes building at once never see half a
        # file.
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            partial = Path(tmp) / path.name
            result = subprocess.run(build_command(cxx, partial), capture_output=True,
                                    text=True, timeout=BUILD_TIMEOUT_S)
            if result.returncode != 0:
                tail = "\n".join(result.stderr.strip().splitlines()[-15:])
                raise FusedOpUnavailable(f"compiling {SOURCE.name} with {cxx} failed "
                                         f"(exit {result.returncode}):\n{tail}")
            os.replace(partial, path)
    except subprocess.TimeoutExpired:
        raise FusedOpUnavailable(f"compiling {SOURCE.name} with {cxx} took over "
                                 f"{BUILD_TIMEOUT_S} s") from None
    except OSError as error:
        raise FusedOpUnavailable(f"cannot write the kernel to {path.parent} ({error}); set "
                                 "$DCTFORMER_OP_CACHE to a writable folder") from None
    return path


@functools.lru_cache(maxsize=1)
def _load():
    """(module, None) once built and loaded, else (None, the reason)."""
    try:
        path = build()
    except FusedOpUnavailable as error:
        return None, str(error)
    try:
        return tf.load_op_library(str(path)), None
    except (tf.errors.OpError, OSError) as error:  # e.g. built against another TensorFlow
        return None, f"loading the built kernel {path} failed: {error}"


def available() -> bool:
    """Whether the fused kernel can run here (builds it if needed)."""
    return _load()[0] is not None


def unavailable_reason() -> str | None:
    """Why the kernel cannot run here, or None."""
    return _load()[1]


def load():
    """The loaded op module; raises FusedOpUnavailable if it cannot be built or loaded."""
    module, reason = _load()
    if module is None:
        raise FusedOpUnavailable(reason)
    return module


def encode_canvas(pixels: tf.Tensor, codec, max_length: int) -> tuple:
    """uint8 [B, H, W, 3] canvases -> (int32 [B, max_length, 3] padded triples, int32 [B]
    lengths with EOS; > max_length means cut), as `tf_fast.encode_canvas`."""
    return load().sparse_dct_encode(pixels, **kernel_inputs(codec, plan_for(pixels, codec)),
                                    max_length=max_length)


def kernel_inputs(codec, plan) -> dict:
    """The kernel's table inputs and attributes but max_length, from the plan and codec:
    per channel id (sequence order) its raw index, 1/Q, guard band, Q and value multiplier."""
    scale = codec.rank_table if codec.value_encoding == "dequantized" else np.ones_like(
        codec.rank_table)
    return dict(dct=plan.dct, colour=plan.colour, dct64=plan.dct64, colour64=plan.colour64,
                raw=plan.raw, inv_step=(1.0 / plan.step).astype(np.float32),
                guard=_channel_guard(plan), step=plan.step, token_scale=scale.astype(np.int32),
                clip=codec.clip, eos=codec.eos)


def _channel_guard(plan) -> np.ndarray:
    """float32 [C]: the guard band of each channel id (the plan keeps it per component row)."""
    guard = np.zeros(len(plan.raw), np.float32)
    for k in range(3):
        channels = np.flatnonzero(plan.component == k)  # in sequence order, as plan.rows[k]
        guard[channels] = plan.guard[k]
    return guard


def main() -> int:
    """`python -m dctformer_tf.dct.fused_op [--force]`: build the kernel, print its path."""
    try:
        print(build(force="--force" in sys.argv[1:]))
    except FusedOpUnavailable as error:
        print(f"fused encoder kernel not built: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
