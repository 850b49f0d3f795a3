"""One switch for every cache, and the registry that lists them.

Caches and memo tables are there for speed only: with them off, every answer must be
the same. ``disable()`` turns them all off (and empties them), ``enable()`` back on;
``AIODIMSE_CACHES=0`` in the environment starts with them off (tests/run.sh runs the
service and interop tests that way once). A cache consults ``enabled`` where it would
keep something, never where it looks up: a cache that keeps nothing finds nothing, so
the enabled path pays nothing for the switch.

Each cache registers itself (``register``) with a name, its scope and a way to count
what it holds; docs/internals.md ("Caches") describes every registered name, which
``tests/aio/test_caches.py`` checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["CacheInfo", "disable", "enable", "enabled", "register", "registry", "sizes"]

Scope = Literal["module", "server", "association"]

enabled: bool = os.environ.get("AIODIMSE_CACHES", "1").strip().lower() not in (
    "0", "off", "false", "no")
"""Whether caches may keep anything. Read it as ``caches.enabled`` (not imported by
name): ``disable()`` rebinds it."""


@dataclass(frozen=True)
class CacheInfo:
    """One cache: ``size(owner)`` counts its entries (owner None for a module cache,
    else the Server or the Association holding it); ``clear`` empties a module cache."""

    name: str
    scope: Scope
    size: Callable[[Any], int]
    clear: Callable[[], None] | None = None


_REGISTRY: dict[str, CacheInfo] = {}


def register(name: str, scope: Scope, size: Callable[[Any], int],
             clear: Callable[[], None] | None = None) -> None:
    """List a cache (at import of the module that holds it)."""
    _REGISTRY[name] = CacheInfo(name, scope, size, clear)


def registry() -> dict[str, CacheInfo]:
    """Every registered cache, by name (import the modules first to see them all)."""
    return dict(_REGISTRY)


def sizes(owner: Any = None, scope: Scope = "module") -> dict[str, int]:
    """Entries held by each cache of ``scope`` (of ``owner``'s, for servers and
    associations)."""
    return {name: info.size(owner) for name, info in _REGISTRY.items() if info.scope == scope}


def disable() -> None:
    """Turn every cache off and empty the module-wide ones (servers' and associations'
    caches keep nothing more; ones made before may still answer from what they hold)."""
    global enabled  # noqa: PLW0603 - the switch is this module's one global
    enabled = False
    for info in _REGISTRY.values():
        if info.clear is not None:
            info.clear()


def enable() -> None:
    """Turn caches back on (they fill again as they are used)."""
    global enabled  # noqa: PLW0603
    enabled = True
