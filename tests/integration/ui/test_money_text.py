"""One parser for amounts typed into the staff and patient forms, and the API's Money field: ASCII only."""

from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError

from claims_server.api_common.fields import Money, money_text_to_cents


@pytest.mark.parametrize(
    ("text", "cents"),
    [("10.00", 1000), ("1,234.50", 123450), ("$25", 2500), ("$ 1,000", 100000), (" .5 ", 50), ("7.", 700)],
)
def test_what_people_type_becomes_cents(text, cents):
    assert money_text_to_cents(text) == (cents, None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\u0663", "dollars and cents"),  # ARABIC-INDIC DIGIT THREE: int() reads it as 3
        ("\uff11\uff10", "dollars and cents"),  # FULLWIDTH 10: Decimal reads it as 10
        ("\u00b2", "dollars and cents"),  # SUPERSCRIPT TWO: isdigit() but int() raises
        ("1e2", "dollars and cents"),
        ("NaN", "dollars and cents"),
        ("-1", "dollars and cents"),
        ("12,34", "dollars and cents"),
        ("", "dollars and cents"),
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        ("0.001", "at most two digits"),
        ("99999999999", "up to"),
    ],
)
def test_anything_else_gets_a_message_for_the_field(text, message):
    cents, problem = money_text_to_cents(text)
    assert cents is None and problem and message in problem


def test_the_cap_is_the_callers():
    assert money_text_to_cents("100.00", max_cents=10000) == (10000, None)
    assert money_text_to_cents("100.01", max_cents=10000) == (None, "Enter an amount up to 100.00.")


class _Amount(Schema):
    amount = Money(required=True)


@pytest.mark.parametrize("text", ["\u0663", "\uff11\uff10", "10.00\n", "1,000.00", "$5"])
def test_the_api_money_field_takes_ascii_digits_only(text):
    with pytest.raises(ValidationError):
        _Amount().load({"amount": text})
    assert _Amount().load({"amount": "10.50"}) == {"amount": 1050}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("min_amount=NaN", "Enter an amount in dollars and cents"),  # Decimal('NaN') < 0 raised: a 500
        ("max_amount=%EF%BC%91%EF%BC%90", "Enter an amount in dollars and cents"),  # full-width 10
        ("min_age=%C2%B2", "enter a whole number of days"),  # superscript two
    ],
)
def test_the_queue_filters_take_ascii_amounts_and_days(api_client, query, message):
    answer = api_client("biller").get(f"/ui/queues?{query}")
    assert answer.status_code in (200, 422) and message in answer.get_data(as_text=True)


def test_a_zero_lower_bound_is_a_valid_queue_filter(api_client):
    answer = api_client("biller").get("/ui/queues?min_amount=0")
    assert answer.status_code == 200 and "Enter an amount" not in answer.get_data(as_text=True)
