"""Tests of the scripts under tools/, which are files, not a package: `load_tool` imports one
by path."""

import importlib.util
import pathlib

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "tools"


def load_tool(name: str):
    """The module of tools/NAME.py, executed once per call."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
