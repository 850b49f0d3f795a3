"""Every private name of asyncio, logging and pydicom the package uses, and its fallback.

The fast paths lean on a few names their libraries do not promise to keep. Each is
reached only through this module, which checks (once, lazily) that the name is there
and behaves as the fast path assumes; when it does not, the caller gets the public
way to do the same thing: slower, same result. ``tests/test_compat.py`` takes each
name away and shows the fallback gives the same answers, on every supported Python.
The list, with the reason for each name, is in docs/internals.md ("Private names").

Also here: what Python 3.10 lacks (possessive regex quantifiers, ``tomllib``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pydicom.config
import pydicom.datadict
import pydicom.tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

__all__ = [
    "POSSESSIVE_RE",
    "tomllib",
    "socket_transport_maker",
    "TaskSwitch",
    "task_switch",
    "level_cache_get",
    "dictionary_vrs",
    "dictionary_vr",
    "LUT_DESCRIPTOR_TAGS",
    "FUTURE_FLAG",
    "READING_MODE_ATTRIBUTE",
    "pydicom_layout_ok",
]

# ---------------------------------------------------------------- Python versions

def _possessive() -> bool:
    try:
        re.compile("a*+")
    except re.error:  # Python 3.10: no possessive quantifiers or atomic groups
        return False
    return True


POSSESSIVE_RE = _possessive()
"""Whether ``re`` takes possessive quantifiers (``*+``; Python 3.11 and later)."""

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same API, from PyPI (a dependency on Python 3.10 only)
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

# ---------------------------------------------------------------- asyncio

_MAKERS: dict[type, bool] = {}


def socket_transport_maker(loop: asyncio.AbstractEventLoop) -> Callable[..., Any] | None:
    """``loop._make_socket_transport``, or None where the direct accept path cannot use it.

    Private to asyncio: what its own accept task calls to wrap an accepted socket.
    Taken only from a selector loop whose method accepts ``(sock, protocol, *,
    extra=...)``; None sends the listener to the public ``loop.create_server``.
    """
    make = getattr(loop, "_make_socket_transport", None)
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop) or not callable(make):
        return None
    ok = _MAKERS.get(type(loop))
    if ok is None:
        try:
            params = inspect.signature(make).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        names = list(params)
        ok = _MAKERS[type(loop)] = (
            names[:2] == ["sock", "protocol"]
            and "extra" in params
            and params["extra"].kind in (inspect.Parameter.KEYWORD_ONLY,
                                         inspect.Parameter.POSITIONAL_OR_KEYWORD)
        )
    return make if ok else None


class TaskSwitch:
    """asyncio's private current-task bookkeeping, for an eager first step on 3.11.

    ``enter(loop, task)`` / ``leave(loop, task)`` are ``asyncio.tasks._enter_task`` and
    ``_leave_task``; ``current`` is ``asyncio.tasks._current_tasks`` (loop -> task).
    """

    __slots__ = ("current", "enter", "leave")

    def __init__(self, enter: Callable[[Any, Any], None], leave: Callable[[Any, Any], None],
                 current: dict[Any, Any]) -> None:
        self.enter = enter
        self.leave = leave
        self.current = current


def task_switch(tasks: Any = asyncio.tasks) -> TaskSwitch | None:
    """The current-task bookkeeping of ``tasks`` (asyncio's), or None if it is not there.

    None (or Python 3.12+, which has ``eager_start``) means no eager first step by
    hand: the handler runs in a Task, as on Python 3.10.
    """
    enter = getattr(tasks, "_enter_task", None)
    leave = getattr(tasks, "_leave_task", None)
    current = getattr(tasks, "_current_tasks", None)
    if not (callable(enter) and callable(leave) and type(current) is dict):
        return None
    return TaskSwitch(enter, leave, current)


# ---------------------------------------------------------------- logging

def _no_answer(level: int) -> None:
    return None


def level_cache_get(logger: logging.Logger) -> Callable[[int], bool | None]:
    """``logger._cache.get``: the answer ``isEnabledFor(level)`` cached, or None.

    ``Logger._cache`` is logging's private per-level cache (filled by
    ``isEnabledFor``, cleared whenever a level changes); reading it is a dict lookup
    instead of a Python call on the per-message path. Callers must treat None as
    "ask ``isEnabledFor``", which is all the fallback (no such cache, or one that does
    not fill as expected) ever answers.
    """
    cache = getattr(logger, "_cache", None)
    if type(cache) is not dict:
        return _no_answer
    probe = logging.Logger("aiodimse.compat.probe", logging.INFO)
    probe_cache = getattr(probe, "_cache", None)
    answer = probe.isEnabledFor(logging.DEBUG)
    if type(probe_cache) is not dict or probe_cache.get(logging.DEBUG, None) is not answer:
        return _no_answer
    return cache.get


# ---------------------------------------------------------------- pydicom

def dictionary_vrs(module: Any = None, datadict: Any = pydicom.datadict) -> dict[int, str]:
    """Tag -> VR for every tag in pydicom's data dictionary (not the repeaters).

    Read from the private ``pydicom._dicom_dict.DicomDictionary`` (one pass over a
    dict), else from the same table as ``pydicom.datadict`` re-exports it; the last
    fallback asks the public ``dictionary_VR`` for each tag of ``keyword_dict`` (every
    tag but five retired ones without a keyword, which the decoder then reads through
    pydicom's lookup: the same values, a little slower).
    """
    if module is None:
        try:
            import pydicom._dicom_dict as module  # noqa: PLC0415 - private, only here
        except ImportError:
            module = None
    for table in (getattr(module, "DicomDictionary", None),
                  getattr(datadict, "DicomDictionary", None)):
        if isinstance(table, Mapping):
            try:
                return {int(tag): str(entry[0]) for tag, entry in table.items()}
            except (TypeError, IndexError, ValueError):
                pass  # another layout: the next way
    vr_of = pydicom.datadict.dictionary_VR
    return {int(tag): vr_of(tag) for tag in pydicom.datadict.keyword_dict.values()}


def _public_vr(tag: int) -> str:
    return pydicom.datadict.dictionary_VR(tag)


def _dictionary_vr_getter(datadict: Any = pydicom.datadict) -> Callable[[int], str]:
    """``pydicom.datadict._dictionary_vr_fast`` (an int tag, no Tag()), else the public one.

    Both raise KeyError for a tag the dictionary (repeaters included) does not know.
    """
    fast = getattr(datadict, "_dictionary_vr_fast", None)
    return fast if callable(fast) else _public_vr


dictionary_vr = _dictionary_vr_getter()
"""The dictionary VR of an int tag, repeating groups included; KeyError if unknown."""

# PS3.3 C.11.1.1.1 / C.7.6.16.2.12: LUT Descriptor values are read as US whatever the VR.
_LUT_DESCRIPTORS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})


def _lut_descriptor_tags(tag_module: Any = pydicom.tag) -> frozenset[int]:
    """The tags pydicom reads as LUT descriptors (``pydicom.tag._LUT_DESCRIPTOR_TAGS``)."""
    tags = getattr(tag_module, "_LUT_DESCRIPTOR_TAGS", None)
    try:
        return frozenset(int(t) for t in tags) if tags is not None else _LUT_DESCRIPTORS
    except (TypeError, ValueError):
        return _LUT_DESCRIPTORS


LUT_DESCRIPTOR_TAGS = _lut_descriptor_tags()
"""The tags whose SS/US value pydicom decodes specially (the LUT descriptors)."""


def _future_flag(config: Any = pydicom.config) -> str:
    """The name of the pydicom config attribute that ``future_behavior()`` changes.

    ``config._use_future`` is the flag itself; without it, the public
    ``INVALID_KEYWORD_BEHAVIOR``, which ``future_behavior()`` sets with it (a change
    of either tells the fast path to look at ``Dataset()``'s members again).
    """
    return "_use_future" if type(getattr(config, "_use_future", None)) is bool \
        else "INVALID_KEYWORD_BEHAVIOR"


FUTURE_FLAG = _future_flag()
"""Read as ``getattr(pydicom.config, FUTURE_FLAG)``; see :func:`_future_flag`."""


def _reading_mode_attribute(settings: Any = pydicom.config.settings) -> str:
    """Where to read pydicom's reading validation mode with no call.

    ``settings._reading_validation_mode`` is what the public property returns unless
    it is None (then the property's default applies, so readers fall back to it on
    None); without it, the property itself.
    """
    private = getattr(settings, "_reading_validation_mode", False)
    if private is None or (type(private) is int
                           and private == settings.reading_validation_mode):
        return "_reading_validation_mode"
    return "reading_validation_mode"


READING_MODE_ATTRIBUTE = _reading_mode_attribute()
"""``getattr(pydicom.config.settings, READING_MODE_ATTRIBUTE)``: the mode, or None."""

_layout: list[bool] = []

# The private members of pydicom's objects that aiodimse.fastds reads and writes.
_DATASET_MEMBERS = frozenset({"_dict", "_read_implicit", "_read_little", "_read_charset",
                              "_parent_encoding"})


def _probe_layout(dataset: type = Dataset, element: type = DataElement,
                  sequence: type = Sequence, multivalue: type = MultiValue) -> bool:
    """Whether pydicom's objects keep their state where aiodimse.fastds reads it.

    Built with the public API, then looked at through the private members:
    ``Dataset._dict`` (tag -> element) and its read flags, ``DataElement._value``
    (what ``.value`` returns), ``Sequence._list`` and ``MultiValue._list`` /
    ``_constructor``, and ``Dataset._character_set`` (the encoding a write uses).
    """
    try:
        ds = dataset()
        ds.PatientName = "A^B"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ReferencedSOPSequence = sequence([dataset()])
        elem = ds[0x00100010]
        image_type = ds[0x00080008].value
        state = vars(ds)
        return bool(
            state.keys() >= _DATASET_MEMBERS
            and type(state["_dict"]) is dict
            and state["_dict"].get(0x00100010) is elem
            and elem is not None and vars(elem).get("_value") is elem.value
            and type(image_type) is multivalue
            and vars(image_type).get("_list") == ["ORIGINAL", "PRIMARY"]
            and callable(vars(image_type).get("_constructor"))
            and type(vars(ds.ReferencedSOPSequence).get("_list")) is list
            and ds._character_set == state["_parent_encoding"]
        )
    except Exception:  # any surprise: not the layout the fast path knows
        return False


def pydicom_layout_ok() -> bool:
    """Cached :func:`_probe_layout`: False sends every data set through pydicom itself."""
    if not _layout:
        _layout.append(_probe_layout())
    return _layout[0]
