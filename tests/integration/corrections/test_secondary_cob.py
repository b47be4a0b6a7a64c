"""Next-payer claims: the 837 carries the primary's adjudication (2320/2430), passes pyx12 with 0
errors and our COB balancing rules; crossovers are never billed again."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from claims_server.claims.to_edi import batch_for, claim_load_options
from claims_server.errors import Conflict
from claims_server.models import Claim, ClaimFrequency, ClearinghouseRoute
from claims_server.secondary.services import build_cob_edi_claim, create_next_payer_claim
from edi.validate import validate
from edi.x837 import parse_837, write_837
from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim
from tests.unit.edi.support_837 import pyx12_validate

# Primary: 99214 175.00 paid 100.00 (CO-45 50.00, PR-2 25.00); 83036 45.50 paid 30.00 (PR-1 15.50).
PRIMARY = [LineAnswer(10000, [("CO", "45", 5000), ("PR", "2", 2500)]), LineAnswer(3000, [("PR", "1", 1550)])]


def _write(session, claim: Claim) -> str:
    loaded = session.scalars(select(Claim).where(Claim.id == claim.id).options(*claim_load_options())).one()
    route = session.scalar(select(ClearinghouseRoute))
    batch = batch_for(
        loaded.practice, route, [build_cob_edi_claim(session, loaded)], created=datetime(2026, 2, 9, 9)
    )
    return write_837(
        batch, interchange_control=77, group_control=77, transaction_controls=["0077"], usage="T"
    )


def test_secondary_claim_carries_primary_adjudication(session, ids):
    primary = make_claim(session, ids)
    adjudicate(session, primary, status="1", lines=PRIMARY, payer_claim_number="MCR-ICN-778899")
    secondary = create_next_payer_claim(session, primary)
    session.commit()

    assert secondary.coverage_order == 2
    assert secondary.frequency_code is ClaimFrequency.ORIGINAL
    assert secondary.original_claim_id == primary.id
    assert secondary.patient_control_number != primary.patient_control_number
    assert [line.charge_cents for line in secondary.service_lines] == [17500, 4550]

    text = _write(session, secondary)
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors
    report = validate(text.encode())
    assert [f.code for f in report.findings if f.severity.value == "error"] == []

    parsed = parse_837(text.encode())[0].claims[0]
    (other,) = parsed.other_payers
    assert other.paid_cents == 13000
    assert other.payer_claim_control_number == "MCR-ICN-778899"
    assert other.subscriber.responsibility == "P"
    assert parsed.subscriber.responsibility == "S"
    assert [(la.line_number, la.paid_cents) for la in other.line_adjudications] == [(1, 10000), (2, 3000)]
    cas = [(a.group, a.reason, a.amount_cents) for la in other.line_adjudications for a in la.adjustments]
    assert cas == [("CO", "45", 5000), ("PR", "2", 2500), ("PR", "1", 1550)]
    assert "SBR*S*" in text and "AMT*D*130~" in text and "SVD*" in text

    with pytest.raises(Conflict, match="exists already"):
        create_next_payer_claim(session, primary)


def test_unbalanced_prior_adjudication_is_caught_by_the_cob_rule(session, ids):
    primary = make_claim(session, ids)
    # The payer's line CAS misses 10.00: paid + CAS != charge on line 1.
    broken = [
        LineAnswer(10000, [("CO", "45", 4000), ("PR", "2", 2500)]),
        LineAnswer(3000, [("PR", "1", 1550)]),
    ]
    adjudicate(session, primary, status="1", lines=broken)
    secondary = create_next_payer_claim(session, primary)
    session.commit()
    codes = {f.code for f in validate(_write(session, secondary).encode()).findings}
    assert {"X12.COB_LINE_BALANCE", "X12.COB_CLAIM_BALANCE"} <= codes


@pytest.mark.parametrize(
    ("status", "crossover", "reason"),
    [
        ("19", "DEMO MEDIGAP", "crossover"),
        ("1", "DEMO MEDIGAP", "crossover"),  # NM1*TT alone is enough
        ("4", None, "did not adjudicate the claim for payment"),
    ],
)
def test_crossover_and_denials_are_not_billed_to_the_next_payer(session, ids, status, crossover, reason):
    primary = make_claim(session, ids)
    lines = (
        PRIMARY
        if status != "4"
        else [LineAnswer(0, [("CO", "16", 17500)]), LineAnswer(0, [("CO", "16", 4550)])]
    )
    adjudicate(session, primary, status=status, lines=lines, crossover_name=crossover)
    with pytest.raises(Conflict, match=reason):
        create_next_payer_claim(session, primary)


def test_nothing_left_or_no_next_coverage(session, ids):
    paid_in_full = make_claim(session, ids)
    adjudicate(session, paid_in_full, status="1", lines=[LineAnswer(17500), LineAnswer(4550)])
    with pytest.raises(Conflict, match="nothing is left"):
        create_next_payer_claim(session, paid_in_full)
    unadjudicated = make_claim(session, ids)
    with pytest.raises(Conflict, match="has not adjudicated"):
        create_next_payer_claim(session, unadjudicated)
