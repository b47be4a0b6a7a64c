"""Replacement (7) and void (8) claims carry the payer's claim number in REF*F8; appeals get deadlines."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from claims_server.claims import services as claim_services
from claims_server.claims import state
from claims_server.claims.to_edi import batch_for, build_edi_claim, claim_load_options
from claims_server.corrections.services import (
    appeal_deadline,
    create_replacement_claim,
    create_void_claim,
    decide_appeal,
    open_appeal,
    submit_appeal,
)
from claims_server.errors import Conflict, Unprocessable
from claims_server.models import Claim, ClaimFilingIndicator, ClaimFrequency, ClaimState, ClearinghouseRoute
from claims_server.models.workqueue import AppealStatus, WorkItemStatus, WorkQueue
from claims_server.workqueue.services import open_work_item
from edi.x837 import parse_837, write_837
from tests.integration.workqueue.support import LineAnswer, adjudicate, make_claim
from tests.unit.edi.support_837 import pyx12_validate

DENIED = [LineAnswer(0, [("CO", "4", 17500)]), LineAnswer(0, [("CO", "4", 4550)])]


def _write(session, claim: Claim) -> str:
    loaded = session.scalars(select(Claim).where(Claim.id == claim.id).options(*claim_load_options())).one()
    route = session.scalar(select(ClearinghouseRoute))
    batch = batch_for(
        loaded.practice, route, [build_edi_claim(session, loaded)], created=datetime(2026, 2, 9, 9)
    )
    return write_837(
        batch, interchange_control=78, group_control=78, transaction_controls=["0078"], usage="T"
    )


def test_replacement_claim_carries_ref_f8_and_resolves_the_denial(session, ids):
    original = make_claim(session, ids)
    adjudicate(session, original, status="4", lines=DENIED, payer_claim_number="ICN20260202001")
    item = open_work_item(
        session, queue=WorkQueue.DENIED, claim=original, reason_codes=["CO-4"],
        recommended_action="correct_and_resubmit", explanation="CO-4", dedupe_key="denied:t:1",
    )  # fmt: skip
    replacement = create_replacement_claim(session, original, reason="modifier 25 added")
    replacement.service_lines[0].modifier1 = "25"
    claim_services.make_ready(session, replacement)
    session.commit()

    assert replacement.frequency_code is ClaimFrequency.REPLACEMENT
    assert replacement.original_claim_id == original.id
    assert original.payer_claim_control_number == "ICN20260202001"
    assert replacement.state is ClaimState.READY
    assert item.status is WorkItemStatus.RESOLVED
    assert item.resolution.startswith("corrected_and_resubmitted")

    text = _write(session, replacement)
    verdict = pyx12_validate(text)
    assert verdict.accepted, verdict.errors
    assert "REF*F8*ICN20260202001~" in text
    parsed = parse_837(text.encode())[0].claims[0]
    assert parsed.frequency_code == "7"
    assert parsed.original_claim_number == "ICN20260202001"
    assert parsed.lines[0].modifiers == ("25",)

    with pytest.raises(Conflict, match="already superseded"):
        create_void_claim(session, original)


def test_void_claim_repeats_the_original(session, ids):
    original = make_claim(session, ids)
    adjudicate(
        session, original, status="1", lines=[LineAnswer(17500), LineAnswer(4550)], payer_claim_number="ICN9"
    )
    void = create_void_claim(session, original, reason="billed to the wrong patient")
    session.commit()
    text = _write(session, void)
    assert pyx12_validate(text).accepted
    parsed = parse_837(text.encode())[0].claims[0]
    assert parsed.frequency_code == "8" and parsed.original_claim_number == "ICN9"
    assert [line.charge_cents for line in parsed.lines] == [17500, 4550]


def test_a_claim_the_payer_never_adjudicated_cannot_be_replaced(session, ids):
    claim = make_claim(session, ids)
    state.mark_rejected(session, claim)
    with pytest.raises(Conflict, match="reopen for correction"):
        create_replacement_claim(session, claim)


@pytest.mark.parametrize(
    ("indicator", "days", "expected"),
    [
        (ClaimFilingIndicator.MEDICARE_PART_B, 180, date(2026, 6, 2)),  # 2026-02-02 + 120 days
        (ClaimFilingIndicator.MEDICARE_PART_A, 30, date(2026, 6, 2)),  # Medicare ignores the default
        (ClaimFilingIndicator.COMMERCIAL, 180, date(2026, 8, 1)),  # + 180 days
        (ClaimFilingIndicator.MEDICAID, 90, date(2026, 5, 3)),  # configurable default
    ],
)
def test_appeal_deadlines(indicator, days, expected):
    assert appeal_deadline(indicator, date(2026, 2, 2), default_days=days) == expected


def test_appeal_life(session, ids):
    claim = make_claim(session, ids)
    adjudicate(session, claim, status="4", lines=DENIED, payment_date=date(2026, 2, 2))
    item = open_work_item(
        session, queue=WorkQueue.DENIED, claim=claim, reason_codes=["CO-4"],
        recommended_action="appeal", explanation="", dedupe_key="denied:t:2",
    )  # fmt: skip
    session.flush()
    appeal = open_appeal(session, claim, work_item=item, default_days=180, today=date(2026, 2, 3))
    indicator = claim.coverage.payer.claim_filing_indicator
    assert appeal.deadline == appeal_deadline(indicator, date(2026, 2, 2), default_days=180)
    assert item.due_date == appeal.deadline and item.queue is WorkQueue.APPEAL
    assert "CO-4" in appeal.letter_text  # generated from the denial
    with pytest.raises(Conflict, match="already draft"):
        open_appeal(session, claim)
    with pytest.raises(Unprocessable, match="deadline passed"):
        submit_appeal(session, appeal, today=appeal.deadline + timedelta(days=1))
    submit_appeal(session, appeal, today=appeal.deadline)
    assert appeal.status is AppealStatus.SUBMITTED
    assert item.status is WorkItemStatus.OPEN and item.queue is WorkQueue.APPEAL
    with pytest.raises(Conflict):
        decide_appeal(session, appeal, AppealStatus.DRAFT)
    decide_appeal(session, appeal, AppealStatus.WON)
    session.commit()
    assert appeal.status is AppealStatus.WON and appeal.decided_at is not None
    assert item.status is WorkItemStatus.RESOLVED and item.resolution.startswith("appealed")


def test_corrections_api(session, ids, api_client, app):
    claim = make_claim(session, ids)
    adjudicate(
        session,
        claim,
        status="4",
        lines=DENIED,
        payer_claim_number="ICN-API-1",
        payment_date=date(2026, 2, 2),
    )
    session.commit()
    biller = api_client("biller")
    app.config["APPEAL_DEADLINE_DAYS"] = 60

    r = biller.post(
        f"/api/v1/claims/{claim.public_id}/appeals",
        json={"letter_text": "Please reconsider.", "determined": "2026-02-02"},
    )
    assert r.status_code == 201, r.get_json()
    appeal = r.get_json()
    indicator = claim.coverage.payer.claim_filing_indicator
    assert appeal["deadline"] == appeal_deadline(indicator, date(2026, 2, 2), default_days=60).isoformat()
    assert biller.get(f"/api/v1/appeals/{appeal['id']}").get_json()["status"] == "draft"

    r = biller.post(f"/api/v1/claims/{claim.public_id}/replacement", json={"reason": "fix modifier"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["frequency_code"] == "7"
    assert biller.post(f"/api/v1/claims/{claim.public_id}/replacement", json={}).status_code == 409
    assert (
        biller.post(f"/api/v1/claims/{claim.public_id}/void", json={}).status_code == 403
    )  # supervisors only
    assert biller.post(f"/api/v1/claims/{claim.public_id}/next-payer-claim").status_code == 409
