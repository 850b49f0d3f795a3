"""``aiodimse serve`` configuration: a TOML file, then command-line flags on top.

The TOML layout (every key optional)::

    [server]
    ae_title = "ARCHIVE"
    host = "0.0.0.0"
    port = 11112
    data = "/var/lib/aiodimse"
    database = "sqlite:////var/lib/aiodimse/aiodimse.sqlite3"  # the store (or a path);
                                  # default: aiodimse.sqlite3 in data
    index_dirs = ["/srv/dicom"]
    rescan_interval = 300         # seconds between rescans of index_dirs; 0: none
    allowed_calling_aets = ["CT1", "MR1"]   # empty: anyone
    require_called_aet = false
    log_level = "INFO"
    log_format = "text"           # or "json": one JSON object per line
    summary_interval = 60         # seconds between INFO summary lines
    workers = 1
    metrics_port = 0              # Prometheus metrics on this port; 0: off
    metrics_host = "127.0.0.1"
    otel = false                  # OpenTelemetry spans (exporter: OTEL_* variables)

    [tls]
    cert = "server.pem"
    key = "server.key"
    ca = "clients.pem"            # set: clients must present a certificate

    [limits]
    max_associations = 64
    max_associations_per_address = 32   # 0: no limit of its own
    max_associations_per_ae = 32        # per calling AE title; 0: no limit
    max_pending = 128             # connected, no A-ASSOCIATE-RQ yet (oldest closed)
    max_pending_per_address = 16  # 0: no limit
    max_pdu = 16382
    artim_timeout = 30
    message_timeout = 30          # first byte to last fragment of a message; 0: off
    acse_timeout = 30
    dimse_timeout = 30
    network_timeout = 60
    connection_timeout = 10
    shutdown_grace = 10
    handler_threads = 32          # threads for plain (sync) handlers
    handler_timeout = 60          # a handler running longer is answered 0x0110; 0: none
    max_dataset_size = 67108864   # bytes of one data set (deflated ones: once inflated)
    association_buffer = 67108864 # bytes queued per association before it is not read
    server_buffer = 268435456     # the same, summed over all associations

    [services]                    # which services run (all by default)
    verification = true
    storage_commitment = true
    mpps = true
    storage = true                # Storage SCP: C-STORE into the archive
    query_retrieve = true         # Query/Retrieve SCP: C-FIND, C-GET, C-MOVE
    ups = true                    # Unified Procedure Step workitems (docs/ups.md)

    [storage]
    archive = "/srv/archive"      # where received instances go; default: archive in data
    duplicates = "replace"        # an instance stored again: "replace" or "keep" the first
    fsync = true                  # sync each file before answering (false: faster, less safe)

    [commitment]
    same_association = true
    require_scp_role = true
    retry_initial = 2
    retry_max = 300
    deadline = 86400
    max_concurrent = 8            # associations delivering reports at once
    max_per_destination = 2       # ... to one AE
    batch_size = 32               # reports taken at a time for one association
    refuse_unlisted_ae = false    # true: refuse (0x0124) requests from AEs not in [ae.*]

    [quotas]                      # sizes in bytes, 0: no limit (see services/quotas.py)
    mpps_max_request = 1048576
    mpps_max_instance = 1048576
    commitment_max_request = 16777216
    ae_max_bytes = 67108864       # stored per calling AE and service per window
    ae_window = 3600

    [ups]                         # Unified Procedure Step workitems (docs/ups.md)
    keep_final = 0                # seconds a COMPLETED or CANCELED workitem is kept
                                  # after its last change (none held by a deletion
                                  # lock is deleted); 0: kept forever
    purge_interval = 3600         # seconds between deletions of those past keeping
    status_aets = ["RIS"]         # told of each start (and stop) of the SCP even
                                  # when not subscribed: PS3.4 CC.2.4.3's fallback
                                  # list; each needs an [ae.*] entry

    [ae.CT1]                      # the AE table: where reports go
    host = "10.0.0.5"
    port = 11113
    tls = false
"""

from __future__ import annotations

import argparse
import ssl
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..compat import tomllib
from ..services.delivery import DeliveryPolicy, Peer
from ..services.quotas import Quotas
from ..store import DB_FILENAME
from .config_checks import check_config, resolve_paths

__all__ = ["ConfigError", "DUPLICATE_POLICIES", "PeerEntry", "SERVICES", "ServeConfig",
           "load_toml", "build_config", "server_ssl_context"]

# The services ``aiodimse serve`` can run (cli/serve.py builds them), in start order.
SERVICES = ("verification", "storage_commitment", "mpps", "storage", "query_retrieve", "ups")
DUPLICATE_POLICIES = ("replace", "keep")


class ConfigError(ValueError):
    """The configuration file or flags are not usable."""


