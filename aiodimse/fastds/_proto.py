"""Cheap constructors for pydicom objects, and the pydicom settings the fast path assumes.

``Dataset()`` runs pydicom's ``__setattr__`` a dozen times (8-25 µs); a Dataset made by
``object.__new__`` with its ``__dict__`` filled from a snapshot of a freshly built one is
the same object for every purpose and costs about 1 µs. The snapshot is taken lazily on
first use, so importing this module has no side effects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydicom.hooks
from pydicom import config
from pydicom.datadict import keyword_dict
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from .. import caches
from ..compat import FUTURE_FLAG, pydicom_layout_ok

__all__ = [
    "ELEMENT_ATTRIBUTES",
    "DeferredDataset",
    "deferred_dataset",
    "read_from_source",
    "dataset_members",
    "elements_by_stores",
    "new_dataset",
    "pydicom_is_default",
    "cached_tag",
]

# What dataset_members() put on DecodedDataset: the member names, the mutable ones
# and the config they were taken under.
_snapshot: dict[str, Any] = {}

_TAG_CACHE: dict[int, BaseTag] = {}
_TAG_CACHE_MAX = 4096

_new = object.__new__
# Sets a Dataset's __dict__ past Dataset.__setattr__ (the slot object.__setattr__ finds).
_set_dict = Dataset.__dict__["__dict__"].__set__


def dataset_members() -> tuple[str, ...]:
    """Put ``Dataset.__init__``'s members on DecodedDataset; return the mutable names.

    Every member but ``_dict`` becomes a DecodedDataset class attribute: the immutable
    ones as they are (the reader and later assignments store them in the instance,
    which wins), the mutable ones (pixel and private block caches, rarely read) as a
    ``_Fresh`` copied on first read. A DecodedDataset's own ``__dict__`` then starts
    with ``_dict`` and what the reader sets, not a copy of a dozen members. Done on
    first use, and again if pydicom's ``future_behavior()`` changed (read through
    ``compat.FUTURE_FLAG``), as that changes
    the members ``Dataset.__init__`` sets.
    """
    future = getattr(config, FUTURE_FLAG)
    if not _snapshot or _snapshot["future"] is not future:
        for name in _snapshot.get("members", ()):
            delattr(DecodedDataset, name)
        state = Dataset().__dict__
        mutable = tuple(k for k, v in state.items() if isinstance(v, dict | list | set))
        members = tuple(k for k in state if k != "_dict")
        for name in members:
            value = state[name]
            setattr(DecodedDataset, name, _Fresh(name, value) if name in mutable else value)
        _snapshot.update(mutable=mutable, members=members, future=future)
    return _snapshot["mutable"]  # type: ignore[no-any-return]


def new_dataset(
    elements: dict[BaseTag, Any] | None = None, cls: type[DecodedDataset] | None = None
) -> Dataset:
    """Return an empty (or ``elements``-holding) Dataset, as ``Dataset()`` would, cheaply.

    ``cls``: a DecodedDataset subclass to make instead.
    """
    if _snapshot.get("future") is not getattr(config, FUTURE_FLAG):
        if not pydicom_layout_ok():
            return _public_dataset(elements)
        dataset_members()
    ds: Dataset = _new(DecodedDataset if cls is None else cls)
    _set_dict(ds, {"_dict": {} if elements is None else elements})
    return ds


def new_element(tag: BaseTag, vr: str, value: Any, mode: int | None = None) -> DataElement:
    """A DataElement holding an already converted value, without pydicom's validation.

    Sets the attributes ``DataElement.__init__`` sets, so the result is the same; the
    caller guarantees that ``value`` has the type pydicom would give for ``vr``.
    ``mode`` is pydicom's reading validation mode, for callers that read it once.
    """
    if mode is None:
        mode = config.settings.reading_validation_mode
    if not pydicom_layout_ok():
        return _public_element(tag, vr, value, mode)
    elem: DataElement = _new(DataElement)
    state = zip(ELEMENT_ATTRIBUTES, (tag, vr, mode, value, None, False, None), strict=True)
    if elements_by_stores():
        for name, item in state:
            setattr(elem, name, item)
    else:
        object.__setattr__(elem, "__dict__", dict(state))
    return elem


def _public_dataset(elements: dict[BaseTag, Any] | None) -> Dataset:
    """new_dataset for a pydicom laid out otherwise (compat): pydicom's own Dataset."""
    ds = Dataset()
    for elem in (elements or {}).values():
        ds.add(elem)
    return ds


def _public_element(tag: BaseTag, vr: str, value: Any, mode: int) -> DataElement:
    """new_element for a pydicom laid out otherwise (compat): pydicom's constructor."""
    return DataElement(tag, vr, value, validation_mode=mode)


