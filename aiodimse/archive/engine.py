"""The query engine: a request's identifier in, response identifiers (C-FIND) or the
instances to send (C-GET/C-MOVE) out, streamed from the archive index.

Checking happens when ``find`` or ``retrieval`` is called (``QueryError`` then,
before any response); the matches are read as they are taken, in the index's
bounded batches, so the first one goes out before the last is found and a result
of any size costs one batch of memory.

A C-FIND response identifier holds every key of the request, in its order: an
index key with its value, any other key zero-length (a sequence key empty), and
the level's unique key even when the request left it out; QueryRetrieveLevel is
the request's. SpecificCharacterSet: ISO_IR 192 (UTF-8) when a value is not
ASCII, else the request's own if it had one (ASCII fits every character set),
else none (the default repertoire). RetrieveAETitle is set when the engine has
one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import IS, PersonName

from ..store.interface import ArchiveIndex
from ..store.records import IndexQuery, RetrieveItem, Row
from .models import QueryModel
from .query import FindRequest, parse_find, parse_retrieve

__all__ = ["QueryEngine", "Retrieval", "answer"]

_RETRIEVE_AE_TITLE = BaseTag(0x00080054)
_QUERY_RETRIEVE_LEVEL = BaseTag(0x00080052)
_SPECIFIC_CHARACTER_SET = BaseTag(0x00080005)
_UTF8 = "ISO_IR 192"
_TRUSTED = config.IGNORE  # the index's values were checked when stored: not again each answer


def _plain(text: str) -> str:
    return text


def _uid(text: str) -> UID:
    return UID(text, _TRUSTED)


def _person(text: str) -> PersonName:
    return PersonName(text, validation_mode=_TRUSTED)


def _integer(text: str) -> Any:
    return IS(text, _TRUSTED)


# A single value of each index key's VR as pydicom's DataElement converts it; text
# with a backslash (several values) goes pydicom's own way.
_CONVERT: dict[str, Callable[[str], Any]] = {
    "UI": _uid, "PN": _person, "IS": _integer, "LO": _plain, "SH": _plain, "CS": _plain}
_DATE_TIME = frozenset({"DA", "TM", "DT"})  # plain text unless config.datetime_conversion


def _element(tag: BaseTag, vr: str, text: str) -> DataElement:
    """``text`` as pydicom's element of ``vr`` holds it, built without its checks (the
    index's values were checked when stored): half the cost of an answer before."""
    convert = _CONVERT.get(vr)
    if convert is None and vr in _DATE_TIME and not config.datetime_conversion:
        convert = _plain
    if convert is None or "\\" in text:
        return DataElement(tag, vr, text, validation_mode=_TRUSTED)
    return DataElement(tag, vr, convert(text), already_converted=True,
                       validation_mode=_TRUSTED)


def answer(request: FindRequest, row: Row, retrieve_aet: str | None = None) -> Dataset:
    """The response identifier of one match."""
    elems: dict[BaseTag, DataElement | RawDataElement] = {}
    private: list[DataElement] = []  # (added through the Dataset: their creator is looked up)
    ascii_only = True
    for tag, vr, keyword in request.answer:
        if keyword is not None:
            text = row.get(keyword, "")
            if text and not text.isascii():
                ascii_only = False
            elem = (_element(tag, vr, text) if text
                    else DataElement(tag, vr, None, already_converted=True,
                                     validation_mode=_TRUSTED))
        elif vr == "SQ":
            elem = DataElement(tag, vr, DicomSequence(), already_converted=True,
                               validation_mode=_TRUSTED)
        elif tag == _RETRIEVE_AE_TITLE and retrieve_aet:
            elem = DataElement(tag, vr, retrieve_aet, already_converted=True,
                               validation_mode=_TRUSTED)
        else:
            elem = DataElement(tag, vr, None, already_converted=True,
                               validation_mode=_TRUSTED)
        if tag.is_private:
            private.append(elem)
        else:
            elems[tag] = elem
    elems[_QUERY_RETRIEVE_LEVEL] = DataElement(
        _QUERY_RETRIEVE_LEVEL, "CS", request.query.level, already_converted=True,
        validation_mode=_TRUSTED)
    if retrieve_aet and _RETRIEVE_AE_TITLE not in elems:
        elems[_RETRIEVE_AE_TITLE] = DataElement(_RETRIEVE_AE_TITLE, "AE", retrieve_aet,
                                                already_converted=True)
    charset = request.charset if ascii_only else _UTF8
    if charset:
        elems[_SPECIFIC_CHARACTER_SET] = DataElement(
            _SPECIFIC_CHARACTER_SET, "CS", charset, validation_mode=_TRUSTED)
    ds = Dataset(elems)
    for elem in private:
        ds.add(elem)
    return ds


class Retrieval:
    """The instances a C-GET or C-MOVE asks for: ``count()`` for the number of
    sub-operations, then iterate (each time a fresh read of the index)."""

    def __init__(self, index: ArchiveIndex, query: IndexQuery) -> None:
        self.index = index
        self.query = query

    async def count(self) -> int:
        return await self.index.count_retrieve(self.query)

    def __aiter__(self) -> AsyncIterator[RetrieveItem]:
        return self.index.retrieve(self.query)


class QueryEngine:
    """Answers Query/Retrieve requests from an ``ArchiveIndex``."""

    def __init__(self, index: ArchiveIndex, *, retrieve_aet: str | None = None) -> None:
        self.index = index
        self.retrieve_aet = retrieve_aet

    def find(self, model: QueryModel, identifier: Dataset) -> AsyncIterator[Dataset]:
        """The response identifiers of a C-FIND, as they are found.

        Raises ``QueryError`` (``models``: its ``status`` is the answer) at once.
        """
        return self._answers(parse_find(model, identifier))

    async def _answers(self, request: FindRequest) -> AsyncIterator[Dataset]:
        async for row in self.index.match(request.query):
            yield answer(request, row, self.retrieve_aet)

    def retrieval(self, model: QueryModel, identifier: Dataset) -> Retrieval:
        """What a C-GET or C-MOVE identifier names. Raises ``QueryError`` at once."""
        return Retrieval(self.index, parse_retrieve(model, identifier))
