"""``serve --otel``: OpenTelemetry traces, exported as the standard ``OTEL_*`` variables say.

The tracer provider is the SDK's, built here rather than by
``opentelemetry-instrument`` so that ``serve`` needs nothing else:

- ``OTEL_TRACES_EXPORTER``: ``otlp`` (the default), ``console``, ``none``, or any
  exporter installed under the ``opentelemetry_traces_exporter`` entry points,
  comma-separated. ``otlp`` is the HTTP/protobuf exporter unless
  ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` say
  ``grpc``; either needs its package (``opentelemetry-exporter-otlp``).
- The exporters read their own variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, headers...);
  the SDK reads ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*`` and ``OTEL_RESOURCE_ATTRIBUTES``.
- ``OTEL_SERVICE_NAME`` defaults to ``aiodimse``.

Every process (each ``--workers`` worker) exports its own spans; the provider is
shut down (its batch flushed) when ``serve`` stops. opentelemetry is imported only
here and in aiodimse/tracing.py, lazily: without the ``otel`` extra ``serve`` runs
as before unless ``--otel`` is asked for.
"""

from __future__ import annotations

import importlib.util
import os
from importlib.metadata import entry_points
from typing import Any

from ..logs import get_logger
from ..observe import Observer

__all__ = ["MISSING", "TracingError", "Tracing", "available"]

log = get_logger("aiodimse.serve")

MISSING = "--otel needs the OpenTelemetry SDK: pip install 'aiodimse[otel]'"
_OTLP = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


class TracingError(RuntimeError):
    """The ``OTEL_*`` settings name an exporter that cannot be used."""


def available() -> bool:
    """The OpenTelemetry SDK can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("opentelemetry.sdk.trace") is not None
    except (ImportError, ValueError):  # opentelemetry itself missing or stubbed out
        return False


def _exporter_names() -> list[str]:
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    if names == ["none"]:
        return []
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if "otlp" in names and protocol not in _OTLP:
        raise TracingError(f"OTEL_EXPORTER_OTLP_PROTOCOL must be one of "
                           f"{', '.join(_OTLP)}, not {protocol!r}")
    return [_OTLP[protocol] if name == "otlp" else name for name in names]


def _exporters() -> list[Any]:
    found = {e.name: e for e in entry_points(group="opentelemetry_traces_exporter")}
    exporters = []
    for name in _exporter_names():
        entry = found.get(name)
        if entry is None:
            hint = ("pip install opentelemetry-exporter-otlp" if name.startswith("otlp")
                    else "is its package installed?")
            raise TracingError(f"OTEL_TRACES_EXPORTER: no exporter {name!r} ({hint}; "
                               "OTEL_TRACES_EXPORTER=console prints spans instead)")
        try:
            exporters.append(entry.load()())
        except Exception as exc:  # a third-party exporter's own start-up failure
            raise TracingError(f"OTEL_TRACES_EXPORTER: exporter {name!r} failed to start: "
                               f"{exc}") from exc
    return exporters


class Tracing:
    """The process's tracer provider and the observer making its spans."""

    def __init__(self) -> None:
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 - optional extra
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 - optional extra
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

        from ..tracing import TracingObserver  # noqa: PLC0415 - optional extra

        named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", "")
        resource = Resource.create({} if named else {"service.name": "aiodimse"})
        self.provider = TracerProvider(resource=resource)
        exporters = _exporters()
        for exporter in exporters:
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.observer: Observer = TracingObserver(self.provider)
        log.info("tracing: spans to %s", ", ".join(type(e).__name__ for e in exporters)
                 or "no exporter (OTEL_TRACES_EXPORTER=none)")

    def close(self) -> None:
        """Flush and stop the exporters."""
        self.provider.shutdown()
