"""``sqlite3`` is imported by the SQLite backend alone (issue 19): the services and
the CLI reach storage through ``aiodimse.store``'s interface, so a second backend is
a new module, not a change to them."""

from __future__ import annotations

import ast
from pathlib import Path

import aiodimse

ROOT = Path(aiodimse.__file__).parent
SQLITE_BACKEND = ROOT / "store" / "sqlite"


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and node.args
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id == "__import__"))
              and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


def test_only_the_sqlite_backend_imports_sqlite3() -> None:
    sources = sorted(ROOT.rglob("*.py"))
    assert len(sources) > 50
    importers = {path.relative_to(ROOT).as_posix() for path in sources
                 if "sqlite3" in _imports(ast.parse(path.read_text(), str(path)))}
    backend = {path.relative_to(ROOT).as_posix() for path in SQLITE_BACKEND.rglob("*.py")}
    assert importers, "the walk found no sqlite3 import at all"
    assert importers <= backend, sorted(importers - backend)


def test_the_walk_sees_each_form_of_import() -> None:
    for text in ("import sqlite3", "import sqlite3.dbapi2 as db", "from sqlite3 import Row",
                 "def f():\n    import sqlite3", "importlib.import_module('sqlite3')",
                 "__import__('sqlite3.dbapi2')"):
        assert "sqlite3" in _imports(ast.parse(text)), text
    assert "sqlite3" not in _imports(ast.parse("from .sqlite3 import x\nsqlite3 = 1"))
