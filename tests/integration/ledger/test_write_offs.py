"""Write-offs: balanced, bounded by the open balance, exactly once, audited, work items resolved."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from claims_server.config import load_settings
from claims_server.errors import Conflict
from claims_server.ledger import account_totals, balance, unbalanced_entries
from claims_server.ledger.write_offs import (
    NON_CONTROLLABLE_REASONS,
    WriteOffBucket,
    WriteOffReason,
    WriteOffRefused,
    approval_limit_for,
    list_write_offs,
    open_balances,
    reverse_write_off,
    write_off,
)
from claims_server.models import (
    RECEIVABLE_ACCOUNTS,
    Account,
    AccountCode,
    AuditEvent,
    JournalEntry,
    JournalEventType,
    Posting,
    WorkItem,
)
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.reports.services import kpis
from claims_server.workqueue.services import RecommendedAction, open_work_item
from tests.integration.payments.support import owed_claim
from tests.integration.remittance.support import seed_world

INS, PT = WriteOffBucket.INSURANCE, WriteOffBucket.PATIENT


@pytest.fixture
def claim(session):
    """Lines of 150.00 and 25.00; the patient owes 40.00 + 15.00, the payer the other 120.00."""
    world = seed_world(session)
    return owed_claim(
        session, world, "WOFF1", [("99213", 15000, 4000), ("36415", 2500, 1500)], since=date(2026, 1, 10)
    )


def _entries(session) -> int:
    return session.scalar(select(func.count()).select_from(JournalEntry))


def _postings_on_receivables(session, claim_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Posting.amount_cents), 0))
            .join(Account)
            .where(Posting.claim_id == claim_id, Account.code.in_([str(a) for a in RECEIVABLE_ACCOUNTS]))
        )
    )


def _wo(session, claim, amount, bucket=INS, reason=WriteOffReason.TIMELY_FILING, key="k1", **kw):
    return write_off(
        session, claim, amount_cents=amount, bucket=bucket, reason=reason, idempotency_key=key, **kw
    )


def test_a_whole_insurance_write_off_balances_and_leaves_the_patient_part(session, claim):
    assert open_balances(session, claim) == {INS: 12000, PT: 5500}
    done = _wo(session, claim, 12000)
    session.commit()
    assert done.amount_cents == 12000 and done.bucket is INS and not done.replayed
    assert open_balances(session, claim) == {INS: 0, PT: 5500}
    assert unbalanced_entries(session) == []
    assert sum(account_totals(session).values()) == 0  # the trial balance
    assert balance(session, claim_id=claim.id) == _postings_on_receivables(session, claim.id) == 5500
    assert balance(session, [AccountCode.WRITE_OFFS], claim_id=claim.id) == 12000
    rows = session.execute(
        select(
            Account.code, Posting.amount_cents, Posting.service_line_id, Posting.payer_id, Posting.patient_id
        )
        .join(Account)
        .where(Posting.journal_entry_id == done.entry.id)
        .order_by(Posting.id)
    ).all()
    payer = claim.coverage.payer_id
    line1, line2 = (line.id for line in claim.service_lines)
    assert rows == [
        ("write_offs", 11000, line1, payer, claim.patient_id),
        ("ar_insurance", -11000, line1, payer, claim.patient_id),
        ("write_offs", 1000, line2, payer, claim.patient_id),
        ("ar_insurance", -1000, line2, payer, claim.patient_id),
    ]
    assert done.entry.event_type == JournalEventType.WRITE_OFF and done.entry.reason_code == "timely_filing"


def test_a_partial_patient_write_off_takes_lines_in_order_and_one_line_can_be_named(session, claim):
    _wo(session, claim, 4500, PT, WriteOffReason.SMALL_BALANCE)
    line1, line2 = (line.id for line in claim.service_lines)
    assert balance(session, [AccountCode.AR_PATIENT], service_line_id=line1) == 0
    assert balance(session, [AccountCode.AR_PATIENT], service_line_id=line2) == 1000
    with pytest.raises(WriteOffRefused) as caught:
        _wo(session, claim, 100, PT, WriteOffReason.SMALL_BALANCE, key="k2", line_number=1)
    assert caught.value.errors[0]["rule"] == "open_balance"
    _wo(session, claim, 1000, PT, WriteOffReason.SMALL_BALANCE, key="k3", line_number=2)
    assert open_balances(session, claim)[PT] == 0
    with pytest.raises(WriteOffRefused) as caught:
        _wo(session, claim, 100, key="k4", line_number=9)
    assert caught.value.errors[0] == {"field": "line", "rule": "exists", "message": "the claim has no line 9"}


@pytest.mark.parametrize(
    ("kwargs", "field", "rule"),
    [
        ({"amount": 12001}, "amount", "at_most_open_balance"),
        ({"amount": 0}, "amount", "positive"),
        ({"amount": -500}, "amount", "positive"),
        ({"amount": 12.5}, "amount", "integer_cents"),
        ({"amount": "100"}, "amount", "integer_cents"),
        ({"reason": ""}, "reason", "required"),
        ({"reason": "goodwill"}, "reason", "one_of"),
        ({"reason": WriteOffReason.OTHER}, "note", "required_for_other"),
        ({"bucket": "payer"}, "bucket", "one_of"),
        ({"amount": 6000, "bucket": PT}, "amount", "at_most_open_balance"),
        ({"amount": 2000, "approval_limit_cents": 1000}, "amount", "approval_limit"),
    ],
)
def test_refused_write_offs_name_the_field_and_write_nothing(session, claim, kwargs, field, rule):
    before = _entries(session)
    args = {"amount": 1000, "bucket": INS, "reason": WriteOffReason.TIMELY_FILING} | kwargs
    with pytest.raises(WriteOffRefused) as caught:
        _wo(session, claim, args.pop("amount"), **args)
    assert (caught.value.errors[0]["field"], caught.value.errors[0]["rule"]) == (field, rule)
    assert caught.value.status == 422
    session.rollback()
    assert _entries(session) == before
    assert open_balances(session, claim)[INS] > 0


def test_the_same_key_posts_once_and_another_request_with_it_is_a_conflict(session, claim):
    first = _wo(session, claim, 2000)
    again = _wo(session, claim, 2000)
    session.commit()
    assert again.replayed and again.public_id == first.public_id
    assert (
        session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.event_type == JournalEventType.WRITE_OFF)
        )
        == 1
    )
    assert open_balances(session, claim)[INS] == 10000
    with pytest.raises(Conflict):
        _wo(session, claim, 3000)
    with pytest.raises(Conflict):
        _wo(session, claim, 2000, reason=WriteOffReason.BAD_DEBT)


def test_audited_without_the_note_and_the_note_is_kept_encrypted(session, claim):
    note = "Patient Jane Synthetic called: hardship approved by the office manager"
    done = _wo(session, claim, 5500, PT, WriteOffReason.HARDSHIP, note=note)
    session.commit()
    event = session.scalar(select(AuditEvent).where(AuditEvent.event_type == "ledger.write_off"))
    assert event.entity_id == done.public_id and event.patient_id == claim.patient_id
    assert event.details["reason"] == "hardship" and event.details["bucket"] == "patient"
    assert event.details["amount_cents"] == 5500 and event.details["claim"] == claim.public_id
    assert note not in repr(event.details) and "Jane" not in (done.entry.memo or "")
    assert [w.note for w in list_write_offs(session, claim)] == [note]
    raw = session.connection().exec_driver_sql("SELECT note FROM journal_notes").all()
    assert raw and all("Jane" not in str(row[0]) for row in raw)


def test_it_resolves_the_claims_denial_items_when_what_the_payer_owes_reaches_zero(session, claim):
    for key, action in (("wo", RecommendedAction.WRITE_OFF), ("appeal", RecommendedAction.APPEAL)):
        open_work_item(
            session,
            queue=WorkQueue.DENIED,
            claim=claim,
            reason_codes=["CO-29"],
            recommended_action=action,
            explanation="",
            dedupe_key=f"test:{key}",
        )
    session.commit()
    _wo(session, claim, 11999)  # a cent of the payer's 120.00 left: both stay open
    session.commit()
    items = {i.dedupe_key: i for i in session.scalars(select(WorkItem).where(WorkItem.claim_id == claim.id))}
    assert {i.status for i in items.values()} == {WorkItemStatus.OPEN}
    _wo(session, claim, 1, key="last-cent")
    session.commit()
    assert items["test:wo"].status == WorkItemStatus.RESOLVED
    assert items["test:wo"].resolution.startswith("written_off")
    # Nothing is left to appeal for either: it closes with a system note saying why.
    assert items["test:appeal"].status == WorkItemStatus.RESOLVED
    assert items["test:appeal"].resolution.startswith("system: the balance it is about was written off")
    assert session.scalar(
        select(AuditEvent).where(
            AuditEvent.event_type == "work_item.resolve", AuditEvent.entity_id == items["test:wo"].public_id
        )
    )


def test_a_reversal_mirrors_the_write_off_once(session, claim):
    done = _wo(session, claim, 3000)
    undone = reverse_write_off(session, claim, done.public_id, reason="posted_in_error")
    session.commit()
    assert undone.amount_cents == -3000 and undone.reverses == done.public_id
    assert open_balances(session, claim)[INS] == 12000
    assert balance(session, [AccountCode.WRITE_OFFS], claim_id=claim.id) == 0
    assert unbalanced_entries(session) == []
    assert [w.reversed_by for w in list_write_offs(session, claim)] == [undone.public_id, None]
    with pytest.raises(Conflict):
        reverse_write_off(session, claim, done.public_id, reason="posted_in_error")
    with pytest.raises(Conflict):
        reverse_write_off(session, claim, undone.public_id, reason="posted_in_error")
    with pytest.raises(WriteOffRefused):
        reverse_write_off(session, claim, done.public_id, reason="changed my mind")


def test_net_collection_rate_deducts_only_non_controllable_write_offs(session, claim):
    def denominator() -> int:
        rate = next(
            k
            for k in kpis(session, start=date(2000, 1, 1), end=date.today())
            if k.name == "net_collection_rate"
        )
        return rate.denominator

    before = denominator()
    _wo(session, claim, 1000, PT, WriteOffReason.SMALL_BALANCE, key="a")
    assert denominator() == before
    _wo(session, claim, 700, PT, WriteOffReason.HARDSHIP, key="b")
    assert denominator() == before - 700
    assert WriteOffReason.HARDSHIP in NON_CONTROLLABLE_REASONS
    assert WriteOffReason.BAD_DEBT not in NON_CONTROLLABLE_REASONS


def test_the_biller_limit_is_a_setting_with_a_default():
    settings = load_settings({}, environ={})
    assert settings.WRITE_OFF_BILLER_LIMIT_CENTS == 50_000
    assert (
        load_settings({}, environ={"WRITE_OFF_BILLER_LIMIT_CENTS": "2500"}).WRITE_OFF_BILLER_LIMIT_CENTS
        == 2500
    )
    assert approval_limit_for("biller", 2500) == 2500
    assert approval_limit_for("billing_supervisor", 2500) is None
    assert approval_limit_for("admin", 2500) is None
