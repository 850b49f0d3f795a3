"""Layer 3: PS3.7 DIMSE command sets, messages, fragmentation and reassembly.

Sans-IO and pydicom-free: bytes in, typed messages and bytes out.
"""

from __future__ import annotations

from .assemble import (
    DEFAULT_MAX_COMMAND_LENGTH,
    DEFAULT_MAX_DATASET_LENGTH,
    FLOOD_FREE_FRAGMENTS,
    FRAGMENT_COST,
    FragmentFloodError,
    MessageAssembler,
    MessageTooLargeError,
    ReceivedMessage,
)
from .commands import (
    DATASET_PRESENT,
    NO_DATASET,
    CommandDecodeError,
    DecodedCommand,
    decode_command,
    encode_command,
)
from .fragment import DEFAULT_UNLIMITED_PDU_LENGTH, MIN_PDU_LENGTH, encode_message
from .messages import (
    ELEMENT_TAGS,
    MESSAGE_CLASSES,
    VERIFICATION_SOP_CLASS_UID,
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    DIMSEMessage,
    DIMSERequest,
    DIMSEResponse,
    NActionRQ,
    NActionRSP,
    NCreateRQ,
    NCreateRSP,
    NDeleteRQ,
    NDeleteRSP,
    NEventReportRQ,
    NEventReportRSP,
    NGetRQ,
    NGetRSP,
    NSetRQ,
    NSetRSP,
    make_response,
)

__all__ = [
    # messages
    "DIMSEMessage",
    "DIMSERequest",
    "DIMSEResponse",
    "CEchoRQ",
    "CEchoRSP",
    "CCancelRQ",
    "NEventReportRQ",
    "NEventReportRSP",
    "NGetRQ",
    "NGetRSP",
    "NSetRQ",
    "NSetRSP",
    "NActionRQ",
    "NActionRSP",
    "NCreateRQ",
    "NCreateRSP",
    "NDeleteRQ",
    "NDeleteRSP",
    "MESSAGE_CLASSES",
    "ELEMENT_TAGS",
    "VERIFICATION_SOP_CLASS_UID",
    "make_response",
    # command-set codec
    "NO_DATASET",
    "DATASET_PRESENT",
    "DecodedCommand",
    "CommandDecodeError",
    "encode_command",
    "decode_command",
    # fragmentation and reassembly
    "DEFAULT_UNLIMITED_PDU_LENGTH",
    "MIN_PDU_LENGTH",
    "encode_message",
    "DEFAULT_MAX_COMMAND_LENGTH",
    "DEFAULT_MAX_DATASET_LENGTH",
    "ReceivedMessage",
    "MessageTooLargeError",
    "MessageAssembler",
    "FragmentFloodError",
    "FRAGMENT_COST",
    "FLOOD_FREE_FRAGMENTS",
    # bookkeeping
]
