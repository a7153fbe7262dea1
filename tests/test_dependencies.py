"""Every distribution setup.py pins is needed: imported somewhere in `dctformer_tf/`, or, for
the two needed only at run time, needed for a reason checked here. A pin nothing needs is
install time, import time and version conflicts for nothing (docs/design.md §9)."""

import ast
import importlib.metadata
import importlib.util
import pathlib
import re

import tensorflow as tf
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dctformer_tf"

# Distribution (normalized, PEP 503) -> the module the package imports it as.
IMPORT_NAMES = {
    "tensorflow": "tensorflow",
    "keras": "keras",
    "tensorflow-probability": "tensorflow_probability",
    "tensorflow-datasets": "tensorflow_datasets",
    "gin-config": "gin",
    "pillow": "PIL",
    "numpy": "numpy",
}
# Pinned though the package never imports them; each has its own test below.
RUN_TIME_ONLY = {
    # tf.summary.scalar/image/text are TensorBoard's ops, imported from it at call time, and
    # TensorFlow 2.21 no longer installs it.
    "tensorboard",
    # tensorflow-datasets 4.9.10 imports it when building a dataset but declares it only for
    # Python < 3.9.
    "importlib-resources",
}
# The tf.summary ops that tf re-exports from TensorBoard (tensorflow/python/summary/tb_summary.py).
TENSORBOARD_SUMMARY_OPS = {"scalar", "image", "text", "histogram", "audio"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def install_requires(setup_py: pathlib.Path) -> list[str]:
    """Normalized distribution names of `INSTALL_REQUIRES` in a setup.py, extras dropped."""
    for stmt in ast.parse(setup_py.read_text(encoding="utf-8")).body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "INSTALL_REQUIRES" for t in stmt.targets
        ):
            return [normalize(Requirement(r).name) for r in ast.literal_eval(stmt.value)]
    raise AssertionError(f"no INSTALL_REQUIRES list in {setup_py}")


def _modules(package: pathlib.Path) -> list[ast.Module]:
    return [ast.parse(p.read_text(encoding="utf-8")) for p in sorted(package.rglob("*.py"))]


def imported_top_level_modules(package: pathlib.Path) -> set[str]:
    """Top-level names of every absolute import in the package, function-level ones included."""
    names = set()
    for tree in _modules(package):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def attribute_paths(package: pathlib.Path) -> set[str]:
    """Dotted attribute chains used in the package with import aliases resolved:
    `tf.summary.scalar(...)` after `import tensorflow as tf` gives "tensorflow.summary.scalar"."""
    paths = set()
    for tree in _modules(package):
        aliases = {alias.asname or alias.name: alias.name
                   for node in ast.walk(tree) if isinstance(node, ast.Import)
                   for alias in node.names}
        for node in ast.walk(tree):
            parts = []
            while isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            if parts and isinstance(node, ast.Name) and node.id in aliases:
                paths.add(".".join([aliases[node.id], *reversed(parts)]))
    return paths


def unused_pins(pins: list[str], imported: set[str]) -> list[str]:
    """Pins the package does not import, and pins neither mapped to a module nor run-time only
    (a new pin must say how it is used)."""
    unused = []
    for pin in pins:
        if pin in RUN_TIME_ONLY:
            continue
        if IMPORT_NAMES.get(pin) not in imported:
            unused.append(pin)
    return unused


def test_every_pinned_distribution_is_imported_by_the_package():
    pins = install_requires(ROOT / "setup.py")
    assert pins, "setup.py pins nothing?"
    unused = unused_pins(pins, imported_top_level_modules(PACKAGE))
    assert not unused, (
        f"pinned in setup.py but imported nowhere in dctformer_tf/: {unused}. Drop the pin, or "
        "map it in IMPORT_NAMES (imported) or RUN_TIME_ONLY (with a test of why it is needed)"
    )


def test_the_check_reports_a_pin_nothing_imports(tmp_path):
    (tmp_path / "setup.py").write_text(
        'INSTALL_REQUIRES = ["numpy>=1.26", "Pillow>=10", "tensorflow-probability[tf]==0.25.0",'
        ' "scipy", "tensorboard==2.21.0"]\n'
    )
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("import numpy as np\n\ndef f():\n    from PIL import Image\n")
    pins = install_requires(tmp_path / "setup.py")
    assert pins == ["numpy", "pillow", "tensorflow-probability", "scipy", "tensorboard"]
    assert imported_top_level_modules(package) == {"numpy", "PIL"}
    # tensorflow-probability: mapped but not imported; scipy: not even mapped.
    assert unused_pins(pins, imported_top_level_modules(package)) == [
        "tensorflow-probability", "scipy"]


def test_tensorboard_is_needed_for_the_summaries_the_package_writes():
    assert "tensorboard" in install_requires(ROOT / "setup.py")
    ops = {path.rsplit(".", 1)[-1] for path in attribute_paths(PACKAGE)
           if path.startswith("tensorflow.summary.")}
    assert ops & TENSORBOARD_SUMMARY_OPS, "no tf.summary op needs TensorBoard: drop the pin"
    # Why the pin: tf.summary.scalar is TensorBoard's, and tensorflow does not install it.
    assert tf.summary.scalar.__module__ == "tensorflow.python.summary.tb_summary"
    assert not [r for r in importlib.metadata.requires("tensorflow")
                if normalize(Requirement(r).name) == "tensorboard"]


def test_importlib_resources_is_needed_by_tensorflow_datasets():
    assert "importlib-resources" in install_requires(ROOT / "setup.py")
    assert "tensorflow_datasets" in imported_top_level_modules(PACKAGE)
    # Why the pin: tfds imports it, but declares it only for Python < 3.9 (not this one).
    spec = importlib.util.find_spec("tensorflow_datasets")
    builder = pathlib.Path(spec.submodule_search_locations[0]) / "core" / "dataset_builder.py"
    assert re.search(r"^\s*import importlib_resources\b", builder.read_text(), re.MULTILINE)
    declared = [Requirement(r) for r in importlib.metadata.requires("tensorflow-datasets")
                if normalize(Requirement(r).name) == "importlib-resources"]
    assert not any(r.marker is None or r.marker.evaluate() for r in declared), (
        "tensorflow-datasets now declares importlib_resources itself: drop the pin")
