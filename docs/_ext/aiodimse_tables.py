"""Sphinx directives that render aiodimse's own tables, so the pages cannot drift.

* ``aiodimse-status-table``: PS3.7 Annex C codes (``aiodimse.status.GENERAL_STATUS``)
  with the category ``code_to_category`` gives each.
* ``aiodimse-unhandled-table``: per request type, what the peer gets with no handler
  bound and when the handler fails (``aiodimse.requests``' serving rules).
* ``aiodimse-state-table``: PS3.8 Table 9-10 from ``aiodimse.ul.table.TRANSITIONS``,
  with the states and events described by ``aiodimse.ul.states``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from aiodimse import requests, status
from aiodimse.ul.states import Event, State
from aiodimse.ul.table import TRANSITIONS


def _hex(code: int) -> str:
    return f"0x{code:04X}"


def _list_table(header: list[str], rows: list[list[str]], widths: str = "auto") -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        first = True
        for cell in row:
            lines.append(("   * - " if first else "     - ") + (cell or " "))
            first = False
    return lines


class _Table(SphinxDirective):
    has_content = False

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        node = nodes.container()
        self.state.nested_parse(StringList(self.lines(), source="aiodimse_tables"),
                                self.content_offset, node)
        return node.children


class StatusTable(_Table):
    """Status codes with the meaning and category the code gives them.

    Without content: every code ``GENERAL_STATUS`` names. With content, one line a
    code, ``0xNNNN when it is answered``: those codes, meaning and category from the
    code, and the text as a last column. A code the library does not name (outside
    the ranges ``code_to_category`` knows) is an error, so a page cannot cite a
    status the library does not have.
    """

    has_content = True

    def lines(self) -> list[str]:
        if not self.content:
            rows = [[f"``{_hex(code)}``", meaning, status.code_to_category(code).value]
                    for code, meaning in sorted(status.GENERAL_STATUS.items())]
            return _list_table(["Status", "Meaning (PS3.7 Annex C)", "Category"], rows)
        rows = []
        for line in self.content:
            if not line.strip():
                continue
            code_text, _, when = line.strip().partition(" ")
            code = int(code_text, 16)
            category = status.code_to_category(code)
            meaning = status.GENERAL_STATUS.get(code)
            if meaning is None and category is status.Category.UNKNOWN:
                raise self.error(f"status {code_text} is not one aiodimse knows")
            rows.append([f"``{_hex(code)}``", meaning or f"({category.value.lower()}, "
                         "service-specific)", category.value, when.strip()])
        return _list_table(["Status", "Meaning", "Category", "When"], rows)


def _result(result: Any) -> str:
    if isinstance(result, tuple):
        code, data = result
        shown = "None" if data is None else type(data).__name__
        return f"``({_hex(code)}, {shown})``"
    return f"``{_hex(result)}``"


class UnhandledTable(_Table):
    """Per request type: the handler's return shape, and the answer without a handler.

    ``:event: EVT_N_ACTION`` renders that event's row only (an unknown name is an error).
    """

    option_spec: ClassVar[dict[str, Any]] = {"event": directives.unchanged_required}

    def lines(self) -> list[str]:
        rows = []
        wanted = self.options.get("event")
        kinds = [(m, k) for m, k in requests._KINDS.items()  # the serving rules
                 if wanted is None or k.event.name == wanted]
        if not kinds:
            raise self.error(f"no request type is served by {wanted!r}")
        for message, kind in kinds:
            rows.append([
                f"``{kind.event.name}``",
                _request_name(message.__name__),
                "``(status, dataset)``" if kind.with_dataset else "``status``",
                _result(kind.default_result) + " "
                + status.GENERAL_STATUS.get(_code(kind.default_result), ""),
                _result(kind.failure_result) + " "
                + status.GENERAL_STATUS.get(_code(kind.failure_result), ""),
            ])
        return _list_table(
            ["Event", "Request", "Handler returns", "No handler bound", "Handler raises"],
            rows)


def _request_name(class_name: str) -> str:
    """``NEventReportRQ`` -> ``N-EVENT-REPORT-RQ``."""
    words = re.findall(r"[A-Z][a-z]*", class_name[1:-2])
    return f"{class_name[0]}-{'-'.join(w.upper() for w in words)}-RQ"


def _code(result: Any) -> int:
    return int(result[0] if isinstance(result, tuple) else result)


class StateTable(_Table):
    """PS3.8 Table 9-10: one row per event, one column per state, the action in each cell."""

    def lines(self) -> list[str]:
        header = ["Event", *(f"Sta{s.value}" for s in State)]
        rows = []
        for event in Event:
            cells = [f"Evt{event.value}"]
            for state in State:
                action = TRANSITIONS.get((state, event))
                cells.append(action.value if action is not None else "")
            rows.append(cells)
        lines = _list_table(header, rows)
        lines += ["", "States:", ""]
        lines += [f"- **Sta{s.value}**: {s.description}" for s in State]
        lines += ["", "Events:", ""]
        lines += [f"- **Evt{e.value}**: {e.description}" for e in Event]
        return lines


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("aiodimse-status-table", StatusTable)
    app.add_directive("aiodimse-unhandled-table", UnhandledTable)
    app.add_directive("aiodimse-state-table", StateTable)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
