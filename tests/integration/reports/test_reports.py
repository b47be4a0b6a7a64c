"""A/R aging as of past dates and the KPIs, against hand-computed figures (cents)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

from claims_server.claims import state
from claims_server.ledger.services import Leg
from claims_server.models import JournalEventType
from claims_server.reports.services import aging_to_csv, ar_aging, kpis, neutralize, to_csv
from tests.integration.workqueue.support import (
    AR_INS,
    AR_PT,
    CASH,
    CONTRACTUAL,
    GROSS,
    LineAnswer,
    adjudicate,
    make_claim,
    post,
)

E = JournalEventType


def _charge(session, claim, day: date, cents: int, key: str) -> None:
    payer = claim.coverage.payer_id
    post(session, key, E.CHARGE, day,
         [Leg(AR_INS, cents, claim.id, None, payer, claim.patient_id), Leg(GROSS, -cents, claim.id, None, payer)])  # fmt: skip


def _pay(session, claim, day: date, key: str, paid: int, contractual: int, patient: int) -> None:
    payer, pt = claim.coverage.payer_id, claim.patient_id
    legs = [Leg(CASH, paid, claim.id, None, payer), Leg(AR_INS, -paid, claim.id, None, payer, pt)]
    if contractual:
        legs += [
            Leg(CONTRACTUAL, contractual, claim.id, None, payer),
            Leg(AR_INS, -contractual, claim.id, None, payer, pt),
        ]
    if patient:
        legs += [
            Leg(AR_PT, patient, claim.id, None, None, pt),
            Leg(AR_INS, -patient, claim.id, None, payer, pt),
        ]
    post(session, key, E.INSURANCE_PAYMENT, day, legs)  # fmt: skip


def _aging_setup(session, ids):
    a = make_claim(session, ids)
    b = make_claim(session, ids, patient=ids["dependent_patient"], coverage=ids["dependent_coverage"])
    _charge(session, a, date(2026, 1, 1), 22050, "c:a")
    _charge(session, b, date(2025, 11, 1), 10000, "c:b")
    # A paid on 2026-02-15: 130.00 paid, CO-45 50.00, PR 40.50 to the patient.
    _pay(session, a, date(2026, 2, 15), "p:a", 13000, 5000, 4050)
    session.commit()
    return a, b


def _row(report, key):
    return next(r for r in report.rows if r.key == key)


def test_aging_by_payer_as_of_past_dates(session, ids):
    a, b = _aging_setup(session, ids)
    payer_a, payer_b = a.coverage.payer, b.coverage.payer

    jan = ar_aging(session, as_of=date(2026, 1, 31), by="payer")
    # A: 30 days old -> 0-30; B: 91 days old -> 91-120.
    assert jan.totals == {"0-30": 22050, "31-60": 0, "61-90": 0, "91-120": 10000, "120+": 0}
    if payer_a.id != payer_b.id:
        assert _row(jan, payer_a.public_id).buckets["0-30"] == 22050
        assert _row(jan, payer_b.public_id).buckets["91-120"] == 10000

    dec = ar_aging(session, as_of=date(2025, 12, 31), by="payer")
    assert dec.totals == {"0-30": 0, "31-60": 10000, "61-90": 0, "91-120": 0, "120+": 0}  # A not charged yet

    mar = ar_aging(session, as_of=date(2026, 3, 5), by="payer")
    assert mar.totals == {
        "0-30": 0,
        "31-60": 0,
        "61-90": 0,
        "91-120": 0,
        "120+": 10000,
    }  # A's insurance A/R is 0
    assert [r.key for r in mar.rows] == [payer_b.public_id]


def test_aging_by_patient_ages_from_the_date_of_service(session, ids):
    a, _ = _aging_setup(session, ids)
    mar = ar_aging(session, as_of=date(2026, 3, 5), by="patient")
    # The 40.50 moved to the patient on Feb 15 ages from A's charge (Jan 1): 63 days -> 61-90.
    assert mar.totals == {"0-30": 0, "31-60": 0, "61-90": 4050, "91-120": 0, "120+": 0}
    assert mar.rows[0].key == a.patient.public_id
    assert ar_aging(session, as_of=date(2026, 2, 14), by="patient").rows == []


def test_aging_csv_and_json_over_http(session, ids, api_client):
    _aging_setup(session, ids)
    client = api_client("auditor")
    body = client.get("/api/v1/reports/ar-aging?as_of=2026-01-31").get_json()
    assert body["totals"]["0-30"] == "220.50" and body["total"] == "320.50"
    r = client.get("/api/v1/reports/ar-aging?as_of=2026-01-31&format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["payer", "id", "0-30", "31-60", "61-90", "91-120", "120+", "total"]
    assert rows[-1] == ["TOTAL", "", "220.50", "0.00", "0.00", "100.00", "0.00", "320.50"]
    assert client.get("/api/v1/reports/ar-aging?by=nobody").status_code == 422


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralized():
    for bad in ('=HYPERLINK("x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert neutralize(bad) == "'" + bad
    assert neutralize("ACME =1") == "ACME =1"
    assert neutralize(None) == ""
    text = to_csv(["name"], [["=cmd|' /C calc'!A0"], ["Summit"]])
    assert text.splitlines()[1] == "'=cmd|' /C calc'!A0"


def test_aging_csv_neutralizes_payer_names(session, ids):
    a, _ = _aging_setup(session, ids)
    a.coverage.payer.name = "=EVIL()"
    session.commit()
    text = aging_to_csv(ar_aging(session, as_of=date(2026, 1, 31)))
    assert "'=EVIL()" in text and "\n=EVIL" not in text


def test_kpis_hand_computed(session, ids, api_client):
    feb = datetime(2026, 2, 3, 12, tzinfo=UTC)
    a, b, c, d = (make_claim(session, ids, submitted=feb) for _ in range(4))
    state.mark_rejected(session, c)  # C: rejected by the 999/277CA, not clean
    adjudicate(
        session,
        a,
        status="1",
        payment_date=date(2026, 2, 15),
        lines=[
            LineAnswer(10000, [("CO", "45", 5000), ("PR", "2", 2500)]),
            LineAnswer(3000, [("PR", "1", 1550)]),
        ],
    )
    adjudicate(
        session,
        b,
        status="4",
        payment_date=date(2026, 2, 16),
        lines=[LineAnswer(0, [("CO", "16", 17500)]), LineAnswer(0, [("CO", "16", 4550)])],
    )
    adjudicate(
        session,
        d,
        status="1",
        payment_date=date(2026, 2, 20),
        lines=[LineAnswer(17500), LineAnswer(0, [("CO", "97", 4550)])],
    )  # line 2 denied (bundled)
    for claim, key in ((a, "a"), (b, "b"), (d, "d")):
        _charge(session, claim, date(2026, 2, 1), 22050, f"c:{key}")
    _pay(session, a, date(2026, 2, 15), "p:a", 13000, 5000, 4050)
    _pay(session, d, date(2026, 2, 20), "p:d", 17500, 0, 0)
    session.commit()  # fmt: skip

    got = {k.name: k for k in kpis(session, start=date(2026, 2, 1), end=date(2026, 2, 28))}
    assert (got["clean_claim_rate"].numerator, got["clean_claim_rate"].denominator) == (3, 4)
    assert got["clean_claim_rate"].value == Decimal("75.0")
    assert (got["denial_rate_count"].numerator, got["denial_rate_count"].denominator) == (2, 3)
    assert got["denial_rate_count"].value == Decimal("66.7")
    # Denied: B's whole 220.50 + D's 45.50 line, of 3 x 220.50 remitted.
    assert (got["denial_rate_dollars"].numerator, got["denial_rate_dollars"].denominator) == (26600, 66150)
    assert got["denial_rate_dollars"].value == Decimal("40.2")
    assert got["first_pass_resolution_rate"].value == Decimal("33.3")  # only A
    # Cash 130.00 + 175.00 over (661.50 charges - 50.00 contractual).
    assert (got["net_collection_rate"].numerator, got["net_collection_rate"].denominator) == (30500, 61150)
    assert got["net_collection_rate"].value == Decimal("49.9")
    # Net A/R 306.50 over 611.50 net revenue / 90 days.
    assert (got["days_in_ar"].numerator, got["days_in_ar"].denominator) == (30650, 61150)
    assert got["days_in_ar"].value == Decimal("45.1")

    empty = {k.name: k.value for k in kpis(session, start=date(2025, 1, 1), end=date(2025, 1, 31))}
    assert empty["clean_claim_rate"] is None and empty["days_in_ar"] is None

    client = api_client("biller")
    body = client.get("/api/v1/reports/kpis?start=2026-02-01&end=2026-02-28").get_json()
    assert {k["name"]: k["value"] for k in body["kpis"]}["denial_rate_dollars"] == "40.2"
    r = client.get("/api/v1/reports/kpis?start=2026-02-01&end=2026-02-28&format=csv")
    assert r.mimetype == "text/csv" and "denial_rate_count,66.7,percent,2,3" in r.get_data(as_text=True)
    assert client.get("/api/v1/reports/kpis?start=2026-03-01&end=2026-02-01").status_code == 422
