"""Marshmallow fields shared by every API schema.

- :class:`Money`: a decimal **string** such as ``"125.00"``. JSON numbers are refused,
  integers included: a client that sends ``125.1`` has already lost precision in its
  own float, and one rule ("money is a string") is easier to follow than two.
- :func:`money_text_to_cents`: an amount a person typed into a form (``$1,234.50``), for
  the staff and patient pages. Both take ASCII digits only: ``int()`` and ``Decimal``
  also read Arabic-Indic and full-width digits, which no one means as an amount.
- :class:`DecimalString`: quantities (units, drug quantity) as a decimal string or a
  JSON integer; a JSON number with a fraction is refused for the same reason.
- :class:`X12Text`: free text that ends up in an 837 element. The X12 delimiters
  ``* ~ : ^`` and control characters are refused, because they would split or corrupt
  segments (EDI_NOTES: "data must not contain *, ~, : or ^").
- :class:`Npi`: 10 digits with a valid check digit (Luhn over ``80840`` + 9 digits).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import ValidationError, fields

from edi.identifiers import is_valid_npi

X12_DELIMITERS = "*~:^"
#: The OpenAPI patterns of X12Text (the field's own checks are the reference).
X12_TEXT_PATTERN = r"^[^*~:^\x00-\x1f\x7f]*$"
X12_NONBLANK_PATTERN = r"^[^*~:^\x00-\x1f\x7f]*[^*~:^\x00-\x20\x7f\s][^*~:^\x00-\x1f\x7f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# [0-9], not \d: \d matches every Unicode decimal digit. Used with fullmatch (``$`` allows a "\n").
_MONEY = re.compile(r"[0-9]{1,10}(\.[0-9]{1,2})?")
#: What a person may type: an optional "$", thousands commas in their places, up to 2 decimals.
_TYPED_MONEY = re.compile(r"\$?\s*(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.(?P<frac>[0-9]*))?")
#: The largest amount the Money field can hold (10 digits of dollars).
MAX_MONEY_CENTS = 10**12 - 1
PUBLIC_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def cents_to_money(cents: int) -> str:
    """Integer cents as the API's money string: ``12500`` → ``"125.00"``."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def _cents(whole: str, frac: str) -> int:
    return int(whole or "0") * 100 + int((frac + "00")[:2])


def money_text_to_cents(
    text: str, *, max_cents: int = MAX_MONEY_CENTS, allow_zero: bool = False
) -> tuple[int | None, str | None]:
    """An amount typed into a form as integer cents, or the message to show next to the field.

    ASCII digits only, an optional ``$`` and thousands commas, at most 2 decimals, more than
    zero (or zero too with ``allow_zero``: a filter's bound) and at most ``max_cents``.
    """
    found = _TYPED_MONEY.fullmatch(text.strip())
    if found is None or not (found["whole"] or found["frac"]):
        return None, "Enter an amount in dollars and cents, such as 25.00."
    whole, frac = found["whole"].replace(",", ""), found["frac"] or ""
    if len(frac) > 2:
        return None, "Use at most two digits after the decimal point."
    if len(whole) > 10 or _cents(whole, frac) > max_cents:
        return None, f"Enter an amount up to {cents_to_money(max_cents)}."
    cents = _cents(whole, frac)
    if cents < 0 or (cents == 0 and not allow_zero):
        return None, "Enter an amount greater than zero."
    return cents, None


class Money(fields.Field):
    """Money as a decimal string with at most 2 decimals; deserialises to integer cents."""

    default_error_messages = {
        "type": 'money must be a string such as "125.00" (JSON numbers are not accepted for money)',
        "format": 'money must be a non-negative amount with at most 2 decimals, e.g. "125.00"',
    }

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("type", "string")
        metadata.setdefault("pattern", f"^{_MONEY.pattern}$")
        metadata.setdefault("example", "125.00")
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: int | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else cents_to_money(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str):
            raise self.make_error("type")
        if not _MONEY.fullmatch(value):
            raise self.make_error("format")
        whole, _, frac = value.partition(".")
        return _cents(whole, frac)


