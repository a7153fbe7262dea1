"""The package's imports point one way (docs/design.md §9): no cycle between modules or
between subpackages, and the run layer keeps sampling, export and evaluation off the trainer.

Imports are read from the source (every `import` statement, also those inside functions,
which are cycles all the same once both ends run), not by importing."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "dctformer_tf"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str) -> set:
    """The project modules that module `name` imports; `from pkg import sub` counts as an
    import of the module `pkg.sub` when there is one."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in MODULES and t != name}
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _cycles(graph: dict) -> list:
    """Every strongly connected component of more than one node (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def _layer(name: str) -> str:
    """`dctformer_tf.sampling.sampler` -> `sampling`; top-level modules are their own layer."""
    return name.split(".")[1] if name.count(".") else "__init__"


def test_the_import_reader_sees_the_known_edges():
    assert "dctformer_tf.runs" in GRAPH["dctformer_tf.sampling.sampler"]
    assert "dctformer_tf.sampling.masks" in GRAPH["dctformer_tf.sampling.sampler"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_modules():
    assert _cycles(GRAPH) == []


def test_no_import_cycle_between_subpackages():
    layers = {}
    for name, targets in GRAPH.items():
        layers.setdefault(_layer(name), set()).update(
            _layer(t) for t in targets if _layer(t) != _layer(name))
    assert _cycles(layers) == []


@pytest.mark.parametrize("layer", ["plan", "sampling", "export", "evaluation", "runs", "model",
                                   "data", "dct"])
def test_below_the_trainer_nothing_imports_train_or_cli(layer):
    for name, targets in GRAPH.items():
        if _layer(name) == layer:
            wrong = {t for t in targets if _layer(t) in ("train", "cli")}
            assert not wrong, f"{name} imports {sorted(wrong)}"


def test_the_planner_builds_on_the_layers_below_the_run_layer_only():
    """`dctformer_tf.plan` sizes models and batches: it reads `dct`, `data`, `model` and
    `runs`, never gin (the tools read the gin files for it), and no module of the package
    reads it (tools do)."""
    allowed = {"plan", "dct", "data", "model", "runs", "__init__"}
    for name, targets in GRAPH.items():
        if _layer(name) == "plan":
            wrong = {t for t in targets if _layer(t) not in allowed}
            assert not wrong, f"{name} imports {sorted(wrong)}"
            tree = ast.parse(MODULES[name].read_text())
            modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                       for a in n.names]
            modules += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
            assert not [m for m in modules if m.split(".")[0] == "gin"], name
        else:
            assert not {t for t in targets if _layer(t) == "plan"}, f"{name} imports plan"
