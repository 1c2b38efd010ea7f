"""Value escaping (eslengine/escaping.py): what each clean-up round makes
of a value, and the values no escape can carry. The property tests that
parse whole commands back are in test_dialstring.py."""

from __future__ import annotations

import pytest

from eslengine import escaping
from eslengine.errors import ValidationError


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("c42", "c42"),
        ("Click To Call", "Click\\sTo\\sCall"),
        ("a,b", "a\\\\,b"),
        (" a b ", "\\\\\\\\sa\\sb\\\\\\\\s"),
        ("it's", "it\\\\\\\\\\\\\\'s"),
    ],
)
def test_encoding_table(value: str, encoded: str) -> None:
    assert escaping.encode_value(value) == encoded


@pytest.mark.parametrize("value", ["a{b", "a}b", "a[b", "a]b", "a<b", "a>b", "a(b", "a)b", "a|b", "a\nb", "a\rb",
                                   "${x}", "a\x00b", "a\x7fb", "a\u2028b", "a\u200bb", "caf\u00e9 ${x}",
                                   "US$$5", ":_:sofia/gateway/gw/+19005550000", "a:_:b", "^^~x", "',^^~log"])
def test_values_no_escape_can_carry_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        escaping.check_value("f", value)
