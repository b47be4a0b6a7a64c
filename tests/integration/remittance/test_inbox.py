"""835s arriving in the clearinghouse inbox are posted on receipt, once."""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.clearinghouse.services import receive_file
from claims_server.ledger import balance
from claims_server.models import AccountCode, ClaimState, EdiFile, EdiFileStatus, JournalEntry
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim


def _file(claim, *, control: int = 1, bpr02: int | None = None) -> bytes:
    (lcn,) = (line.line_control_number for line in claim.service_lines)
    return build_835(
        [
            Clp(
                "PCN-IN1",
                "1",
                10000,
                8000,
                0,
                lines=[Svc("99213", 10000, 8000, [("CO", "45", 2000)], lcn=lcn)],
            )
        ],
        trace="INBOX-1",
        control=control,
        bpr02=bpr02,
    )


def test_inbox_posts_the_835_once(session, world, factory):
    claim = make_claim(session, world, "PCN-IN1", [("99213", 10000)])
    outcome = receive_file(factory, _file(claim), route_id=None)
    assert outcome.kind == "835" and outcome.status == "processed"
    assert outcome.summary["claims_posted"] == 1 and outcome.summary["paid_posted_cents"] == 8000
    session.expire_all()
    assert session.get(type(claim), claim.id).state == ClaimState.PAID
    assert balance(session, [AccountCode.AR_INSURANCE], claim_id=claim.id) == 0
    entries = session.scalar(select(func.count()).select_from(JournalEntry))
    # The same bytes again: stored once, nothing processed. The same payment in other bytes:
    # stored, marked duplicate, nothing posted.
    assert receive_file(factory, _file(claim), route_id=None).duplicate
    again = receive_file(factory, _file(claim, control=2), route_id=None)
    assert again.status == "duplicate"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == entries
    assert session.scalar(select(func.count()).select_from(EdiFile)) == 2


def test_inbox_file_that_fails_a_check_is_kept_and_marked_failed(session, world, factory):
    claim = make_claim(session, world, "PCN-IN1", [("99213", 10000)])
    outcome = receive_file(factory, _file(claim, bpr02=7999), route_id=None)
    assert outcome.status == "failed"
    session.expire_all()
    row = session.scalar(select(EdiFile))
    assert row.status == EdiFileStatus.FAILED and "completeness" in row.error_summary["message"]
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == 0
    assert session.get(type(claim), claim.id).state == ClaimState.ACKNOWLEDGED
