"""No test-only code in the library: every top-level function and class of `dctformer_tf` is
used by the library itself, by a gin file or by a benchmark tool, or is public API (listed in
the `__all__` of a package `__init__.py`). Code that only tests call is dead weight shipped
to users.

Other tools do not count: code that only a tool and the tests use is test-only code all the
same (a variant kept only so that a script can run it). A benchmark is different: it
measures what production runs, and the helpers it needs for that (sample photos, an
untrained model that behaves like a trained one, a memory plan) are worth shipping. The
benchmark tools are the scripts docs/benchmarks.md documents.
"""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dctformer_tf"

# Used only by tests and by one tool that is not a benchmark, by that tool. Each is the
# library half of a documented experiment (docs/results.md), not a variant of a production
# path; whether it becomes public API or moves into its tool is the owner's call.
ALLOWED_FOR_TOOLS = {
    "tools/generative_classifier.py": ("class_bits", "generative_classification"),
    "tools/train_shapes_classifier.py": ("train_shapes_classifier", "split_accuracy"),
    "tools/conditional_figures.py": ("downsample",),
}
ALLOWED = {name for names in ALLOWED_FOR_TOOLS.values() for name in names}


def benchmark_tools(tools: pathlib.Path, benchmarks_doc: pathlib.Path) -> list[pathlib.Path]:
    """The scripts of `tools` that `benchmarks_doc` names (`tools/<name>.py`)."""
    text = benchmarks_doc.read_text(encoding="utf-8")
    names = set(re.findall(r"(?<![\w/])tools/(\w+\.py)", text))
    return sorted(path for path in tools.glob("*.py") if path.name in names)


def _top_level_definitions(tree: ast.Module) -> dict[str, int]:
    """name -> index of the top-level statement defining it (functions and classes). Module
    dunders (`__getattr__`, `__dir__`: PEP 562) are Python's to call, not ours."""
    return {
        stmt.name: i
        for i, stmt in enumerate(tree.body)
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not (stmt.name.startswith("__") and stmt.name.endswith("__"))
    }


def _identifiers(node: ast.AST) -> set[str]:
    """Every name a piece of code can reach a definition by: bare names, attributes
    (`module.name`) and imported names."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, ast.alias):
            names.add(sub.name.rsplit(".", 1)[-1])
    return names


def _exported(tree: ast.Module) -> set[str]:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets
        ):
            return set(ast.literal_eval(stmt.value))
    return set()


def unreferenced_definitions(package: pathlib.Path, users: list[pathlib.Path],
                             config_files: list[pathlib.Path], allowed=frozenset()) -> list[str]:
    """`module:name` of each top-level function/class of `package` that no other top-level
    statement of the package (its own module included), no module in `users` and no word of
    `config_files` refers to, and that no package `__init__.py` exports.

    A definition's own body does not count (a recursive function is not thereby used); an
    `__init__.py` import does not count either: public API is what `__all__` lists. Matching
    is by name, so it errs toward passing: a dead function whose name some other identifier
    shares (`call`, `train`) goes unnoticed.
    """
    trees = {path: ast.parse(path.read_text(encoding="utf-8"))
             for path in sorted(package.rglob("*.py"))}
    exported = set().union(*(_exported(t) for p, t in trees.items() if p.name == "__init__.py"))
    # (path, statement index) -> identifiers used in that top-level statement.
    statements = {(path, i): _identifiers(stmt)
                  for path, tree in trees.items() if path.name != "__init__.py"
                  for i, stmt in enumerate(tree.body)}
    outside = set()
    for path in users:
        outside |= _identifiers(ast.parse(path.read_text(encoding="utf-8")))
    for path in config_files:
        outside |= set(re.findall(r"[A-Za-z_]\w*", path.read_text(encoding="utf-8")))

    hits = []
    for path, tree in trees.items():
        for name, index in _top_level_definitions(tree).items():
            if name in exported or name in allowed or name in outside:
                continue
            if any(name in used for (p, i), used in statements.items() if (p, i) != (path, index)):
                continue
            hits.append(f"{path.relative_to(package.parent).as_posix()}:{name}")
    return hits


def test_every_library_definition_is_used_outside_the_tests():
    benchmarks = benchmark_tools(ROOT / "tools", ROOT / "docs" / "benchmarks.md")
    assert ROOT / "tools" / "bench_codec.py" in benchmarks
    for tool, names in ALLOWED_FOR_TOOLS.items():  # an entry goes with its tool's need
        assert all(name in (ROOT / tool).read_text(encoding="utf-8") for name in names), tool
    hits = unreferenced_definitions(
        PACKAGE,
        users=benchmarks,
        config_files=sorted((ROOT / "gin").rglob("*.gin")),
        allowed=ALLOWED,
    )
    assert not hits, (
        "referenced only by tests, by a tool that is not a benchmark (or nowhere): export it "
        f"from its package __init__ (public API, with a docstring) or delete it: {hits}"
    )


def test_only_the_documented_benchmarks_count(tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("bench_a.py", "figures.py", "bench_b.py"):
        (tools / name).write_text("")
    doc = tmp_path / "benchmarks.md"
    doc.write_text("python tools/bench_a.py --num 8\n(see `tests/tools/figures.py`)\n")
    assert benchmark_tools(tools, doc) == [tools / "bench_a.py"]


def test_the_check_finds_a_helper_only_tests_call(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text('from pkg.mod import api\n__all__ = ["api"]\n')
    (package / "mod.py").write_text(
        "def api():\n    return _used()\n\n"
        "def _used():\n    return 1\n\n"
        "def recursive(n):\n    return recursive(n - 1) if n else 0\n\n"
        "def by_tool():\n    pass\n\n"
        "class ByGin:\n    pass\n\n"
        "def test_only():\n    pass\n"
    )
    tool = tmp_path / "tool.py"
    tool.write_text("from pkg.mod import by_tool\nby_tool()\n")
    config = tmp_path / "run.gin"
    config.write_text("ByGin.x = 1\n")
    hits = unreferenced_definitions(package, [tool], [config])
    assert hits == ["pkg/mod.py:recursive", "pkg/mod.py:test_only"]
    assert unreferenced_definitions(package, [tool], [config], {"test_only", "recursive"}) == []
