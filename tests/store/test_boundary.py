"""asyncpg, an optional extra, is imported by the PostgreSQL backend alone, and only
when a postgresql:// database is opened: importing aiodimse, its services and its
command line never needs it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aiodimse

ROOT = Path(aiodimse.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_postgresql_backend_imports_asyncpg() -> None:
    importers = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py")
                 if "asyncpg" in _imports(p)}
    assert importers, "the walk found no asyncpg import at all"
    assert all(name.startswith("store/postgresql/") for name in importers), importers
    assert "store/postgresql/__init__.py" not in importers  # imported when opened


def test_importing_aiodimse_does_not_import_asyncpg() -> None:
    code = ("import sys, aiodimse, aiodimse.store, aiodimse.services, aiodimse.cli.serve, "
            "aiodimse.store.postgresql; from aiodimse.store import backends; "
            "assert 'postgresql' in backends(); "
            "assert 'asyncpg' not in sys.modules, 'asyncpg imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
