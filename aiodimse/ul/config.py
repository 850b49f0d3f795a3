"""Limits and timeouts of the upper layer, fixed when a core is built."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ULConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ULConfig:
    """Per-association upper-layer settings (seconds and bytes).

    ``artim_timeout``: PS3.8 9.1.5 ARTIM, bounding Sta2 (waiting for the A-ASSOCIATE-RQ)
    and Sta13 (waiting for the peer to close after RJ, RELEASE-RP or A-ABORT).
    ``associate_timeout``: our own bound on Sta5 (waiting for A-ASSOCIATE-AC/RJ).
    ``release_timeout``: our own bound on waiting for A-RELEASE-RP (Sta7, and the
    release-collision states).
    ``setup_timeout``: acceptor only, our own bound on association set-up as a whole,
    from the connection to the A-ASSOCIATE-AC/RJ sent (Sta2 and Sta3): a trickled
    A-ASSOCIATE-RQ or a slow decision cannot hold the connection longer. None: off.
    ``message_timeout``: our own bound on receiving one message, from its first byte
    to its last fragment (Sta6, Sta7): a peer trickling a message is aborted however
    often bytes come. None: off.
    ``max_associate_length``: largest A-ASSOCIATE-RQ/AC PDU we buffer.
    ``max_pdata_cap``: largest P-DATA-TF PDU we buffer when we advertise a Maximum
    Length of 0 (no limit); otherwise the advertised value is the limit.
    """

    artim_timeout: float = 30.0
    associate_timeout: float = 30.0
    release_timeout: float = 30.0
    setup_timeout: float | None = None
    message_timeout: float | None = None
    max_associate_length: int = 1 << 20
    max_pdata_cap: int = 1 << 24

    def __post_init__(self) -> None:
        for name in ("artim_timeout", "associate_timeout", "release_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("setup_timeout", "message_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive (or None: off)")
        if self.max_associate_length < 74 or self.max_pdata_cap < 6:
            raise ValueError("buffer limits are too small for any PDU")
