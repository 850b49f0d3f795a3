"""No runtime path reads an enum member off its class (only error paths may).

On Python 3.11 ``State.STA3`` inside a function goes through ``EnumType.__getattr__``'s
slot hook, about 100 ns a read against 10 for a module global; on the per-association
and per-message paths those reads added up to a tenth of the server's instructions.
"""

from __future__ import annotations

import ast
import enum
import importlib
import pkgutil
from pathlib import Path

import aiodimse

# Functions that only run when something has gone wrong (or once, at start-up).
ALLOWED = {
    ("aiodimse.ul.actions", "_error_abort"),
    ("aiodimse.ul.machine", "abort"),
    ("aiodimse.ul.negotiation", "negotiate_as_acceptor"),  # cached per proposal
    ("aiodimse.ul.negotiation", "negotiate_as_requestor"),  # its error path
    ("aiodimse.ul.negotiation", "make_reject"),
    ("aiodimse.ul.negotiation", "reject_for"),
    ("aiodimse.ul.negotiation", "check_application_context"),
    ("aiodimse.wire.codec", "_invalid"),
    ("aiodimse.wire.codec", "_unexpected"),
    ("aiodimse.wire.codec", "_unrecognized"),
    ("aiodimse.wire.codec", "encode_pdu"),  # A-ASSOCIATE-RJ and A-ABORT only
    ("aiodimse.wire.reader", "_pdu_size"),  # its error path
    ("aiodimse.wire.reader", "_flooded"),
    ("aiodimse.wire.reader", "_invalid"),
}
SKIPPED_PACKAGES = ("aiodimse.cli",)  # command-line code: runs once per command


def _enum_reads(module_name: str) -> list[tuple[str, int, str]]:
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(str(module.__file__)).read_text())
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for child in ast.iter_child_nodes(node):
                visit(child, node.name)
            return
        if function is not None and isinstance(node, ast.Attribute):
            target = node.value
            if isinstance(target, ast.Name):
                owner = module.__dict__.get(target.id)
                if isinstance(owner, type) and issubclass(owner, enum.Enum):
                    found.append((function, node.lineno, f"{target.id}.{node.attr}"))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return found


def test_no_enum_member_read_off_its_class_on_runtime_paths() -> None:
    offending = []
    for info in pkgutil.walk_packages(aiodimse.__path__, "aiodimse."):
        if info.name.startswith(SKIPPED_PACKAGES):
            continue
        for function, line, read in _enum_reads(info.name):
            if (info.name, function) not in ALLOWED:
                offending.append(f"{info.name}:{line} {function}: {read}")
    assert offending == []


def test_the_check_sees_a_read() -> None:
    """The scan finds what it is for (a check that finds nothing proves nothing)."""
    reads = _enum_reads("aiodimse.ul.machine")
    assert ("abort", "AbortSource.SERVICE_USER") in {(f, r) for f, _, r in reads}