class DecimalString(fields.Field):
    """A non-negative quantity as a decimal string (``"1"``, ``"0.5"``) or a JSON integer."""

    default_error_messages = {
        "type": 'must be a decimal string such as "1.5" or an integer (no JSON numbers with a fraction)',
        "format": "must be a positive decimal number with at most {places} decimals and {digits} digits",
    }

    def __init__(self, *, places: int = 3, digits: int = 15, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("type", "string")
        metadata.setdefault("example", "1")
        super().__init__(metadata=metadata, **kwargs)
        self.places = places
        self.digits = digits

    def _serialize(self, value: str | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.make_error("type")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise self.make_error("format", places=self.places, digits=self.digits) from None
        exponent = number.as_tuple().exponent
        if (
            not number.is_finite()
            or number <= 0
            or not isinstance(exponent, int)
            or -exponent > self.places
            or len(format(number, "f").replace(".", "")) > self.digits
        ):
            raise self.make_error("format", places=self.places, digits=self.digits)
        text = format(number.normalize(), "f")
        return text


def check_element(element: str | None, text: str) -> None:
    """Refuse ``text`` if it breaks a rule of the 837 element it is written to (``element``, a
    place in :mod:`edi.element_rules`): the same rules the 837 writer and validator apply."""
    if element is None:
        return
    from edi.element_rules import element_problems

    problems = element_problems(element, text)
    if problems:
        raise ValidationError([f"{message} (rule {code})" for code, message in problems])


class X12Text(fields.String):
    """Text that goes into an 837 element: no X12 delimiters, no control characters.

    ``element`` names the 837 element the text is written to (``"2010AA/N4/N401"``): the
    guide's rules for it (length, character set after the writer's conversion) apply too.
    """

    default_error_messages = {
        "delimiter": "must not contain the X12 delimiters * ~ : ^ (they would corrupt the 837)",
        "control": "must not contain control characters or line breaks",
        "blank": "must not be blank",
    }

    def __init__(self, **kwargs: Any) -> None:
        self.max_length: int | None = kwargs.pop("max_length", None)
        self.allow_blank: bool = kwargs.pop("allow_blank", False)
        self.element: str | None = kwargs.pop("element", None)
        metadata = kwargs.pop("metadata", {})
        if self.element:
            from edi.element_rules import element_spec

            spec = element_spec(self.element)  # an unknown place fails at import, not on a request
            metadata.setdefault("x-x12-element", spec.ref)
            if not self.allow_blank:
                metadata.setdefault("minLength", spec.min_len if not self.element.startswith("ISA/") else 1)
        if self.max_length:
            metadata.setdefault("maxLength", self.max_length)
        # What _deserialize refuses, stated in the document: delimiters, control characters
        # (DEL too) and, unless blank is allowed, text that is only spaces.
        metadata.setdefault("pattern", X12_TEXT_PATTERN if self.allow_blank else X12_NONBLANK_PATTERN)
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if any(ch in text for ch in X12_DELIMITERS):
            raise self.make_error("delimiter")
        if _CONTROL.search(text):
            raise self.make_error("control")
        if not text and not self.allow_blank:
            raise self.make_error("blank")
        if self.max_length is not None and len(text) > self.max_length:
            raise ValidationError(f"must be at most {self.max_length} characters (837 element limit)")
        if text:
            check_element(self.element, text)
        return text


class Npi(fields.String):
    """A National Provider Identifier: 10 digits, first 1 or 2, valid check digit."""

    default_error_messages = {
        "npi": "must be a valid NPI: 10 digits starting with 1 or 2 and a correct check digit",
    }

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("pattern", r"^[12]\d{9}$")
        metadata.setdefault("example", "1234567893")
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not is_valid_npi(text):
            raise self.make_error("npi")
        return text


class PublicId(fields.String):
    """A reference to another object by its ``public_id`` (32 lowercase hex characters)."""

    default_error_messages = {"public_id": "must be an id as returned by this API (32 hex characters)"}

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("pattern", PUBLIC_ID_PATTERN.pattern)
        metadata.setdefault("example", "3f2a9c1e5b7d4e0f8a6c2b1d9e7f5a3c")
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not PUBLIC_ID_PATTERN.match(text):
            raise self.make_error("public_id")
        return text


class ProviderRef(fields.String):
    """A provider referenced by ``public_id`` or by NPI (10 digits)."""

    default_error_messages = {
        "ref": "must be a provider id (32 hex characters) or a valid NPI (10 digits with its check digit)",
    }

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("description", "provider public_id or NPI")
        metadata.setdefault("example", "1234567893")
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if PUBLIC_ID_PATTERN.match(text) or is_valid_npi(text):
            return text
        raise self.make_error("ref")


class Coded(fields.String):
    """A code normalised to upper case and checked against a pattern (POS, NDC, state...)."""

    def __init__(self, pattern: re.Pattern[str], message: str, **kwargs: Any) -> None:
        self.element: str | None = kwargs.pop("element", None)
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("pattern", pattern.pattern)
        if self.element:
            from edi.element_rules import element_spec

            spec = element_spec(self.element)
            metadata.setdefault("x-x12-element", spec.ref)
            if spec.codes:
                metadata.setdefault("enum", sorted(spec.codes))
        super().__init__(metadata=metadata, **kwargs)
        self.pattern = pattern
        self.message = message

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not self.pattern.match(text):
            raise ValidationError(self.message)
        check_element(self.element, text)
        return text


class UsState(fields.String):
    """A two-letter USPS state or territory code (N402)."""

    def __init__(self, **kwargs: Any) -> None:
        from coding.reference import US_STATES, US_TERRITORIES

        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("enum", sorted({*US_STATES, *US_TERRITORIES}))
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        from coding.reference import is_valid_state

        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not is_valid_state(text):
            raise ValidationError('must be a two-letter USPS state code such as "IL"')
        return text


class Zip(fields.String):
    """A ZIP code as digits (5 or 9; ``plus4`` requires 9, as 2010AA/2310C do). A hyphen is removed."""

    def __init__(self, *, plus4: bool = False, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("example", "627011234" if plus4 else "62704")
        metadata.setdefault("pattern", r"^[0-9]{5}-?[0-9]{4}$" if plus4 else r"^[0-9]{5}(-?[0-9]{4})?$")
        super().__init__(metadata=metadata, **kwargs)
        self.plus4 = plus4

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        from edi.identifiers import is_valid_zip

        text = super()._deserialize(value, attr, data, **kwargs).strip().replace("-", "")
        if not is_valid_zip(text, require_plus4=self.plus4):
            raise ValidationError(
                "must be a 9-digit ZIP+4 (the 837 requires it here)"
                if self.plus4
                else "must be a 5- or 9-digit ZIP"
            )
        return text


PHONE_PATTERN = re.compile(r"^\d{10}$")
TAXONOMY_PATTERN = re.compile(r"^[0-9A-Z]{9}X$")


def phone_field(**kwargs: Any) -> Coded:
    """A US phone number as 10 digits (PER numbers are digits only)."""
    return Coded(PHONE_PATTERN, 'must be 10 digits without punctuation, e.g. "2175550100"', **kwargs)


def taxonomy_field(**kwargs: Any) -> Coded:
    """A NUCC taxonomy code: 9 letters or digits and a final X (PRV03)."""
    return Coded(TAXONOMY_PATTERN, 'must be a 10-character NUCC taxonomy code such as "207Q00000X"', **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON ``true``/``false`` (or, in a query string, one of marshmallow's words such as
    ``true``/``false``): marshmallow's Boolean also takes the numbers 0 and 1, which the
    document (``type: boolean``) calls invalid."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool | str):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class StrictInteger(fields.Integer):
    """A JSON integer (or a query string's digits): marshmallow's Integer also takes ``true``
    and truncates 2.5 to 2, which the document (``type: integer``) calls invalid."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)
