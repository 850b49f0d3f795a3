"""The reference pages that are written by hand say what the code does: the metric
table names exactly the metrics ``PrometheusObserver`` registers, with their types."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from aiodimse.prometheus import PrometheusObserver

CLI = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def documented_metrics() -> dict[str, str]:
    """Metric name -> type, from docs/cli.md's table under "### Metrics"."""
    text = CLI.read_text()
    section = text[text.index("### Metrics"):text.index("### Tracing")]
    found: dict[str, str] = {}
    for row in re.findall(r"^\| (`aiodimse_.*?) \| (\w+) \|", section, re.M):
        names, kind = row
        for name in re.findall(r"`(aiodimse_\w+)`", names):
            found[name] = kind
    return found


def test_the_metric_table_is_the_registered_metrics() -> None:
    registry = CollectorRegistry()
    PrometheusObserver(registry)
    registered = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        registered[name] = family.type
    assert documented_metrics() == registered
