"""Layers 4-5 call each other, they do not share state (issue 19).

The protocol is the one owner of the upper-layer core: the association asks it
(accept, send P-DATA, release, abort) and never touches the core or the protocol's
private state; no module of layers 4-6 reads another object's private attributes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "aiodimse"
MODULES = ["association.py", "requestor.py", "server.py", "ae.py", "aio/protocol.py",
           "dimse/session.py", "acceptor.py", "serving.py", "outgoing.py", "aio/budget.py",
           "aio/idle.py", "scu.py", "notifications.py", "establishment.py",
           "association_log.py", "lifecycle.py", "answering.py"]
# Nothing may be listed here: a module reads its own private attributes only.
KNOWN: set[tuple[str, str]] = set()


def _foreign_private_reads(source: str) -> set[str]:
    """``x._name`` where ``x`` is not ``self`` or ``cls`` (dunders aside)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            found.add(node.attr)
    return found


@pytest.mark.parametrize("module", MODULES)
def test_no_module_reads_another_objects_private_attributes(module: str) -> None:
    found = _foreign_private_reads((PACKAGE / module).read_text())
    assert {(module, name) for name in found} - KNOWN == set()


def test_only_the_protocol_touches_the_upper_layer_core() -> None:
    for module in MODULES:
        if module == "aio/protocol.py":
            continue
        tree = ast.parse((PACKAGE / module).read_text())
        reads = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "ul"]
        assert reads == [], module


def test_the_checker_sees_a_private_read() -> None:
    assert _foreign_private_reads("proto._paused\nself._ok\n") == {"_paused"}