@dataclass(frozen=True, slots=True)
class PeerEntry:
    """One row of the AE table."""

    host: str
    port: int
    tls: bool = False

    def peer(self, ca: str | None, cert: str | None = None, key: str | None = None) -> Peer:
        """With ``tls``: verify the peer against ``ca`` (the system's CAs if None) and
        present our certificate, if we have one, for client authentication."""
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=ca)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if cert:
                ctx.load_cert_chain(cert, key)
        return Peer(host=self.host, port=self.port, ssl_context=ctx)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """Everything ``aiodimse serve`` needs."""

    ae_title: str = "AIODIMSE"
    host: str = "0.0.0.0"
    port: int = 11112
    data: Path = Path("aiodimse-data")
    database: str | None = None  # the store's URL (open_store); None: SQLite in ``data``
    index_dirs: tuple[Path, ...] = ()
    rescan_interval: float = 300.0  # seconds between rescans of index_dirs; 0: none
    allowed_calling_aets: tuple[str, ...] = ()
    require_called_aet: bool = False
    log_level: str = "INFO"
    log_format: str = "text"  # or "json" (logs.JsonLineFormatter)
    summary_interval: float = 60.0
    workers: int = 1
    metrics_port: int = 0  # 0: no metrics endpoint
    metrics_host: str = "127.0.0.1"
    otel: bool = False  # OpenTelemetry tracing (cli/tracing.py)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    max_associations: int = 64
    max_associations_per_address: int = 32
    max_associations_per_ae: int = 32
    max_pending: int = 128
    max_pending_per_address: int = 16
    max_pdu: int = 16382
    artim_timeout: float = 30.0
    message_timeout: float = 30.0
    acse_timeout: float = 30.0
    dimse_timeout: float = 30.0
    network_timeout: float = 60.0
    connection_timeout: float = 10.0
    shutdown_grace: float = 10.0
    handler_threads: int = 32
    handler_timeout: float = 60.0
    max_dataset_size: int = 64 * 1024 * 1024
    association_buffer: int = 64 * 1024 * 1024
    server_buffer: int = 256 * 1024 * 1024
    ae_table: dict[str, PeerEntry] = field(default_factory=dict)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    quotas: Quotas = field(default_factory=Quotas)
    services: tuple[str, ...] = SERVICES  # those enabled, in start order
    archive_dir: Path | None = None  # received instances; None: ``data``/archive
    duplicates: str = "replace"  # archive/writer.py's duplicate policy
    fsync: bool = True  # sync each received file before answering it
    ups_keep_final: float = 0.0  # [ups] keep_final: seconds; 0: final workitems kept
    ups_purge_interval: float = 3600.0  # [ups] purge_interval
    ups_status_aets: tuple[str, ...] = ()  # [ups] status_aets: SCP Status Change fallback

    def archive(self) -> Path:
        """The archive folder: ``archive_dir``, else ``archive`` in ``data``."""
        return self.archive_dir or self.data / "archive"

    def database_url(self) -> str:
        """What ``open_store`` opens: ``database``, else the SQLite file in ``data``."""
        return self.database or str(self.data / DB_FILENAME)

    def peers(self) -> dict[str, Peer]:
        return {
            title: entry.peer(self.tls_ca, self.tls_cert, self.tls_key)
            for title, entry in self.ae_table.items()
        }


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file (``tomllib``, or its backport ``tomli`` on Python 3.10)."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return dict(doc)


# Slots and deadlines against peers holding them (docs/cli.md), as keys and flags.
_SLOT_KEYS = ("max_associations_per_address", "max_associations_per_ae", "max_pending",
              "max_pending_per_address", "artim_timeout", "message_timeout")

_SECTIONS = {
    "server": {"ae_title", "host", "port", "data", "database", "index_dirs", "rescan_interval",
               "allowed_calling_aets", "require_called_aet", "log_level", "log_format",
               "summary_interval", "workers", "metrics_port", "metrics_host", "otel"},
    "tls": {"cert", "key", "ca"},
    "storage": {"archive", "duplicates", "fsync"},
    "ups": {"keep_final", "purge_interval", "status_aets"},
    "limits": {"max_associations", "max_pdu", "acse_timeout", "dimse_timeout",
               "network_timeout", "connection_timeout", "shutdown_grace",
               "handler_threads", "handler_timeout", "max_dataset_size",
               "association_buffer", "server_buffer", *_SLOT_KEYS},
}


