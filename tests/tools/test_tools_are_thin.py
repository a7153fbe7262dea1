"""Tools are thin (docs/design.md §9): they import the installed package, never `tests/`, and
never edit `sys.path` (read from the source of every script under tools/)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _offences(path: pathlib.Path) -> list:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Attribute) and node.attr == "path" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append(f"{path.name}:{node.lineno} uses sys.path")
            continue
        else:
            continue
        found += [f"{path.name}:{node.lineno} imports {name}" for name in names
                  if name == "tests" or name.startswith("tests.")]
    return found


def test_no_tool_imports_tests_or_edits_sys_path():
    tools = sorted((ROOT / "tools").glob("*.py"))
    assert len(tools) > 10
    assert [offence for path in tools for offence in _offences(path)] == []


def test_the_check_sees_both_offences(tmp_path):
    script = tmp_path / "tool.py"
    script.write_text("import sys\nsys.path.insert(0, '.')\nfrom tests.photos import x\n")
    assert sorted(_offences(script)) == ["tool.py:2 uses sys.path",
                                         "tool.py:3 imports tests.photos"]
