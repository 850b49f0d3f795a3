"""Status categories (PS3.7 Annex C) and the "was it performed" test."""

from __future__ import annotations

from aiodimse.status import Category, code_to_category, is_performed


def test_category_of_codes_named_by_the_standard() -> None:
    assert code_to_category(0x0000) is Category.SUCCESS
    for warning in (0x0001, 0x0107, 0x0116, 0xB000, 0xB123, 0xBFFF):
        assert code_to_category(warning) is Category.WARNING
    for failure in (0x0105, 0x0110, 0x0213, 0xA700, 0xC000, 0xCFFF):
        assert code_to_category(failure) is Category.FAILURE
    assert code_to_category(0xFE00) is Category.CANCEL
    assert code_to_category(0xFF00) is Category.PENDING
    assert code_to_category(0xFF01) is Category.PENDING
    assert code_to_category(0x0002) is Category.UNKNOWN
    assert code_to_category(0xD000) is Category.UNKNOWN


def test_performed_is_success_or_warning_for_every_code() -> None:
    ok = (Category.SUCCESS, Category.WARNING)
    for code in range(0x10000):
        assert is_performed(code) == (code_to_category(code) in ok), hex(code)