def _from_toml(doc: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    known = {f.name for f in fields(ServeConfig)}
    for section, keys in _SECTIONS.items():
        table = doc.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        for key, value in table.items():
            if key not in keys:
                raise ConfigError(f"unknown key {key!r} in [{section}]")
            name = (f"{section}_{key}" if section in ("tls", "ups") else
                    "archive_dir" if (section, key) == ("storage", "archive") else key)
            if name in known:
                values[name] = value
    policy = doc.get("commitment", {})
    policy_fields = {f.name for f in fields(DeliveryPolicy)}
    for key in policy:
        if key not in policy_fields:
            raise ConfigError(f"unknown key {key!r} in [commitment]")
    values["delivery"] = DeliveryPolicy(**policy)
    quotas = doc.get("quotas", {})
    for key in quotas:
        if key not in {f.name for f in fields(Quotas)}:
            raise ConfigError(f"unknown key {key!r} in [quotas]")
    values["quotas"] = Quotas(**quotas)
    peers: dict[str, PeerEntry] = {}
    for title, entry in doc.get("ae", {}).items():
        try:
            peers[title] = PeerEntry(str(entry["host"]), int(entry["port"]),
                                     bool(entry.get("tls", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"[ae.{title}] needs host and port: {exc}") from exc
    values["ae_table"] = peers
    enabled = doc.get("services", {})
    if not isinstance(enabled, dict):
        raise ConfigError("[services] must be a table")
    for key, value in enabled.items():
        if key not in SERVICES:
            raise ConfigError(f"unknown service {key!r} in [services] (known: "
                              f"{', '.join(SERVICES)})")
        if not isinstance(value, bool):
            raise ConfigError(f"[services] {key} must be true or false")
    values["services"] = tuple(n for n in SERVICES if enabled.get(n, True))
    unknown = set(doc) - {*_SECTIONS, "commitment", "quotas", "ae", "services"}
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(unknown))}")
    return values


def _parse_peer(text: str) -> tuple[str, PeerEntry]:
    """``TITLE@HOST:PORT`` from ``--peer``."""
    title, sep, address = text.partition("@")
    host, colon, port = address.rpartition(":")
    if not sep or not colon or not title:
        raise ConfigError(f"--peer wants TITLE@HOST:PORT, got {text!r}")
    return title, PeerEntry(host, int(port))


def build_config(args: argparse.Namespace) -> ServeConfig:
    """The TOML file (``--config``) first, then every flag that was given."""
    values: dict[str, Any] = {}
    if args.config:
        values = _from_toml(load_toml(args.config))
        resolve_paths(values, Path(args.config).parent)
    flags = {
        "ae_title": args.aet, "host": args.host, "port": args.port, "data": args.data,
        "database": args.database,
        "rescan_interval": getattr(args, "rescan_interval", None),
        "log_level": args.log_level, "log_format": getattr(args, "log_format", None),
        "workers": args.workers, "tls_cert": args.tls_cert,
        "tls_key": args.tls_key, "tls_ca": args.tls_ca,
        "max_associations": args.max_associations, "max_pdu": args.max_pdu,
        "require_called_aet": args.require_called_aet,
        "metrics_port": getattr(args, "metrics_port", None),
        "metrics_host": getattr(args, "metrics_host", None),
        "otel": getattr(args, "otel", None),
        "archive_dir": getattr(args, "archive_dir", None),
        "duplicates": getattr(args, "duplicates", None),
        **{key: getattr(args, key, None) for key in _SLOT_KEYS},
    }
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.timeout is not None:
        for key in ("acse_timeout", "dimse_timeout", "connection_timeout", "message_timeout"):
            if getattr(args, key, None) is None:  # --message-timeout beats --timeout
                values[key] = args.timeout
    if args.index_dir:
        values["index_dirs"] = [*values.get("index_dirs", []), *args.index_dir]
    if args.allow:
        values["allowed_calling_aets"] = [*values.get("allowed_calling_aets", []), *args.allow]
    table = dict(values.get("ae_table", {}))
    for text in args.peer or ():
        title, entry = _parse_peer(text)
        table[title] = entry
    values["ae_table"] = table
    enable = set(getattr(args, "enable_service", None) or ())
    disable = set(getattr(args, "disable_service", None) or ())
    if enable & disable:
        raise ConfigError(f"service(s) both enabled and disabled: "
                          f"{', '.join(sorted(enable & disable))}")
    if enable or disable:
        on = set(values.get("services", SERVICES)) | enable
        values["services"] = tuple(n for n in SERVICES if n in on and n not in disable)
    if args.retry_initial is not None or args.deadline is not None:
        policy = values.get("delivery", DeliveryPolicy())
        if args.retry_initial is not None:
            policy = replace(policy, retry_initial=args.retry_initial)
        if args.deadline is not None:
            policy = replace(policy, deadline=args.deadline)
        values["delivery"] = policy
    values["data"] = Path(values.get("data", "aiodimse-data"))
    values["index_dirs"] = tuple(Path(p) for p in values.get("index_dirs", ()))
    if isinstance(values.get("archive_dir"), str):
        values["archive_dir"] = Path(values["archive_dir"])
    values["allowed_calling_aets"] = tuple(values.get("allowed_calling_aets", ()))
    status_aets = values.get("ups_status_aets", ())
    if not isinstance(status_aets, (list, tuple)):
        raise ConfigError("[ups] status_aets must be a list of AE titles")
    values["ups_status_aets"] = tuple(status_aets)
    try:
        config = ServeConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from exc
    problems = check_config(config)
    if problems:
        raise ConfigError("; ".join(problems))
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("TLS needs both a certificate and a key")
    return config


def server_ssl_context(config: ServeConfig) -> ssl.SSLContext | None:
    """TLS 1.2+ server context (PS3.15 BCP 195 profiles), client certs if a CA is set."""
    if not config.tls_cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_ca:
        ctx.load_verify_locations(config.tls_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
