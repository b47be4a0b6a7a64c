"""Numbers read from X12: the one place an R (decimal) or N0 (integer) element becomes a value.

Every reader (835, 277CA, 271, 837, 999, the validator's 837 rules) converts numeric
elements here, so one set of limits holds everywhere:

- X12 R is ASCII digits with an optional leading minus and at most one decimal point;
  no exponent, no ``+``, no blanks, no ``_`` and no non-ASCII digits (Python's ``int``
  and ``Decimal`` would take all of these, and ``Decimal("1E999999999")`` would make
  ``int()`` run for minutes).
- Its length, counted as X12 counts it (digits only: sign and point excluded), is at
  most the element's maximum: 18 for a monetary amount (data element 782, R 1/18), 15
  for a quantity (380, R 1/15).
- A monetary amount has at most two decimals and at most :data:`MAX_AMOUNT_CENTS` in
  magnitude. The ledger stores signed 64-bit cents (BIGINT), and it adds amounts up
  (claim totals, a remittance's cash, account balances); one amount of at most
  10^15 - 1 cents (just under ten trillion dollars, far beyond any real payment)
  leaves room to add nine thousand of them without overflowing.

:func:`parse_amount_cents` is the fast path (None for anything wrong, a few hundred
nanoseconds on the 835's hot path); :func:`amount_cents` says *what* is wrong, for the
reader's finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "AMOUNT_MAX_LENGTH",
    "MAX_AMOUNT_CENTS",
    "QUANTITY_MAX_LENGTH",
    "NumberProblem",
    "amount_cents",
    "parse_amount_cents",
    "parse_count",
    "parse_decimal",
    "read_decimal",
]

#: X12 data element 782 (Monetary Amount) is R 1/18.
AMOUNT_MAX_LENGTH = 18
#: X12 data element 380 (Quantity) is R 1/15.
QUANTITY_MAX_LENGTH = 15
#: The largest amount (in cents, either sign) a reader hands to the ledger.
MAX_AMOUNT_CENTS = 10**15 - 1
#: Counts and positions (N0) are read as at most 9 digits (the largest X12 N0 counts are 1/9).
COUNT_MAX_LENGTH = 9

_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class NumberProblem:
    """Why a numeric element cannot be used; ``code`` is one of:

    ``NOT_A_NUMBER`` (not X12 R/N0 syntax), ``TOO_LONG`` (more digits than the element
    allows), ``PRECISION`` (a monetary amount with more than two decimals) and
    ``OUT_OF_RANGE`` (beyond what the ledger holds). The message never quotes the value.
    """

    code: str
    message: str


def _split(text: str) -> tuple[bool, str, str] | None:
    """(negative, whole digits, fraction digits) of X12 R syntax, or None."""
    negative = text[:1] == "-"
    body = text[1:] if negative else text
    whole, point, frac = body.partition(".")
    if not (whole or frac) or (point and not frac and not whole):
        return None
    if not _DIGITS.issuperset(whole) or not _DIGITS.issuperset(frac):
        return None
    return negative, whole, frac


def parse_amount_cents(text: str) -> int | None:
    """An X12 monetary amount as integer cents, or None when it breaks any rule above.

    ``parse_amount_cents("-12.5") == -1250``; ``"1.234"`` (three decimals), ``"1e3"``,
    ``"+5"`` and ``"1" + "0" * 30`` (too long, out of range) are None.
    """
    whole, _, frac = text.partition(".")
    n = len(frac)
    if n == 2:
        digits = whole + frac
    elif n == 0:
        if not whole or whole == "-":
            return None
        digits = whole + "00"
    elif n == 1:
        digits = whole + frac + "0"
    else:
        return None
    if n and not frac.isdigit():  # a sign belongs before the whole part only (".-" is no number)
        return None
    if not digits.isascii():  # ASCII isdigit is exactly 0-9
        return None
    # The 835's hot path: at most 15 digits of cents are below MAX_AMOUNT_CENTS and within
    # the 18-digit element, so every real amount returns here with no further check.
    if digits.isdigit():
        if len(digits) <= 15:
            return int(digits)
        negative, body = False, digits
    elif digits[:1] == "-" and digits[1:].isdigit():
        if len(digits) <= 16:
            return int(digits)
        negative, body = True, digits[1:]
    else:
        return None
    if len(body) - (2 - n) > AMOUNT_MAX_LENGTH:
        return None
    cents = int(body)
    if cents > MAX_AMOUNT_CENTS:
        return None
    return -cents if negative else cents


def amount_cents(text: str) -> tuple[int | None, NumberProblem | None]:
    """(cents, None) for a good amount; else (usable cents or None, the problem).

    An amount with more than two decimals (X12 R allows it, money does not) comes back
    rounded half up to the cent *with* a ``PRECISION`` problem, so a reader can total
    it and still say so; every other problem comes with None.
    """
    cents = parse_amount_cents(text)
    if cents is not None:
        return cents, None
    parts = _split(text)
    if parts is None:
        return None, NumberProblem("NOT_A_NUMBER", "not an X12 decimal number (digits, '-' and '.')")
    negative, whole, frac = parts
    if len(whole) + len(frac) > AMOUNT_MAX_LENGTH:
        return None, NumberProblem(
            "TOO_LONG",
            f"more than {AMOUNT_MAX_LENGTH} digits (X12 monetary amount is R 1/{AMOUNT_MAX_LENGTH})",
        )
    exact = Decimal(f"{'-' if negative else ''}{whole or '0'}.{frac or '0'}")
    rounded = int((exact * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if abs(rounded) > MAX_AMOUNT_CENTS:
        return None, NumberProblem(
            "OUT_OF_RANGE", f"beyond the largest amount the ledger accepts ({MAX_AMOUNT_CENTS // 100:,}.99)"
        )
    return rounded, NumberProblem("PRECISION", "more than two decimal places; rounded to the cent")


def read_decimal(
    text: str, *, max_length: int = QUANTITY_MAX_LENGTH
) -> tuple[Decimal | None, NumberProblem | None]:
    """An X12 R value (a quantity, a percentage) as a Decimal, or the problem."""
    parts = _split(text)
    if parts is None:
        return None, NumberProblem("NOT_A_NUMBER", "not an X12 decimal number (digits, '-' and '.')")
    _, whole, frac = parts
    if len(whole) + len(frac) > max_length:
        return None, NumberProblem("TOO_LONG", f"more than {max_length} digits (X12 R 1/{max_length})")
    return Decimal(text), None


def parse_decimal(text: str, *, max_length: int = QUANTITY_MAX_LENGTH) -> Decimal | None:
    """:func:`read_decimal` without the reason: the Decimal or None."""
    return read_decimal(text, max_length=max_length)[0]


def parse_count(text: str, *, max_length: int = COUNT_MAX_LENGTH) -> int | None:
    """An X12 N0 count or position (ASCII digits, at most ``max_length``) as an int, else None."""
    if not text or len(text) > max_length or not _DIGITS.issuperset(text):
        return None
    return int(text)
