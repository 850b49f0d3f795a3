"""Where DCMTK's tools are: ``$DCMTK_BIN``, else the first on PATH (or /usr/bin) that
is a compiled program, not pynetdicom's Python console script of the same name."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["dcmtk"]


def _is_program(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def dcmtk(name: str) -> str:
    """The full path of DCMTK's ``name`` (``echoscu``, ``storescp``...)."""
    dirs = [os.environ.get("DCMTK_BIN", ""), *os.environ.get("PATH", "").split(os.pathsep),
            "/usr/bin", "/usr/local/bin"]
    for folder in filter(None, dirs):
        candidate = Path(folder) / name
        if os.access(candidate, os.X_OK) and _is_program(candidate):
            return str(candidate)
    raise FileNotFoundError(f"DCMTK's {name} was not found (set DCMTK_BIN, or install dcmtk)")
