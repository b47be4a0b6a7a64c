"""Identifier checks used on every claim: NPI, EIN, ZIP.

NPI: 10 digits, first digit 1 or 2, last digit a Luhn check digit computed over the
card-issuer prefix 80840 followed by the first nine digits (CMS NPI check digit
specification), so 1234567893 is valid and 1234567890 is not.
"""

from __future__ import annotations

import re

_NPI_PREFIX_SUM = 24  # Luhn contribution of the "80840" prefix, per the CMS specification
_ZIP_RE = re.compile(r"^\d{5}(\d{4})?$")
_EIN_RE = re.compile(r"^\d{9}$")


def _luhn_check_digit(first_nine: str) -> int:
    total = _NPI_PREFIX_SUM
    # Double every other digit starting from the rightmost of the nine.
    for i, ch in enumerate(reversed(first_nine)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def is_valid_npi(npi: str | None) -> bool:
    if not npi or len(npi) != 10 or not npi.isascii() or not npi.isdigit() or npi[0] not in "12":
        return False
    return _luhn_check_digit(npi[:9]) == ord(npi[9]) - 48


def npi_with_check_digit(first_nine: str) -> str:
    """Complete a 9-digit NPI stem with its check digit (for synthetic data)."""
    if len(first_nine) != 9 or not first_nine.isdigit() or first_nine[0] not in "12":
        raise ValueError("an NPI stem is 9 digits starting with 1 or 2")
    return first_nine + str(_luhn_check_digit(first_nine))


def is_valid_ein(ein: str | None) -> bool:
    """Nine digits, no hyphen, as REF*EI carries it."""
    return bool(ein) and bool(_EIN_RE.match(ein))  # type: ignore[arg-type]


def is_valid_zip(zip_code: str | None, *, require_plus4: bool = False) -> bool:
    if not zip_code:
        return False
    m = _ZIP_RE.match(zip_code)
    if not m:
        return False
    return bool(m.group(1)) or not require_plus4
