"""Hand-built PDU bytes for tests that need what the encoder would never produce."""

from __future__ import annotations

import struct

__all__ = [
    "item",
    "pdu",
    "associate",
    "pc_rq",
    "pc_ac",
    "user_info",
    "APP_CONTEXT",
    "MINIMAL_PC",
    "MINIMAL_UI",
]


def item(item_type: int, body: bytes, *, reserved: int = 0) -> bytes:
    """An item or sub-item: type, reserved byte, uint16 length, body."""
    return struct.pack(">BBH", item_type, reserved, len(body)) + body


def pdu(pdu_type: int, body: bytes, *, reserved: int = 0, length: int | None = None) -> bytes:
    """A PDU: type, reserved byte, uint32 length (default: the true one), body."""
    declared = len(body) if length is None else length
    return struct.pack(">BBI", pdu_type, reserved, declared) + body


def associate(
    items: bytes,
    *,
    pdu_type: int = 0x01,
    version: int = 1,
    called: bytes = b"CALLED".ljust(16),
    calling: bytes = b"CALLING".ljust(16),
    reserved2: bytes = b"\x00\x00",
    reserved32: bytes = bytes(32),
) -> bytes:
    """An A-ASSOCIATE-RQ/AC with the given variable items."""
    fixed = struct.pack(">H", version) + reserved2 + called + calling + reserved32
    return pdu(pdu_type, fixed + items)


def pc_rq(context_id: int, *sub_items: bytes, reserved: bytes = b"\x00\x00\x00") -> bytes:
    return item(0x20, bytes([context_id]) + reserved + b"".join(sub_items))


def pc_ac(context_id: int, result: int, *sub_items: bytes, reserved: bytes = b"\x00") -> bytes:
    return item(
        0x21, bytes([context_id]) + reserved + bytes([result]) + reserved + b"".join(sub_items)
    )


def user_info(*sub_items: bytes) -> bytes:
    return item(0x50, b"".join(sub_items))


APP_CONTEXT = item(0x10, b"1.2.840.10008.3.1.1.1")
MINIMAL_PC = pc_rq(1, item(0x30, b"1.2.840.10008.1.1"), item(0x40, b"1.2.840.10008.1.2"))
MINIMAL_UI = user_info(item(0x51, struct.pack(">I", 16384)), item(0x52, b"1.2.3"))
