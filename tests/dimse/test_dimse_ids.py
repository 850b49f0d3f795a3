"""Message ID allocation and the asynchronous operations window."""

from __future__ import annotations

import pytest

from aiodimse.dimse import MessageIDAllocator, OperationsWindow
from aiodimse.errors import LocalProtocolError


def test_ids_start_at_one_and_increase() -> None:
    ids = MessageIDAllocator()
    assert [ids.allocate() for _ in range(3)] == [1, 2, 3]
    assert ids.outstanding == {1, 2, 3}
    ids.release(2)
    assert not ids.is_outstanding(2) and ids.is_outstanding(1)
    ids.release(12345)  # unknown IDs are ignored


def test_ids_wrap_and_skip_outstanding() -> None:
    ids = MessageIDAllocator(first=65534)
    assert ids.allocate() == 65534
    assert ids.allocate() == 65535
    assert ids.allocate() == 1
    ids.release(65534)
    ids.release(65535)
    for _ in range(65533):  # 2..65534 minus nothing outstanding -> 2..65534
        ids.allocate()
    # 1..65534 outstanding except the wrap: 65535 is free.
    assert ids.allocate() == 65535
    with pytest.raises(LocalProtocolError):
        ids.allocate()
    ids.release(40000)
    assert ids.allocate() == 40000


@pytest.mark.parametrize("first", [0, 65536])
def test_bad_first_id(first: int) -> None:
    with pytest.raises(ValueError):
        MessageIDAllocator(first=first)


def test_window_default_is_synchronous() -> None:
    window = OperationsWindow()
    assert window.can_invoke()
    window.start_invoke()
    assert not window.can_invoke()
    with pytest.raises(LocalProtocolError):
        window.start_invoke()
    window.finish_invoke()
    assert window.can_invoke()
    with pytest.raises(LocalProtocolError):
        window.finish_invoke()


def test_window_limits_and_unlimited() -> None:
    window = OperationsWindow(max_invoked=0, max_performed=2)
    for _ in range(1000):
        window.start_invoke()
    assert window.invoked == 1000 and window.can_invoke()
    assert window.start_perform() is True
    assert window.start_perform() is True
    assert not window.can_perform()
    assert window.start_perform() is False  # the peer overran; counted anyway
    assert window.performed == 3
    for _ in range(3):
        window.finish_perform()
    with pytest.raises(LocalProtocolError):
        window.finish_perform()
    with pytest.raises(ValueError):
        OperationsWindow(max_invoked=-1)
