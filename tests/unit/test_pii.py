"""ID number checks and masking."""

from __future__ import annotations

from onecard_hub.domain.pii import id_check_digit, is_valid_id_number, mask_card_no, mask_id_number, mask_name


def test_check_digit_of_the_standard_example() -> None:
    assert id_check_digit("11010519491231002") == "X"  # GB 11643-1999's worked example
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")
    assert not is_valid_id_number("11010519491231002")
    assert not is_valid_id_number("1101051949123100２X")


def test_masks() -> None:
    assert mask_id_number("360702200801011234") == "3607**********1234"
    assert mask_name("张三丰") == "张*丰"
    assert mask_name("李四") == "李*"
    assert mask_name("欧阳修远") == "欧**远"
    assert mask_card_no("A12345678") == "A1***5678"