# DataElement.__init__ sets these attributes, in this order, plainly. Set the same way
# (not as a ready __dict__), CPython keeps them inline: no dict per element, and one
# object instead of two for the cyclic collector to scan.
ELEMENT_ATTRIBUTES = (
    "tag", "VR", "validation_mode", "_value", "file_tell", "is_undefined_length",
    "private_creator",
)  # fmt: skip
_by_stores: list[bool] = []


def elements_by_stores() -> bool:
    """Whether a DataElement made by storing ELEMENT_ATTRIBUTES in order is pydicom's own.

    Checked once against an element pydicom made: the same names in the same order,
    no class attribute or descriptor of those names, a plain ``__setattr__``.
    """
    if not _by_stores:
        _by_stores.append(
            tuple(DataElement(0x00100010, "PN", "").__dict__) == ELEMENT_ATTRIBUTES
            and DataElement.__setattr__ is object.__setattr__
            and not any(name in vars(DataElement) for name in ELEMENT_ATTRIBUTES)
        )
    return _by_stores[0]


def pydicom_is_default() -> bool:
    """True if pydicom's reading settings are those the fast decoder reproduces.

    Custom conversion hooks, callbacks, numpy/Decimal number types, datetime conversion,
    ``None`` as empty text value, debugging output, or objects laid out otherwise than
    this module knows (``compat.pydicom_layout_ok``): any of these sends decoding to
    pydicom.
    """
    return (
        pydicom_layout_ok()
        and config.data_element_callback is None
        and not config.datetime_conversion
        and not config.use_none_as_empty_text_VR_value
        and not config.use_DS_numpy
        and not config.use_IS_numpy
        and not config.use_DS_decimal
        and not config.debugging
        and pydicom.hooks.hooks.raw_element_vr is pydicom.hooks.raw_element_vr
        and pydicom.hooks.hooks.raw_element_value is pydicom.hooks.raw_element_value
        and not pydicom.hooks.hooks.raw_element_kwargs
    )


class DecodedDataset(Dataset):
    """The Dataset the decoder builds: pydicom's Dataset with a faster keyword read.

    ``ds.Keyword`` of an element already converted is ``ds._dict[tag].value`` in
    pydicom's own ``__getattr__`` too. pydicom reaches it through a failed normal
    lookup, its keyword lookup, ``Tag()`` and ``__getitem__`` (about 0.7 us a read).
    Here the first read of a keyword installs a :class:`_Keyword` descriptor on this
    class, so later reads find it by the normal lookup and take one dict lookup by
    the shared tag object (about 0.17 us). Raw elements, which need converting, and
    names that are not keywords go to pydicom.

    ``Dataset.__init__``'s pixel and private-block caches are made on first read
    (:class:`_Fresh`), so ``vars()`` lists them only once they were read.
    """

    def __getattr__(self, name: str) -> Any:
        if not _snapshot:  # unpickled before any snapshot: no class members yet
            dataset_members()
            return getattr(self, name)
        tag = _KEYWORD_TAGS.get(name)
        if tag is None:
            kw_tag = keyword_dict.get(name)
            if kw_tag is not None:
                tag = cached_tag(kw_tag)
                if caches.enabled:
                    _KEYWORD_TAGS[name] = tag
                    _install(name, tag)
        if tag is not None:
            elem = self._dict.get(tag)
            if type(elem) is DataElement:
                return elem.value
        return Dataset.__getattr__(self, name)

    def __dir__(self) -> list[str]:
        """What pydicom's ``Dataset.__dir__`` lists: not the installed keyword reads."""
        names = set(object.__dir__(self)).difference(_INSTALLED)
        return sorted(names | set(self.dir()))


