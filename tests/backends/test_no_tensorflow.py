"""What a GPU host without TensorFlow imports works there: the model core, the loss, the
compact-batch expansion, the trainer, the numpy input path, the run settings and the gin
edge, under `KERAS_BACKEND=jax` with an import of TensorFlow made to fail."""

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("jax")

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULES = [
    "dctformer_tf.model",
    "dctformer_tf.model.losses",
    "dctformer_tf.model.flops",
    "dctformer_tf.data.expansion",
    "dctformer_tf.data.layout",
    "dctformer_tf.data.numpy_input",
    "dctformer_tf.runs",
    "dctformer_tf.train.gin_model",
    "dctformer_tf.train.nonfinite",
    "dctformer_tf.train.trainer",
    "dctformer_tf.train.portable",
    "dctformer_tf.train.schedules",
]


def no_tensorflow_env(tmp_path) -> dict:
    """The environment of a host without TensorFlow: `import tensorflow` raises ImportError
    (a shim package first on the path), Keras on JAX, on the CPU."""
    shim = tmp_path / "no_tensorflow" / "tensorflow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        'raise ImportError("no TensorFlow on this host (test shim)")\n')
    path = os.pathsep.join([str(shim.parent), str(ROOT)])
    return {**os.environ, "PYTHONPATH": path, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}


def test_the_shim_stops_tensorflow(tmp_path):
    """The test below can fail: with the shim, a module that imports TensorFlow fails."""
    result = subprocess.run([sys.executable, "-c", "import dctformer_tf.data.pipeline"],
                            env=no_tensorflow_env(tmp_path), capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode != 0 and "no TensorFlow on this host" in result.stderr


def test_the_backend_neutral_modules_import_without_tensorflow(tmp_path):
    code = "\n".join([f"import {name}" for name in MODULES] + [
        "import sys, keras",
        "assert keras.backend.backend() == 'jax', keras.backend.backend()",
        "assert 'tensorflow' not in sys.modules",
        "from dctformer_tf.data import render_shapes  # a lazy name of the data package",
        "print('ok')",
    ])
    result = subprocess.run([sys.executable, "-c", code], env=no_tensorflow_env(tmp_path),
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_the_data_package_exports_resolve():
    import dctformer_tf.data as data

    assert sorted(data.__all__) == sorted(data._EXPORTS)
    for name in data.__all__:
        assert getattr(data, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        data.nothing  # noqa: B018
