"""UIDs we generate are ours: under our root, valid, unique."""

from __future__ import annotations

import re

from aiodimse.ae import IMPLEMENTATION_CLASS_UID
from aiodimse.uids import UID_ROOT, new_uid

_VALID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def test_new_uids_are_under_our_root_valid_and_unique() -> None:
    uids = {new_uid() for _ in range(1000)}
    assert len(uids) == 1000
    for uid in uids:
        assert uid.startswith(UID_ROOT + ".2.")
        assert len(uid) <= 64
        assert _VALID.fullmatch(uid), uid


def test_the_implementation_class_uid_is_under_the_root() -> None:
    assert IMPLEMENTATION_CLASS_UID == UID_ROOT + ".1"
