"""DIMSE status codes (PS3.7 Annex C) and their categories."""

from __future__ import annotations

from enum import Enum

__all__ = [
    "Category",
    "code_to_category",
    "is_performed",
    "SUCCESS",
    "PROCESSING_FAILURE",
    "MISSING_ATTRIBUTE",
    "NO_SUCH_SOP_CLASS",
    "NO_SUCH_ACTION",
    "NO_SUCH_EVENT_TYPE",
    "UNRECOGNIZED_OPERATION",
    "SOP_CLASS_NOT_SUPPORTED",
    "INVALID_ATTRIBUTE_VALUE",
    "MISTYPED_ARGUMENT",
    "RESOURCE_LIMITATION",
    "GENERAL_STATUS",
]

SUCCESS = 0x0000
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
NO_SUCH_EVENT_TYPE = 0x0113
NO_SUCH_SOP_CLASS = 0x0118
MISSING_ATTRIBUTE = 0x0120
SOP_CLASS_NOT_SUPPORTED = 0x0122
NO_SUCH_ACTION = 0x0123
UNRECOGNIZED_OPERATION = 0x0211
MISTYPED_ARGUMENT = 0x0212
RESOURCE_LIMITATION = 0x0213


class Category(str, Enum):
    """Status categories of PS3.7 Annex C; values are pynetdicom's strings."""

    SUCCESS = "Success"
    WARNING = "Warning"
    FAILURE = "Failure"
    CANCEL = "Cancel"
    PENDING = "Pending"
    UNKNOWN = "Unknown"


_FAILURES = frozenset(
    {0x0105, 0x0106, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115, 0x0117, 0x0118}
    | {0x0119, 0x0120, 0x0121, 0x0122, 0x0123, 0x0124, 0x0210, 0x0211, 0x0212, 0x0213}
)
_WARNINGS = frozenset((0x0001, 0x0107, 0x0116))


# The members as globals (see ul/states.py on reading enum members).
_SUCCESS = Category.SUCCESS
_WARNING = Category.WARNING
_FAILURE = Category.FAILURE
_CANCEL = Category.CANCEL
_PENDING = Category.PENDING
_UNKNOWN = Category.UNKNOWN


def code_to_category(code: int) -> Category:
    """The category of a status code; codes the standard leaves open are UNKNOWN."""
    if is_performed(code):
        return _SUCCESS if code == 0x0000 else _WARNING
    if code in _FAILURES or 0xA000 <= code <= 0xAFFF or 0xC000 <= code <= 0xCFFF:
        return _FAILURE
    if code == 0xFE00:
        return _CANCEL
    if code in (0xFF00, 0xFF01):
        return _PENDING
    return _UNKNOWN


def is_performed(code: int) -> bool:
    """Success or warning: the operation was carried out, so a reply data set counts."""
    return code == 0x0000 or code in _WARNINGS or 0xB000 <= code <= 0xBFFF


GENERAL_STATUS: dict[int, str] = {
    0x0000: "Success",
    0x0001: "Requested optional attributes are not supported",
    0x0105: "No such attribute",
    0x0106: "Invalid attribute value",
    0x0107: "Attribute list error",
    0x0110: "Processing failure",
    0x0111: "Duplicate SOP Instance",
    0x0112: "No such SOP Instance",
    0x0113: "No such event type",
    0x0114: "No such argument",
    0x0115: "Invalid argument value",
    0x0116: "Attribute value out of range",
    0x0117: "Invalid object instance",
    0x0118: "No such SOP Class",
    0x0119: "Class-instance conflict",
    0x0120: "Missing attribute",
    0x0121: "Missing attribute value",
    0x0122: "Refused: SOP Class not supported",
    0x0123: "No such action",
    0x0124: "Refused: not authorized",
    0x0210: "Duplicate invocation",
    0x0211: "Unrecognized operation",
    0x0212: "Mistyped argument",
    0x0213: "Resource limitation",
    0xFE00: "Cancel",
    0xFF00: "Pending",
    0xFF01: "Pending (warning)",
}
