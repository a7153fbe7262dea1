"""The `dctformer` command line (docs/design.md §9.1): thin entry points that parse flags
and gin files and call one library function each (`main.py` dispatches to the
`*_commands.py` modules).

May import every other package; nothing imports `cli`.
"""
