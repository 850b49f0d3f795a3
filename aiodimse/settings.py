"""What the association, its set-up and the server read of their AE, as a Protocol.

``AE`` (ae.py) makes associations and servers; typing their back-reference with
this Protocol instead of ``AE`` keeps them from importing ae.py, which imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["AESettings"]


class AESettings(Protocol):
    """The AE's configuration attributes (see ``AE.__init__`` for their meaning)."""

    @property
    def ae_title(self) -> str: ...

    maximum_pdu_size: int
    maximum_associations: int
    maximum_associations_per_address: int | None
    maximum_associations_per_ae: int | None
    maximum_pending_connections: int | None
    maximum_pending_per_address: int | None
    acse_timeout: float
    dimse_timeout: float | None
    network_timeout: float | None
    connection_timeout: float | None
    artim_timeout: float
    message_timeout: float | None
    require_called_aet: bool
    require_calling_aet: list[str]
    access_hook: Callable[[Any], Any] | None
    implementation_class_uid: str
    implementation_version_name: str | None
    async_ops_window: tuple[int, int] | None
    maximum_async_ops: tuple[int, int]
    maximum_command_size: int
    maximum_dataset_size: int
    maximum_inflate_ratio: int | None
    max_pdata_cap: int
    handler_threads: int
    handler_timeout: float | None
    maximum_association_buffered: int
    maximum_server_buffered: int
    observer: Any  # an aiodimse.observe.Observer, or None
