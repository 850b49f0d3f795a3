"""Test suite package, so that layers can share helpers (e.g. ``tests.wire.strategies``)."""
