"""Nothing lost, nothing doubled: duplicates, dry runs, failed files, and live completeness checks."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from claims_server.errors import Unprocessable
from claims_server.ledger import account_totals
from claims_server.models import (
    AuditEvent,
    ClaimPayment,
    ClaimState,
    EdiFile,
    EdiFileStatus,
    JournalEntry,
    Posting,
    Remittance,
    WorkItem,
)
from claims_server.models.remittance import RemittanceState
from claims_server.remittance import adjudication, posting
from claims_server.remittance.services import receive_and_post, run_posting
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim


def _count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def _snapshot(session) -> tuple[int, ...]:
    return tuple(_count(session, m) for m in (JournalEntry, Posting, Remittance, ClaimPayment, WorkItem))


def _two_claims(session, world):
    a = make_claim(session, world, "PCN-X1", [("99213", 10000)])
    b = make_claim(session, world, "PCN-X2", [("99214", 20000)])
    return a, b


def _content(trace: str = "T-X", control: int = 1, *, bpr02: int | None = None) -> bytes:
    return build_835(
        [
            Clp(
                "PCN-X1",
                "1",
                10000,
                7000,
                1000,
                lines=[Svc("99213", 10000, 7000, [("CO", "45", 2000), ("PR", "3", 1000)])],
            ),
            Clp("PCN-X2", "4", 20000, 0, 0, lines=[Svc("99214", 20000, 0, [("CO", "50", 20000)])]),
        ],
        plb=[("WO", 500)],
        trace=trace,
        control=control,
        bpr02=bpr02,
    )


def test_same_file_twice_posts_nothing_the_second_time(session, world, factory):
    _two_claims(session, world)
    first = receive_and_post(factory, _content())
    assert first.status == "posted"
    before, totals = _snapshot(session), account_totals(session)
    second = receive_and_post(factory, _content())
    assert second.status == "duplicate" and second.duplicate
    assert second.remittances[0].duplicate_of == first.remittances[0].remittance_public_id
    assert _snapshot(session) == before
    assert account_totals(session) == totals
    assert _count(session, EdiFile) == 1  # same bytes: one stored file


def test_same_payer_and_trace_in_another_file_posts_nothing(session, world, factory):
    _two_claims(session, world)
    assert receive_and_post(factory, _content(control=1)).status == "posted"
    before = _snapshot(session)
    again = receive_and_post(factory, _content(control=2))  # new ISA13: other bytes, same TRN
    assert again.status == "duplicate"
    assert _snapshot(session) == before
    assert _count(session, EdiFile) == 2


def test_dry_run_changes_nothing_and_is_audited(session, world, factory):
    a, b = _two_claims(session, world)
    report = receive_and_post(factory, _content(), dry_run=True)
    assert report.status == "dry_run"
    result = report.remittances[0]
    assert (result.claims_parsed, result.claims_posted, result.claims_queued) == (2, 1, 1)
    assert result.paid_posted_cents == 7000 and all(c.ok for c in result.checks)
    assert _snapshot(session) == (0, 0, 0, 0, 0)
    session.expire_all()
    assert a.state == ClaimState.ACKNOWLEDGED and b.state == ClaimState.ACKNOWLEDGED
    edi = session.scalar(select(EdiFile))
    assert edi.status == EdiFileStatus.RECEIVED  # stored (nothing is lost), not posted
    assert (
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == "remittance.dry_run")
        )
        == 1
    )
    # The real posting afterwards posts exactly what the dry run showed.
    real = run_posting(factory, edi.id)
    assert real.status == "posted"
    assert real.summary() | {"status": "x", "dry_run": False} == report.summary() | {
        "status": "x",
        "dry_run": False,
    }


def test_unbalanced_payment_fails_the_file_and_commits_nothing(session, world, factory):
    _two_claims(session, world)
    report = receive_and_post(factory, _content(bpr02=6000))  # should be 70.00 - 5.00 = 65.00
    assert report.status == "failed"
    assert report.error["rule"] == "completeness"
    # Cash of the claims (70.00) != 60.00 + 5.00, and cash clearing (65.00) != 60.00.
    assert {c["name"] for c in report.error["checks"] if not c["ok"]} == {
        "paid_posted_equals_bpr02_plus_plb",
        "cash_clearing_equals_bpr02",
    }
    assert _snapshot(session) == (0, 0, 0, 0, 0)
    edi = session.scalar(select(EdiFile))
    assert edi.status == EdiFileStatus.FAILED and edi.error_summary["rule"] == "completeness"
    failure = session.scalar(select(AuditEvent).where(AuditEvent.event_type == "remittance.post"))
    assert failure is not None and failure.outcome == 8


@pytest.mark.parametrize(
    ("broken", "failing_check"),
    [
        ("drop_cash", "paid_posted_equals_bpr02_plus_plb"),
        ("drop_claim", "claims_posted_or_queued"),
    ],
)
def test_control_broken_posting_path_is_caught(session, world, factory, monkeypatch, broken, failing_check):
    """The checks read the database: a posting path that loses money or a claim is refused."""
    _two_claims(session, world)
    original_legs = adjudication.posting_legs
    original_write = posting.write_entries

    def legs_without_cash(amounts, **dimensions):
        # Balanced but wrong: the payment lands in other adjustments instead of cash clearing.
        legs, restated = original_legs(amounts, **dimensions)
        return [
            dataclasses.replace(leg, account="other_adjustments", remittance_id=None)
            if leg.account == "cash_clearing"
            else leg
            for leg in legs
        ], restated

    def entries_dropped(session, entries, **kwargs):
        # Claims silently dropped: the engine's entries are never written, yet reported as posted.
        return original_write(session, [], **kwargs)

    if broken == "drop_cash":
        monkeypatch.setattr(adjudication, "posting_legs", legs_without_cash)
    else:
        monkeypatch.setattr(posting, "write_entries", entries_dropped)
    report = receive_and_post(factory, _content())
    assert report.status == "failed"
    failed = {c["name"] for c in report.error["checks"] if not c["ok"]}
    assert failing_check in failed
    assert _snapshot(session) == (0, 0, 0, 0, 0)
    monkeypatch.undo()
    # The same file, posted by the intact path, passes.
    edi = session.scalar(select(EdiFile))
    assert run_posting(factory, edi.id).status == "posted"


def test_not_an_835_is_refused_with_a_structured_error(session, world, factory):
    with pytest.raises(Unprocessable) as caught:
        receive_and_post(factory, b"ISA*this is not an interchange~")
    assert caught.value.errors[0]["rule"] == "transaction_set"
    assert _count(session, EdiFile) == 0


def test_835_with_an_unknown_adjustment_group_fails_with_the_rule(session, world, factory):
    _two_claims(session, world)
    content = _content().replace(b"CAS*CO*45", b"CAS*ZZ*45")
    report = receive_and_post(factory, content)
    assert report.status == "failed" and report.error["rule"] == "cas_group"
    assert report.error["errors"][0]["field"] == "CAS01"
    assert _snapshot(session) == (0, 0, 0, 0, 0)


def test_payment_for_unknown_claims_is_kept_and_queued(session, world, factory):
    """No claim of ours matches: the remittance is still posted whole, every CLP queued."""
    report = receive_and_post(factory, _content())
    assert report.status == "posted"
    rem = session.scalar(select(Remittance))
    assert rem.state == RemittanceState.POSTED
    assert _count(session, ClaimPayment) == 2
    # One item per unmatched claim; the PLB (WO 5.00) opens its reconciliation item.
    assert sorted(w.queue.value for w in session.scalars(select(WorkItem))) == [
        "reconciliation",
        "unmatched",
        "unmatched",
    ]
