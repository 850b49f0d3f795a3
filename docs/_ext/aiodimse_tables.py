"""Sphinx directives that render aiodimse's own tables, so the pages cannot drift.

* ``aiodimse-status-table``: PS3.7 Annex C codes (``aiodimse.status.GENERAL_STATUS``)
  with the category ``code_to_category`` gives each.
* ``aiodimse-unhandled-table``: per request type, what the peer gets with no handler
  bound and when the handler fails (``aiodimse.requests``' serving rules).
* ``aiodimse-state-table``: PS3.8 Table 9-10 from ``aiodimse.ul.table.TRANSITIONS``,
  with the states and events described by ``aiodimse.ul.states``.
* ``aiodimse-storage-classes``: the Storage SCP's SOP classes
  (``aiodimse.services.storage.STORAGE_CLASSES``) with pydicom's names.
* ``aiodimse-qr-models``: the Query/Retrieve SCP's information models
  (``aiodimse.archive.MODELS``) with their levels.
* ``aiodimse-transfer-syntaxes``: every transfer syntax the Storage SCP accepts
  (``aiodimse.presentation.ALL_TRANSFER_SYNTAXES``).
* ``aiodimse-archive-keys``: the keys the archive index matches and returns
  (``aiodimse.store.records.KEYS``) with how each is matched.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from pydicom.uid import UID
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from aiodimse import AE, requests, status
from aiodimse import ae as ae_module
from aiodimse import presentation as presentation_module
from aiodimse.archive import MODELS
from aiodimse.archive import models as models_module
from aiodimse.presentation import ALL_TRANSFER_SYNTAXES
from aiodimse.services import storage as storage_module
from aiodimse.services.storage import STORAGE_CLASSES
from aiodimse.store import records as records_module
from aiodimse.store.records import KEYS, Key
from aiodimse.ul import states as states_module
from aiodimse.ul import table as table_module
from aiodimse.ul.states import Event, State
from aiodimse.ul.table import TRANSITIONS


def _hex(code: int) -> str:
    return f"0x{code:04X}"


def _inline(text: str) -> list[nodes.Node]:
    """``code`` and **strong** spans of a cell as docutils nodes, the rest as text."""
    out: list[nodes.Node] = []
    for part in re.split(r"(``[^`]+``|\*\*[^*]+\*\*)", text):
        if part.startswith("``"):
            out.append(nodes.literal(text=part[2:-2]))
        elif part.startswith("**"):
            out.append(nodes.strong(text=part[2:-2]))
        elif part:
            out.append(nodes.Text(part))
    return out


def _table(header: list[str], rows: list[list[str]], kind: str = "") -> nodes.table:
    """A docutils table (built as nodes: the pages are MyST, not reStructuredText)."""
    table = nodes.table(classes=["aiodimse-table", *([f"aiodimse-{kind}"] if kind else [])])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)

    def row_of(cells: list[str]) -> nodes.row:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", *_inline(cell))
            row += entry
        return row

    head = nodes.thead()
    head += row_of(header)
    body = nodes.tbody()
    for cells in rows:
        body += row_of(cells)
    group += head
    group += body
    return table


def _bullets(items: list[str]) -> nodes.bullet_list:
    bullets = nodes.bullet_list()
    for item in items:
        entry = nodes.list_item()
        entry += nodes.paragraph("", "", *_inline(item))
        bullets += entry
    return bullets


class _Table(SphinxDirective):
    has_content = False

    def build(self) -> list[nodes.Node]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        # An incremental build reads the page again when the code behind it changes.
        for module in (status, requests, table_module, states_module, ae_module,
                       storage_module, models_module, records_module, presentation_module):
            self.env.note_dependency(module.__file__)
        return self.build()


class StatusTable(_Table):
    """Status codes with the meaning and category the code gives them.

    Without content: every code ``GENERAL_STATUS`` names. With content, one line a
    code, ``0xNNNN when it is answered``: those codes, meaning and category from the
    code, and the text as a last column. A code the library does not name (outside
    the ranges ``code_to_category`` knows) is an error, so a page cannot cite a
    status the library does not have.
    """

    has_content = True

    def build(self) -> list[nodes.Node]:
        if not self.content:
            rows = [[f"``{_hex(code)}``", meaning, status.code_to_category(code).value]
                    for code, meaning in sorted(status.GENERAL_STATUS.items())]
            return [_table(["Status", "Meaning (PS3.7 Annex C)", "Category"], rows)]
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
            when = when.strip()
            if meaning is not None and when.lower() == meaning.lower():
                when = ""  # the meaning says it all
            rows.append([f"``{_hex(code)}``", meaning or f"({category.value.lower()}, "
                         "service-specific)", category.value, when])
        return [_table(["Status", "Meaning", "Category", "When"], rows)]


def _result(result: Any) -> str:
    if isinstance(result, tuple):
        code, data = result
        shown = "None" if data is None else type(data).__name__
        return f"``({_hex(code)}, {shown})``"
    return f"``{_hex(result)}``"


class UnhandledTable(_Table):
    """Per request type: the handler's return shape, and the answer without a handler.

    Rows: ``requests._KINDS``, then the kinds served apart (``requests._APART``:
    C-STORE). ``:event: EVT_N_ACTION`` renders that event's row only (an unknown
    name is an error).
    """

    option_spec: ClassVar[dict[str, Any]] = {"event": directives.unchanged_required}

    def build(self) -> list[nodes.Node]:
        rows = []
        wanted = self.options.get("event")
        # the serving rules: the usual kinds, then those served apart (C-STORE)
        every = [*requests._KINDS.items(), *requests._APART.items()]
        kinds = [(m, k) for m, k in every if wanted is None or k.event.name == wanted]
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
        return [_table(
            ["Event", "Request", "Handler returns", "No handler bound", "Handler raises"],
            rows)]


def _request_name(class_name: str) -> str:
    """``NEventReportRQ`` -> ``N-EVENT-REPORT-RQ``."""
    words = re.findall(r"[A-Z][a-z]*", class_name[1:-2])
    return f"{class_name[0]}-{'-'.join(w.upper() for w in words)}-RQ"


def _code(result: Any) -> int:
    return int(result[0] if isinstance(result, tuple) else result)


class StateTable(_Table):
    """PS3.8 Table 9-10: one row per event, one column per state, the action in each cell."""

    def build(self) -> list[nodes.Node]:
        header = ["Event", *(f"Sta{s.value}" for s in State)]
        rows = []
        for event in Event:
            cells = [f"Evt{event.value}"]
            for state in State:
                action = TRANSITIONS.get((state, event))
                cells.append(action.value if action is not None else "")
            rows.append(cells)
        return [
            _table(header, rows, "state-table"),
            nodes.paragraph(text="States:"),
            _bullets([f"**Sta{s.value}**: {s.description}" for s in State]),
            nodes.paragraph(text="Events:"),
            _bullets([f"**Evt{e.value}**: {e.description}" for e in Event]),
        ]


# What each AE attribute is for; the defaults come from a new AE when the site is
# built. An attribute missing here (one added to AE) fails the build: add its line.
AE_ATTRIBUTES = {
    "maximum_pdu_size": "Maximum Length we advertise for PDUs we receive (0: no limit). "
    "Also the default ``max_pdu`` of ``associate()``.",
    "maximum_associations": "Associations a server holds at once; one more is rejected "
    "(transient, local limit exceeded). pynetdicom's default is 10.",
    "maximum_associations_per_address": "Associations one peer IP address may hold "
    "(None: no limit of its own).",
    "maximum_associations_per_ae": "Associations one calling AE title may hold (None: no "
    "limit of its own).",
    "maximum_pending_connections": "Connections that have not sent an A-ASSOCIATE-RQ yet "
    "(None: as many as ``maximum_associations``); at the limit a new one displaces the "
    "oldest that has waited 2 s.",
    "maximum_pending_per_address": "The same, per peer address (None: no limit of its own).",
    "acse_timeout": "Seconds for association set-up (from the connection to the "
    "A-ASSOCIATE-AC/RJ) and for release.",
    "dimse_timeout": "Seconds an SCU waits for a response; past it the association is "
    "aborted and ``DIMSETimeoutError`` raised (None: wait for ever).",
    "network_timeout": "Seconds an association may stay idle before it is aborted "
    "(None: no limit); a server checks every quarter of it.",
    "connection_timeout": "Seconds for the TCP connect (and TLS handshake) of "
    "``associate()`` (None: the OS's).",
    "artim_timeout": "PS3.8 ARTIM: seconds to wait for an A-ASSOCIATE-RQ after a "
    "connection, and for the peer's close after a rejection, release or abort.",
    "message_timeout": "Seconds a server allows for receiving one message, first byte to "
    "last fragment; past it: A-ABORT (None: off).",
    "require_called_aet": "Reject an association whose Called AE Title is not ours "
    "(permanent, called AE title not recognized). Off: any called title is accepted.",
    "require_calling_aet": "Calling AE titles accepted (empty: any); others are rejected "
    "(permanent, calling AE title not recognized).",
    "access_hook": "``hook(assoc)``, plain or async, run before accepting: None accepts, "
    "``(result, source, reason)`` rejects; one that raises or answers nonsense rejects.",
    "observer": "An ``aiodimse.observe.Observer`` that servers started from this AE report "
    "to (metrics, traces); None: nothing is observed.",
    "implementation_class_uid": "Sent in every A-ASSOCIATE-RQ/AC.",
    "implementation_version_name": "Sent in every A-ASSOCIATE-RQ/AC (None: left out).",
    "async_ops_window": "As requestor: ``(invoked, performed)`` proposed in an "
    "Asynchronous Operations Window item (None: not proposed, synchronous).",
    "maximum_async_ops": "As acceptor: the most ``(invoked, performed)`` granted; "
    "``(1, 1)`` means no asynchronous operations.",
    "maximum_command_size": "Bytes one command set may have; over it: A-ABORT.",
    "maximum_dataset_size": "Bytes one data set may have (inflated, when deflated); over "
    "it: 0x0213 for a deflated one, A-ABORT while receiving a plain one.",
    "store_to_file": "C-STORE: write each received instance to a temporary Part 10 file "
    "as it arrives (``event.dataset_path``) instead of holding it in memory.",
    "store_directory": "Where ``store_to_file`` writes (None: the system's temporary "
    "folder).",
    "maximum_stored_size": "Bytes one instance written by ``store_to_file`` may have; over "
    "it: 0xA700.",
    "maximum_inflate_ratio": "Inflated bytes per deflated byte a deflated data set may "
    "reach past 1 MiB (None: no limit); over it: 0x0213.",
    "max_pdata_cap": "Largest P-DATA-TF PDU buffered when we advertise a Maximum Length "
    "of 0 (no limit).",
    "handler_threads": "Threads that run plain (non-``async``) handlers at once.",
    "handler_timeout": "Seconds a request's handler may run; past it the peer gets 0x0110 "
    "and the handler is cancelled (None or 0: no limit).",
    "maximum_association_buffered": "Bytes of queued requests and partial messages of one "
    "association before it stops being read (read back pressure), until half drains.",
    "maximum_server_buffered": "The same, summed over a server's associations.",
}


class AEAttributes(_Table):
    """Every public attribute of a new ``AE``, its default and what it is for."""

    def build(self) -> list[nodes.Node]:
        defaults = {k: v for k, v in vars(AE("AIODIMSE")).items() if not k.startswith("_")}
        missing = sorted(set(defaults) - set(AE_ATTRIBUTES))
        stale = sorted(set(AE_ATTRIBUTES) - set(defaults))
        if missing or stale:
            raise self.error(f"AE attributes without a description {missing}, "
                             f"described but gone {stale}: update AE_ATTRIBUTES")
        rows = [[f"``{name}``", f"``{value!r}``", AE_ATTRIBUTES[name]]
                for name, value in defaults.items()]
        return [_table(["Attribute", "Default", "What"], rows)]


class StorageClasses(_Table):
    """Every SOP class the Storage SCP accepts, as ``STORAGE_CLASSES`` lists them."""

    def build(self) -> list[nodes.Node]:
        rows = [[UID(uid).name, f"``{uid}``", "Yes" if UID(uid).is_retired else ""]
                for uid in STORAGE_CLASSES]
        return [_table(["SOP class", "UID", "Retired"], rows, "storage-classes")]


class TransferSyntaxes(_Table):
    """``ALL_TRANSFER_SYNTAXES``: every transfer syntax pydicom knows, in our order."""

    def build(self) -> list[nodes.Node]:
        rows = [[UID(uid).name, f"``{uid}``"] for uid in ALL_TRANSFER_SYNTAXES]
        return [_table(["Transfer syntax", "UID"], rows)]


class QRModels(_Table):
    """The Query/Retrieve information models of ``aiodimse.archive.MODELS``."""

    def build(self) -> list[nodes.Node]:
        rows = [[f"{UID(uid).name}", f"``{uid}``", f"C-{m.operation}", ", ".join(m.levels)]
                for uid, m in MODELS.items()]
        return [_table(["SOP class", "UID", "Service", "Levels"], rows)]


def key_matching(key: Key) -> str:
    """How the query engine (aiodimse/archive/query.py) matches a key: by its VR, and
    the counts only returned. Keep in step with ``query._term`` / ``_condition``."""
    if key.computed and not key.multi:
        return "returned, not matched"
    kinds = {"UI": "single value, list of UIDs",
             "DA": "single value, range", "TM": "single value, range",
             "IS": "single value (as an integer)",
             "PN": "single value, wildcard (ASCII case ignored)"}
    kind = kinds.get(key.vr, "single value, wildcard")
    if key.multi:
        kind += "; matches if any of its values does"
    return kind


class ArchiveKeys(_Table):
    """The keys of ``records.KEYS`` by level: tag, VR, unique, how matched."""

    def build(self) -> list[nodes.Node]:
        rows = []
        for key in KEYS.values():
            tag = f"({key.tag >> 16:04X},{key.tag & 0xFFFF:04X})"
            rows.append([key.level, f"``{key.keyword}``", tag, key.vr,
                         "unique" if key.unique else "computed" if key.computed else "",
                         key_matching(key)])
        return [_table(["Level", "Keyword", "Tag", "VR", "Key", "Matching"], rows)]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("aiodimse-status-table", StatusTable)
    app.add_directive("aiodimse-unhandled-table", UnhandledTable)
    app.add_directive("aiodimse-state-table", StateTable)
    app.add_directive("aiodimse-ae-attributes", AEAttributes)
    app.add_directive("aiodimse-storage-classes", StorageClasses)
    app.add_directive("aiodimse-qr-models", QRModels)
    app.add_directive("aiodimse-transfer-syntaxes", TransferSyntaxes)
    app.add_directive("aiodimse-archive-keys", ArchiveKeys)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