class _Fresh:
    """A mutable member of ``Dataset.__init__``, made on a DecodedDataset's first read.

    A copy of its initial value, stored in the instance ``__dict__``, which wins from
    then on (a non-data descriptor). Most Datasets never read their pixel and private
    block caches: three dicts fewer to make and free per Dataset and sequence item.
    """

    __slots__ = ("initial", "name")

    def __init__(self, name: str, initial: dict[Any, Any] | list[Any] | set[Any]) -> None:
        self.name = name
        self.initial = initial

    def __get__(self, obj: Dataset | None, cls: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.initial.copy()
        obj.__dict__[self.name] = value
        return value


class _Keyword:
    """A non-data descriptor reading one keyword's value as pydicom's ``__getattr__`` does.

    Non-data, so anything in the instance ``__dict__`` would still win (pydicom never
    puts keywords there); assignment and deletion still go to ``Dataset.__setattr__``
    and ``__delattr__``. A missing element raises the AttributeError the normal lookup
    raises, as pydicom's fallback ``object.__getattribute__`` would.
    """

    __slots__ = ("name", "tag")

    def __init__(self, name: str, tag: BaseTag) -> None:
        self.name = name
        self.tag = tag

    def __get__(self, obj: Dataset | None, cls: type | None = None) -> Any:
        if obj is None:
            owner = cls.__name__ if cls is not None else "DecodedDataset"
            raise AttributeError(f"type object '{owner}' has no attribute '{self.name}'")
        elem = obj._dict.get(self.tag)
        if type(elem) is DataElement:
            return elem._value  # what DataElement.value returns
        if elem is not None:
            return obj[self.tag].value  # a raw element: pydicom converts it
        raise AttributeError(
            f"'{type(obj).__name__}' object has no attribute '{self.name}'",
            name=self.name,
            obj=obj,
        )


class DeferredDataset(DecodedDataset):
    """A DecodedDataset whose elements are made on first use, by ``make(source)``.

    Made by :func:`deferred_dataset`. Until then its ``__dict__`` holds ``_source`` and
    ``_make`` where a Dataset holds ``_dict``; the first read of ``_dict``, which any
    Dataset operation makes, builds it. A keyword read installed by
    :func:`read_from_source` is answered from the source before that.
    """

    def __getstate__(self) -> dict[str, Any]:
        """Built first: copies and pickles hold elements, not ``make`` and its source."""
        self._dict  # noqa: B018 - the read builds them
        return self.__dict__


class _Deferred:
    """``_dict`` of a DeferredDataset not built yet (non-data: the built one wins)."""

    __slots__ = ()

    def __get__(self, obj: Dataset | None, cls: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        elements = d["_make"](d["_source"])
        d["_dict"] = elements
        del d["_make"], d["_source"]
        return elements


DeferredDataset._dict = _Deferred()  # type: ignore[assignment]


def deferred_dataset(
    cls: type[DeferredDataset], source: Any, make: Callable[[Any], dict[BaseTag, Any]]
) -> Dataset:
    """A ``cls`` whose elements ``make(source)`` builds when first needed.

    Needs pydicom's own layout (``compat.pydicom_layout_ok``); callers check.
    """
    ds = new_dataset(cls=cls)
    d = ds.__dict__
    del d["_dict"]
    d["_source"] = source
    d["_make"] = make
    return ds


class _SourceRead(_Keyword):
    """A keyword read from a DeferredDataset's source while its elements are not built.

    ``kind(getattr(source, name))`` must be the value the built element would hold (a
    value of that exact type is taken as it is); a None (no element) builds them and
    reads as usual.
    """

    __slots__ = ("kind",)

    def __init__(self, name: str, tag: BaseTag, kind: type) -> None:
        super().__init__(name, tag)
        self.kind = kind

    def __get__(self, obj: Dataset | None, cls: type | None = None) -> Any:
        if obj is not None:
            source = obj.__dict__.get("_source")
            if source is not None:
                value = getattr(source, self.name, None)
                if type(value) is self.kind:
                    return value
                if value is not None:
                    return self.kind(value)
        return _Keyword.__get__(self, obj, cls)


def read_from_source(cls: type[DeferredDataset], name: str, tag: int, kind: type) -> None:
    """Answer ``cls``'s reads of keyword ``name`` from the source until it is built."""
    setattr(cls, name, _SourceRead(name, cached_tag(tag), kind))
    _INSTALLED.add(name)


_KEYWORD_TAGS: dict[str, BaseTag] = {}
_INSTALLED: set[str] = set()


def _install(name: str, tag: BaseTag) -> None:
    """Put a :class:`_Keyword` for ``name`` on DecodedDataset, unless a class has it.

    A name some class in the MRO defines (e.g. a property that raised AttributeError
    and so reached ``__getattr__``) is left as it is.
    """
    if any(name in vars(k) for k in DecodedDataset.__mro__):
        return
    setattr(DecodedDataset, name, _Keyword(name, tag))
    _INSTALLED.add(name)


def cached_tag(tag: int) -> BaseTag:
    """Return a BaseTag for ``tag``, shared between uses (bounded cache)."""
    t = _TAG_CACHE.get(tag)
    if t is None:
        t = BaseTag(tag)
        if len(_TAG_CACHE) < _TAG_CACHE_MAX and caches.enabled:
            _TAG_CACHE[tag] = t
    return t


caches.register("fastds.tags", "module", lambda _: len(_TAG_CACHE), _TAG_CACHE.clear)
caches.register("fastds.keywords", "module", lambda _: len(_KEYWORD_TAGS), _KEYWORD_TAGS.clear)
