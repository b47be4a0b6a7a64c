"""Each case named under "Why" in issue 17, with hand-computed cents (docs/adjudication-history.md).

Conventions as in ``test_posting_cases``: debit positive, credit negative; ``ledger(claim)``
is Σ postings by account for the encounter's claim dimension (held money sits in cash
clearing and unapplied payments with the remittance dimension only, so it is not there).
A BPR02 is never negative: where a file's claims net below zero the payer carries the
difference as a PLB FB forward balance (TR3 §1.10.2.17) and BPR02 is 0.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from claims_server.db import unit_of_work
from claims_server.errors import Conflict
from claims_server.ledger import account_totals, balance, balances_by
from claims_server.models import (
    AccountCode,
    Claim,
    ClaimPayment,
    ClaimState,
    Coverage,
    JournalEntry,
    Posting,
    Remittance,
    WorkItem,
)
from claims_server.models.remittance import RemittanceState
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.remittance.services import decide_held, decide_held_remittance, receive_and_post
from claims_server.workqueue.services import sweep_unpaid
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

AR_INS, AR_PT = AccountCode.AR_INSURANCE.value, AccountCode.AR_PATIENT.value
CASH, GROSS = AccountCode.CASH_CLEARING.value, AccountCode.GROSS_CHARGES.value
CONTRACTUAL = AccountCode.CONTRACTUAL_ADJUSTMENTS.value
UNAPPLIED = "unapplied_payments"


def ledger(session, claim: Claim) -> dict[str, int]:
    session.expire_all()
    return account_totals(session, claim_id=claim.id)


def refreshed(session, claim: Claim) -> Claim:
    session.expire_all()
    return session.get(Claim, claim.id)


def history(session, claim: Claim) -> list[tuple[str, str, str | None]]:
    """(kind, state, hold reason) of the claim's adjudications, in arrival order."""
    session.expire_all()
    rows = session.scalars(
        select(ClaimPayment).where(ClaimPayment.ledger_claim_id == claim.id).order_by(ClaimPayment.id)
    )
    return [
        (
            p.adjudication_kind.value,
            p.adjudication_state.value,
            p.hold_reason.value if p.hold_reason else None,
        )
        for p in rows
    ]


def remittance(session, trace: str) -> Remittance:
    session.expire_all()
    return session.scalar(select(Remittance).where(Remittance.trace_number == trace))


def items(session, queue: WorkQueue | None = None, claim: Claim | None = None) -> list[WorkItem]:
    session.expire_all()
    stmt = select(WorkItem).order_by(WorkItem.id)
    if queue is not None:
        stmt = stmt.where(WorkItem.queue == queue)
    if claim is not None:
        stmt = stmt.where(WorkItem.claim_id == claim.id)
    return list(session.scalars(stmt))


def no_negative_payer_ar(session) -> None:
    """No payer's A/R insurance of any claim is below zero."""
    session.expire_all()
    total = func.sum(Posting.amount_cents)
    rows = session.execute(
        select(Posting.claim_id, Posting.payer_id, total)
        .join(JournalEntry, JournalEntry.id == Posting.journal_entry_id)
        .where(Posting.account_id == _account_id(session, AR_INS))
        .group_by(Posting.claim_id, Posting.payer_id)
        .having(total < 0)
    ).all()
    assert rows == []
    assert sum(account_totals(session).values()) == 0  # and the trial balance is whole


def _account_id(session, code: str) -> int:
    from claims_server.models import Account

    return session.scalar(select(Account.id).where(Account.code == code))


def lcns(claim: Claim) -> list[str]:
    return [line.line_control_number for line in claim.service_lines]


def _medicare_then_medicaid(session) -> Coverage:
    coverages = session.scalars(select(Coverage).order_by(Coverage.id)).all()
    payer = {c.payer_id: c.payer.payer_id for c in coverages}
    by_patient: dict[int, dict[int, str]] = {}
    for c in coverages:
        by_patient.setdefault(c.patient_id, {})[c.coverage_order] = payer[c.payer_id]
    return next(
        c
        for c in coverages
        if c.coverage_order == 1 and by_patient[c.patient_id] == {1: "DEMOMCRB", 2: "DEMOMCD"}
    )


# -- coordination of benefits ------------------------------------------------------------------


def test_secondary_restating_the_primarys_co45_moves_only_what_is_open(session, world, factory):
    """Medicaid after Medicare repeats Medicare's CO-45: payer A/R never negative, contractual
    counted once, the patient owes the secondary's PR only."""
    coverage = _medicare_then_medicaid(session)
    claim = make_claim(session, world, "PCN-COB1", [("99214", 20000)], coverage=coverage)
    (l1,) = lcns(claim)
    medicare, medicaid = world.payers["DEMOMCRB"], world.payers["DEMOMCD"]
    # Medicare: 200.00 = 80.00 paid + CO-45 100.00 + PR-2 20.00 (coinsurance, moves to Medicaid).
    first = build_835(
        [
            Clp(
                "PCN-COB1",
                "1",
                20000,
                8000,
                2000,
                lines=[Svc("99214", 20000, 8000, [("CO", "45", 10000), ("PR", "2", 2000)], lcn=l1)],
                payer_claim_number="MCR-1",
            )
        ],
        payer="DEMOMCRB",
        trace="COB-MCR",
    )
    assert receive_and_post(factory, first).status == "posted"
    assert balances_by(session, "payer_id", [AR_INS], claim_id=claim.id) == {medicaid: 2000}
    # Medicaid (CLP02 = 2): 200.00 = 12.00 paid + CO-45 103.00 (its allowed is 97.00, below
    # Medicare's 100.00) + OA-23 80.00 (Medicare's payment restated) + PR-3 5.00 copay.
    # Open on Medicaid: 20.00; paid + PR = 17.00 <= 20.00, room = 20.00 - 17.00 = 3.00, so
    # 3.00 of the CO-45 posts and 100.00 is Medicare's CO-45 restated: stored, not posted.
    second = build_835(
        [
            Clp(
                "PCN-COB1",
                "2",
                20000,
                1200,
                500,
                lines=[
                    Svc(
                        "99214",
                        20000,
                        1200,
                        [("CO", "45", 10300), ("OA", "23", 8000), ("PR", "3", 500)],
                        lcn=l1,
                    )
                ],
                payer_claim_number="MCD-1",
            )
        ],
        payer="DEMOMCD",
        trace="COB-MCD",
    )
    report = receive_and_post(factory, second)
    assert report.status == "posted", report.error
    outcome = report.remittances[0].claims[0]
    assert (outcome.outcome, outcome.restated_cents) == ("posted", 10000)
    assert ledger(session, claim) == {
        GROSS: -20000,
        CASH: 8000 + 1200,
        CONTRACTUAL: 10000 + 300,  # Medicare's 100.00 once, and Medicaid's own 3.00
        AR_PT: 500,  # the last payer's PR, not 20.00 + 5.00
    }
    assert balances_by(session, "payer_id", [AR_INS], claim_id=claim.id) == {}
    assert medicare not in balances_by(session, "payer_id", [AR_INS])
    assert refreshed(session, claim).state == ClaimState.PAID
    assert history(session, claim) == [("original", "current", None), ("original", "current", None)]
    no_negative_payer_ar(session)


def test_secondary_835_before_the_primarys_is_held_then_released(session, world, factory):
    """The secondary's answer first would overdraw its A/R (nothing is open on it yet): held,
    with an item, then released by the primary's 835 and posted as in order."""
    claim = make_claim(session, world, "PCN-COB2", [("99213", 10000)], coverage=world.with_secondary)
    (l1,) = lcns(claim)
    acme = world.payers["DEMOACME"]
    # ACME (secondary, CLP02 = 2): 100.00 = 10.00 paid + OA-23 86.00 + PR-2 4.00.
    secondary = build_835(
        [
            Clp(
                "PCN-COB2",
                "2",
                10000,
                1000,
                400,
                lines=[Svc("99213", 10000, 1000, [("OA", "23", 8600), ("PR", "2", 400)], lcn=l1)],
                payer_claim_number="ACME-2",
            )
        ],
        payer="DEMOACME",
        trace="COB2-ACME",
    )
    report = receive_and_post(factory, secondary)
    assert report.status == "posted", report.error
    result = report.remittances[0]
    assert (result.claims_posted, result.claims_held, result.claims_queued) == (0, 1, 0)
    assert report.to_json_dict()["remittances"][0]["claims_held"] == 1
    assert ledger(session, claim) == {GROSS: -10000, AR_INS: 10000}  # the charge only
    rem = remittance(session, "COB2-ACME")
    assert balance(session, [CASH], remittance_id=rem.id) == 1000  # = BPR02, held or not
    assert balance(session, [UNAPPLIED], remittance_id=rem.id) == -1000
    assert history(session, claim) == [("original", "held", "would_overdraw")]
    (item,) = items(session, WorkQueue.OTHER, claim)
    assert item.reason_codes == ["WOULD_OVERDRAW"] and item.status == WorkItemStatus.OPEN
    # Medicare: 100.00 = 56.00 paid + CO-45 30.00 + PR-2 14.00 (to ACME's A/R): then ACME's
    # held answer fits (paid + PR = 14.00 = open) and posts; its hold is mirrored first.
    primary = build_835(
        [
            Clp(
                "PCN-COB2",
                "19",
                10000,
                5600,
                1400,
                lines=[Svc("99213", 10000, 5600, [("CO", "45", 3000), ("PR", "2", 1400)], lcn=l1)],
                crossover="ACME HEALTH",
                payer_claim_number="MCR-2",
            )
        ],
        payer="DEMOMCRB",
        trace="COB2-MCR",
    )
    assert receive_and_post(factory, primary).status == "posted"
    assert ledger(session, claim) == {GROSS: -10000, CASH: 6600, CONTRACTUAL: 3000, AR_PT: 400}
    assert balances_by(session, "payer_id", [AR_INS], claim_id=claim.id) == {}
    assert balance(session, [UNAPPLIED], remittance_id=rem.id) == 0
    assert balance(session, [CASH], remittance_id=rem.id) == 1000
    assert history(session, claim) == [("original", "current", None), ("original", "current", None)]
    item = items(session, WorkQueue.OTHER, claim)[0]
    assert item.status == WorkItemStatus.RESOLVED and item.resolution.startswith("system: ")
    assert balances_by(session, "payer_id", [AR_INS]).get(acme, 0) >= 0
    no_negative_payer_ar(session)


# -- re-issued files and second originals -----------------------------------------------------


def _two_claims_paid(session, world, factory, prefix: str) -> tuple[Claim, Claim, bytes]:
    a = make_claim(session, world, f"{prefix}A", [("99214", 30000)])
    b = make_claim(session, world, f"{prefix}B", [("99213", 20000)])
    # A: 300.00 = 150.00 paid + CO-45 104.40 + PR-2 45.60; B: 200.00 = 100.00 + CO-45 50.00 + PR-1 50.00.
    # Patient responsibility 95.60 in all; BPR02 = 250.00.
    clps = [
        Clp(
            f"{prefix}A",
            "1",
            30000,
            15000,
            4560,
            lines=[Svc("99214", 30000, 15000, [("CO", "45", 10440), ("PR", "2", 4560)], lcn=lcns(a)[0])],
            payer_claim_number=f"{prefix}-ICN-A",
        ),
        Clp(
            f"{prefix}B",
            "1",
            20000,
            10000,
            5000,
            lines=[Svc("99213", 20000, 10000, [("CO", "45", 5000), ("PR", "1", 5000)], lcn=lcns(b)[0])],
            payer_claim_number=f"{prefix}-ICN-B",
        ),
    ]
    assert receive_and_post(factory, build_835(clps, trace=f"{prefix}-1")).status == "posted"
    return a, b, build_835(clps, trace=f"{prefix}-2", control=2)  # the same answers, new trace


def _paid_ledgers(session, a: Claim, b: Claim) -> None:
    assert ledger(session, a) == {GROSS: -30000, CASH: 15000, CONTRACTUAL: 10440, AR_PT: 4560}
    assert ledger(session, b) == {GROSS: -20000, CASH: 10000, CONTRACTUAL: 5000, AR_PT: 5000}
    assert balance(session, [AR_PT]) == 9560  # 95.60, not 191.20


def test_reissued_835_with_a_new_trace_is_held_as_a_whole(session, world, factory):
    a, b, reissued = _two_claims_paid(session, world, factory, "RI")
    report = receive_and_post(factory, reissued)
    assert report.status == "posted", report.error
    result = report.remittances[0]
    assert result.held and (result.claims_parsed, result.claims_posted, result.claims_held) == (2, 0, 2)
    assert all(c.ok for c in result.checks)
    rem = remittance(session, "RI-2")
    assert rem.state == RemittanceState.HELD
    assert balance(session, [CASH], remittance_id=rem.id) == 25000  # = BPR02
    assert balance(session, [UNAPPLIED], remittance_id=rem.id) == -25000
    _paid_ledgers(session, a, b)  # nothing doubled
    assert [h[1:] for h in history(session, a)] == [("current", None), ("held", "possible_duplicate")]
    # One work item for the remittance, naming both adjudications by trace (no patient data).
    (item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert (item.remittance_id, item.claim_payment_id, item.claim_id) == (rem.id, None, None)
    text = item.comments[0].body
    assert "RI-2" in text and "RI-1" in text and "PCN" not in text
    assert refreshed(session, a).state == ClaimState.PAID
    no_negative_payer_ar(session)


def test_supervisor_posts_a_held_remittance(session, world, factory):
    a, b, reissued = _two_claims_paid(session, world, factory, "RP")
    assert receive_and_post(factory, reissued).status == "posted"
    first, rem = remittance(session, "RP-1"), remittance(session, "RP-2")
    with unit_of_work(factory) as s:
        outcome = decide_held_remittance(s, rem.id, "post", actor="sup.jones")
    assert outcome["state"] == "posted" and [c["state"] for c in outcome["claims"]] == ["current", "current"]
    assert all(c["superseded_claim_payment_id"] for c in outcome["claims"])
    # Each held answer replaced the current one: the same amounts, posted once.
    _paid_ledgers(session, a, b)
    assert [h[:2] for h in history(session, a)] == [("original", "superseded"), ("correction", "current")]
    # The first payment's entries were mirrored (its cash leaves cash clearing with them); the
    # re-issued one's hold was mirrored and it posted: one payment of 250.00 in cash clearing.
    assert balance(session, [CASH], remittance_id=first.id) == 0
    assert balance(session, [CASH], remittance_id=rem.id) == 25000
    assert balance(session, [UNAPPLIED], remittance_id=rem.id) == 0
    rem = remittance(session, "RP-2")
    assert rem.state == RemittanceState.POSTED
    (item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert item.status == WorkItemStatus.RESOLVED and "sup.jones" in item.resolution
    held = session.scalars(select(ClaimPayment).where(ClaimPayment.remittance_id == rem.id)).all()
    assert {p.decided_by for p in held} == {"sup.jones"} and all(p.decided_at for p in held)
    assert refreshed(session, a).state == ClaimState.PAID
    no_negative_payer_ar(session)
    # Decided: a second decision is refused.
    with pytest.raises(Conflict), unit_of_work(factory) as s:
        decide_held_remittance(s, rem.id, "reject", actor="sup.jones")


def test_supervisor_rejects_a_held_remittance(session, world, factory):
    a, b, reissued = _two_claims_paid(session, world, factory, "RJ")
    assert receive_and_post(factory, reissued).status == "posted"
    first, rem = remittance(session, "RJ-1"), remittance(session, "RJ-2")
    with unit_of_work(factory) as s:
        outcome = decide_held_remittance(s, rem.id, "reject", actor="sup.jones")
    assert [c["state"] for c in outcome["claims"]] == ["rejected", "rejected"]
    _paid_ledgers(session, a, b)
    # The re-issued file's money leaves cash clearing and unapplied payments.
    assert balance(session, [CASH], remittance_id=rem.id) == 0
    assert balance(session, [UNAPPLIED], remittance_id=rem.id) == 0
    assert balance(session, [CASH], remittance_id=first.id) == 25000
    assert [h[1] for h in history(session, a)] == ["current", "rejected"]
    assert remittance(session, "RJ-2").state == RemittanceState.POSTED
    (item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert item.status == WorkItemStatus.RESOLVED
    no_negative_payer_ar(session)


def test_second_original_of_an_unreversed_claim_is_held_then_posted(session, world, factory):
    claim = make_claim(session, world, "PCN-DUP1", [("99213", 10000)])
    other = make_claim(session, world, "PCN-DUP2", [("99212", 6000)])
    (l1,) = lcns(claim)
    # First: 100.00 = 70.00 paid + CO-45 20.00 + PR-2 10.00.
    first = build_835(
        [
            Clp(
                "PCN-DUP1",
                "1",
                10000,
                7000,
                1000,
                lines=[Svc("99213", 10000, 7000, [("CO", "45", 2000), ("PR", "2", 1000)], lcn=l1)],
                payer_claim_number="ICN-D1",
            )
        ],
        trace="DUP-1",
    )
    assert receive_and_post(factory, first).status == "posted"
    # A second original, no reversal between: 100.00 = 75.00 + CO-45 20.00 + PR-2 5.00; and
    # another claim's first answer, 60.00 = 50.00 + CO-45 10.00. BPR02 = 125.00.
    second = build_835(
        [
            Clp(
                "PCN-DUP1",
                "1",
                10000,
                7500,
                500,
                lines=[Svc("99213", 10000, 7500, [("CO", "45", 2000), ("PR", "2", 500)], lcn=l1)],
                payer_claim_number="ICN-D1",
            ),
            Clp(
                "PCN-DUP2",
                "1",
                6000,
                5000,
                0,
                lines=[Svc("99212", 6000, 5000, [("CO", "45", 1000)], lcn=lcns(other)[0])],
                payer_claim_number="ICN-D2",
            ),
        ],
        trace="DUP-2",
    )
    report = receive_and_post(factory, second)
    assert report.status == "posted", report.error
    result = report.remittances[0]
    assert not result.held and (result.claims_posted, result.claims_held) == (1, 1)
    assert [c.outcome for c in result.claims] == ["held", "posted"]
    rem1, rem2 = remittance(session, "DUP-1"), remittance(session, "DUP-2")
    assert rem2.state == RemittanceState.POSTED
    assert ledger(session, claim) == {GROSS: -10000, CASH: 7000, CONTRACTUAL: 2000, AR_PT: 1000}
    assert balance(session, [CASH], remittance_id=rem2.id) == 12500
    assert balance(session, [UNAPPLIED], remittance_id=rem2.id) == -7500
    held = session.scalar(
        select(ClaimPayment).where(ClaimPayment.remittance_id == rem2.id, ClaimPayment.position == 1)
    )
    (item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert (item.claim_payment_id, item.claim_id, item.remittance_id) == (held.id, claim.id, rem2.id)
    assert "DUP-1" in item.comments[0].body and "DUP-2" in item.comments[0].body
    no_negative_payer_ar(session)

    with unit_of_work(factory) as s:
        outcome = decide_held(s, held.id, "post", actor="sup.jones")
    assert outcome["state"] == "current" and outcome["kind"] == "correction"
    # The second adjudication replaced the first: 75.00 paid, the patient owes 5.00.
    assert ledger(session, claim) == {GROSS: -10000, CASH: 7500, CONTRACTUAL: 2000, AR_PT: 500}
    assert balance(session, [CASH], remittance_id=rem1.id) == 0
    assert balance(session, [CASH], remittance_id=rem2.id) == 12500
    assert history(session, claim) == [("original", "superseded", None), ("correction", "current", None)]
    (item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert item.status == WorkItemStatus.RESOLVED and item.resolution == "system: post decided by sup.jones"
    no_negative_payer_ar(session)


def test_posting_a_held_duplicate_that_would_overdraw_is_refused(session, world, factory):
    """Replacing Medicare's adjudication would take back the 14.00 it moved to ACME, which ACME
    already adjudicated: refused (409), nothing changed."""
    claim = make_claim(session, world, "PCN-OVR1", [("99213", 10000)], coverage=world.with_secondary)
    (l1,) = lcns(claim)
    medicare_clp = Clp(
        "PCN-OVR1",
        "1",
        10000,
        5600,
        1400,
        lines=[Svc("99213", 10000, 5600, [("CO", "45", 3000), ("PR", "2", 1400)], lcn=l1)],
        payer_claim_number="MCR-O1",
    )
    assert (
        receive_and_post(factory, build_835([medicare_clp], payer="DEMOMCRB", trace="OVR-1")).status
        == "posted"
    )
    acme = build_835(
        [
            Clp(
                "PCN-OVR1",
                "2",
                10000,
                1400,
                0,
                lines=[Svc("99213", 10000, 1400, [("OA", "23", 8600)], lcn=l1)],
                payer_claim_number="ACME-O1",
            )
        ],
        payer="DEMOACME",
        trace="OVR-ACME",
    )
    assert receive_and_post(factory, acme).status == "posted"
    # Medicare re-issues its answer with one claim more, so the file is not held as a whole.
    other = make_claim(session, world, "PCN-OVR2", [("99212", 5000)], coverage=world.with_secondary)
    again = build_835(
        [
            medicare_clp,
            Clp(
                "PCN-OVR2",
                "1",
                5000,
                4000,
                0,
                lines=[Svc("99212", 5000, 4000, [("CO", "45", 1000)], lcn=lcns(other)[0])],
                payer_claim_number="MCR-O2",
            ),
        ],
        payer="DEMOMCRB",
        trace="OVR-2",
    )
    assert receive_and_post(factory, again).status == "posted"
    held = session.scalar(
        select(ClaimPayment).where(
            ClaimPayment.remittance_id == remittance(session, "OVR-2").id, ClaimPayment.position == 1
        )
    )
    assert held.adjudication_state.value == "held"
    before = (ledger(session, claim), session.scalar(select(func.count()).select_from(JournalEntry)))
    with pytest.raises(Conflict) as refused, unit_of_work(factory) as s:
        decide_held(s, held.id, "post", actor="sup.jones")
    assert refused.value.status == 409 and refused.value.errors[0]["rule"] == "would_overdraw"
    assert (ledger(session, claim), session.scalar(select(func.count()).select_from(JournalEntry))) == before
    session.expire_all()
    assert session.get(ClaimPayment, held.id).adjudication_state.value == "held"
    assert session.get(ClaimPayment, held.id).decided_at is None
    # Rejecting it is allowed: its money leaves cash clearing and unapplied payments.
    with unit_of_work(factory) as s:
        assert decide_held(s, held.id, "reject", actor="sup.jones")["state"] == "rejected"
    assert ledger(session, claim) == before[0]
    no_negative_payer_ar(session)


# -- reversals in any order ----------------------------------------------------------------------

ORIGINAL = dict(charge=15000, paid=10000, co=4000, pr=1000)  # 150.00 = 100.00 + CO-45 40.00 + PR-2 10.00
CORRECTED = dict(charge=15000, paid=9000, co=4000, pr=2000)  # 150.00 = 90.00 + CO-45 40.00 + PR-2 20.00
REVERSAL = dict(charge=-15000, paid=-10000, co=-4000, pr=-1000)


def _clp(pcn: str, status: str, lcn: str, amounts: dict[str, int]) -> Clp:
    return Clp(
        pcn,
        status,
        amounts["charge"],
        amounts["paid"],
        amounts["pr"],
        lines=[
            Svc(
                "99214",
                amounts["charge"],
                amounts["paid"],
                [("CO", "45", amounts["co"]), ("PR", "2", amounts["pr"])],
                lcn=lcn,
            )
        ],
        payer_claim_number="ICN-R1",
    )


def _originally_paid(session, world, factory, pcn: str) -> tuple[Claim, str]:
    claim = make_claim(session, world, pcn, [("99214", 15000)])
    (l1,) = lcns(claim)
    assert (
        receive_and_post(factory, build_835([_clp(pcn, "1", l1, ORIGINAL)], trace=f"{pcn}-1")).status
        == "posted"
    )
    return claim, l1


def _corrected(session, claim: Claim) -> None:
    """The reversal undid the original, not the correction: the patient owes 20.00."""
    assert ledger(session, claim) == {GROSS: -15000, CASH: 9000, CONTRACTUAL: 4000, AR_PT: 2000}
    assert refreshed(session, claim).state == ClaimState.PAID
    kinds = history(session, claim)
    assert sorted(kinds) == sorted(
        [("original", "reversed", None), ("reversal", "applied", None), ("correction", "current", None)]
    )
    session.expire_all()
    reversal = session.scalar(
        select(ClaimPayment).where(ClaimPayment.ledger_claim_id == claim.id, ClaimPayment.status_code == "22")
    )
    original = session.scalar(
        select(ClaimPayment)
        .where(ClaimPayment.ledger_claim_id == claim.id, ClaimPayment.status_code == "1")
        .order_by(ClaimPayment.id)
        .limit(1)
    )
    assert reversal.reverses_claim_payment_id == original.id
    no_negative_payer_ar(session)


def test_correction_listed_before_its_reversal_in_one_file(session, world, factory):
    claim, l1 = _originally_paid(session, world, factory, "PCN-RV1")
    # [correction, reversal]: the claims net 90.00 - 100.00 = -10.00, carried as PLB FB -10.00.
    content = build_835(
        [_clp("PCN-RV1", "1", l1, CORRECTED), _clp("PCN-RV1", "22", l1, REVERSAL)],
        trace="PCN-RV1-2",
        plb=[("FB", -1000)],
    )
    report = receive_and_post(factory, content)
    assert report.status == "posted", report.error
    # The correction arrived while the original was current (held), the reversal took the
    # original back, and the retry released the correction: both end posted.
    assert [c.outcome for c in report.remittances[0].claims] == ["posted", "reversed"]
    _corrected(session, claim)
    rem = remittance(session, "PCN-RV1-2")
    assert rem.state == RemittanceState.POSTED
    assert balance(session, [UNAPPLIED], remittance_id=rem.id) == 0
    assert items(session, WorkQueue.POSSIBLE_DUPLICATE) == []


def test_correction_file_before_the_reversal_file(session, world, factory):
    claim, l1 = _originally_paid(session, world, factory, "PCN-RV2")
    first = build_835([_clp("PCN-RV2", "1", l1, CORRECTED)], trace="PCN-RV2-2")
    assert receive_and_post(factory, first).status == "posted"
    held_rem = remittance(session, "PCN-RV2-2")
    assert held_rem.state == RemittanceState.HELD  # its only claim repeats a current adjudication
    assert ledger(session, claim) == {GROSS: -15000, CASH: 10000, CONTRACTUAL: 4000, AR_PT: 1000}
    second = build_835([_clp("PCN-RV2", "22", l1, REVERSAL)], trace="PCN-RV2-3", plb=[("FB", -10000)])
    assert receive_and_post(factory, second).status == "posted"
    _corrected(session, claim)
    # Released: the held remittance is posted and its item closed itself.
    assert remittance(session, "PCN-RV2-2").state == RemittanceState.POSTED
    assert balance(session, [UNAPPLIED], remittance_id=held_rem.id) == 0
    assert balance(session, [CASH], remittance_id=held_rem.id) == 9000
    (item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert item.status == WorkItemStatus.RESOLVED and item.resolution.startswith("system: ")


def test_reversal_file_before_the_correction_file(session, world, factory):
    claim, l1 = _originally_paid(session, world, factory, "PCN-RV3")
    reversal = build_835([_clp("PCN-RV3", "22", l1, REVERSAL)], trace="PCN-RV3-2", plb=[("FB", -10000)])
    assert receive_and_post(factory, reversal).status == "posted"
    assert ledger(session, claim) == {GROSS: -15000, AR_INS: 15000}  # back to the charge
    assert refreshed(session, claim).state == ClaimState.ACKNOWLEDGED
    (item,) = items(session, WorkQueue.OTHER, claim)
    assert item.reason_codes == ["REVERSED"] and item.status == WorkItemStatus.OPEN
    correction = build_835([_clp("PCN-RV3", "1", l1, CORRECTED)], trace="PCN-RV3-3")
    assert receive_and_post(factory, correction).status == "posted"
    _corrected(session, claim)
    (item,) = items(session, WorkQueue.OTHER, claim)
    assert item.status == WorkItemStatus.RESOLVED and item.resolved_at is not None
    assert item.resolution.startswith("system: a later adjudication of the reversed claim posted money")


def test_reversed_claim_awaits_payment_again_and_is_in_the_unpaid_sweep(session, world, factory):
    claim, l1 = _originally_paid(session, world, factory, "PCN-RV4")
    session.expire_all()
    row = session.get(Claim, claim.id)
    row.submitted_at = datetime.now(UTC) - timedelta(days=45)
    session.commit()
    reversal = build_835([_clp("PCN-RV4", "22", l1, REVERSAL)], trace="PCN-RV4-2", plb=[("FB", -10000)])
    assert receive_and_post(factory, reversal).status == "posted"
    assert refreshed(session, claim).state == ClaimState.ACKNOWLEDGED
    (item,) = items(session, WorkQueue.OTHER, claim)
    assert item.reason_codes == ["REVERSED"]
    assert "awaiting its corrected adjudication" in item.comments[0].body
    # A month after the reversal with no corrected answer, the unpaid sweep sees it again.
    with unit_of_work(factory) as s:
        opened, _ = sweep_unpaid(s, days=30, as_of=date.today() + timedelta(days=31))
    assert opened == 1
    (unpaid,) = items(session, WorkQueue.UNPAID, claim)
    assert unpaid.status == WorkItemStatus.OPEN


def _reissue_story(session, world, pcn: str) -> tuple[Claim, Clp, Clp, Clp]:
    """ACME alone, 100.00: A pays 60.00 (CO-45 30.00, PR-2 10.00), R reverses it, B pays 70.00
    (CO-45 30.00) under the same CLP07."""
    claim = make_claim(session, world, pcn, [("99213", 10000)])
    (l1,) = lcns(claim)

    def clp(status: str, paid: int, cas: list[tuple[str, str, int]], sign: int = 1) -> Clp:
        pr = sum(a for g, _, a in cas if g == "PR")
        return Clp(
            pcn,
            status,
            sign * 10000,
            paid,
            pr,
            lines=[Svc("99213", sign * 10000, paid, cas, lcn=l1)],
            payer_claim_number=pcn.replace("PCN", "ICN"),
        )

    a = clp("1", 6000, [("CO", "45", 3000), ("PR", "2", 1000)])
    r = clp("22", -6000, [("CO", "45", -3000), ("PR", "2", -1000)], sign=-1)
    b = clp("1", 7000, [("CO", "45", 3000)])  # the same CLP07, other amounts: a correction
    return claim, a, r, b


def test_reissued_copy_of_a_reversed_adjudication_is_not_released(session, world, factory):
    """A pays 60.00 (CO-45 30.00, PR-2 10.00; file 1); the same A is re-issued under a new trace
    (file 2, held); the payer reverses A (file 3, PLB FB -60.00 so BPR02 = 0); the correction B
    pays 70.00 (CO-45 30.00; file 4). The re-issued copy repeats what the payer reversed (same
    CLP07, CLP03, CLP04, CLP05): it stays held for a person (not released by the reversal, which
    would bill the patient 10.00 again and hold B as a duplicate), and B posts as the correction."""
    claim, a, r, b = _reissue_story(session, world, "PCN-RIR1")
    assert receive_and_post(factory, build_835([a], trace="RIR-1", control=1)).status == "posted"
    assert receive_and_post(factory, build_835([a], trace="RIR-2", control=2)).status == "posted"
    copy = remittance(session, "RIR-2")
    assert copy.state == RemittanceState.HELD  # its only claim repeats the current one
    (dup_item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert dup_item.remittance_id == copy.id and len(dup_item.comments) == 1

    report = receive_and_post(factory, build_835([r], trace="RIR-3", control=3, plb=[("FB", -6000)]))
    assert report.status == "posted", report.error
    # A mirrored: back to the 100.00 charge open on ACME, nothing on the patient.
    assert ledger(session, claim) == {GROSS: -10000, AR_INS: 10000}
    assert history(session, claim) == [
        ("original", "reversed", None),
        ("original", "held", "possible_duplicate"),
        ("reversal", "applied", None),
    ]
    assert refreshed(session, claim).state == ClaimState.ACKNOWLEDGED  # awaiting the correction
    assert remittance(session, "RIR-2").state == RemittanceState.HELD
    assert balance(session, [CASH], remittance_id=copy.id) == 6000  # = its BPR02, in unapplied
    assert balance(session, [UNAPPLIED], remittance_id=copy.id) == -6000
    assert balance(session, [CASH], remittance_id=remittance(session, "RIR-3").id) == 0  # = BPR02
    # The copy's item says why it is still held and what a person most likely does.
    (dup_item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert dup_item.status == WorkItemStatus.OPEN
    note = dup_item.comments[-1].body
    assert "repeats an adjudication the payer has reversed" in note and "RIR-1" in note
    assert "Rejecting it is the likely decision" in note and "PCN" not in note
    (reversal_item,) = items(session, WorkQueue.OTHER, claim)
    assert reversal_item.reason_codes == ["REVERSED"] and reversal_item.status == WorkItemStatus.OPEN

    report = receive_and_post(factory, build_835([b], trace="RIR-4", control=4))
    assert report.status == "posted", report.error
    (outcome,) = report.remittances[0].claims
    assert (outcome.outcome, outcome.adjudication) == ("posted", "correction")
    assert ledger(session, claim) == {GROSS: -10000, CASH: 7000, CONTRACTUAL: 3000}
    assert refreshed(session, claim).state == ClaimState.PAID
    assert history(session, claim)[1:] == [
        ("original", "held", "possible_duplicate"),
        ("reversal", "applied", None),
        ("correction", "current", None),
    ]
    (reversal_item,) = items(session, WorkQueue.OTHER, claim)
    assert reversal_item.status == WorkItemStatus.RESOLVED
    (dup_item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert dup_item.status == WorkItemStatus.OPEN and len(dup_item.comments) == 2  # noted once

    # The supervisor rejects the copy: its money leaves cash clearing and unapplied payments.
    with unit_of_work(factory) as s:
        decided = decide_held_remittance(s, copy.id, "reject", actor="sup.jones")
    assert [c["state"] for c in decided["claims"]] == ["rejected"]
    assert ledger(session, claim) == {GROSS: -10000, CASH: 7000, CONTRACTUAL: 3000}
    cash = {
        t: balance(session, [CASH], remittance_id=remittance(session, t).id)
        for t in ("RIR-1", "RIR-2", "RIR-3", "RIR-4")
    }
    assert cash == {"RIR-1": 6000, "RIR-2": 0, "RIR-3": 0, "RIR-4": 7000}
    assert balance(session, [UNAPPLIED], remittance_id=copy.id) == 0
    assert remittance(session, "RIR-2").state == RemittanceState.POSTED
    assert refreshed(session, claim).state == ClaimState.PAID
    (dup_item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert dup_item.status == WorkItemStatus.RESOLVED
    no_negative_payer_ar(session)


def test_reversal_and_correction_in_one_file_after_a_reissued_copy(session, world, factory):
    """As above, with the reversal and the correction B in one file (BPR02 = -60.00 + 70.00): the
    copy is kept held by the reversal, then B is current; the copy's item names the reversed
    adjudication it repeats (not B)."""
    claim, a, r, b = _reissue_story(session, world, "PCN-RIR2")
    assert receive_and_post(factory, build_835([a], trace="RIR2-1", control=1)).status == "posted"
    assert receive_and_post(factory, build_835([a], trace="RIR2-2", control=2)).status == "posted"
    report = receive_and_post(factory, build_835([r, b], trace="RIR2-3", control=3))
    assert report.status == "posted", report.error
    assert [(c.outcome, c.adjudication) for c in report.remittances[0].claims] == [
        ("reversed", "reversal"),
        ("posted", "correction"),
    ]
    assert ledger(session, claim) == {GROSS: -10000, CASH: 7000, CONTRACTUAL: 3000}
    assert refreshed(session, claim).state == ClaimState.PAID
    assert [h[1:] for h in history(session, claim)] == [
        ("reversed", None),
        ("held", "possible_duplicate"),
        ("applied", None),
        ("current", None),
    ]
    assert remittance(session, "RIR2-2").state == RemittanceState.HELD
    (dup_item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    note = dup_item.comments[-1].body
    assert "repeats an adjudication the payer has reversed (trace RIR2-1, claim 1" in note
    no_negative_payer_ar(session)


def test_a_hold_whose_reason_goes_back_and_forth_keeps_one_item_per_reason(session, world, factory):
    """ACME (secondary) sends a second original X that does not fit what is open on it (would
    overdraw) and repeats its current adjudication when one is current (possible duplicate). In
    one file A posts (X: possible duplicate), R reverses A (X: would overdraw), B posts (X:
    possible duplicate again): one item per reason, the current reason's open. Later files move
    X back and forth again: the item of its reason is reopened, never a second one."""
    claim = make_claim(session, world, "PCN-FLIP1", [("99213", 10000)], coverage=world.with_secondary)
    (l1,) = lcns(claim)

    def acme(status: str, clp07: str, paid: int, pr: int, sign: int = 1) -> Clp:
        cas = [("OA", "23", sign * 10000 - paid - pr), ("PR", "2", pr)]
        return Clp(
            "PCN-FLIP1",
            status,
            sign * 10000,
            paid,
            pr,
            lines=[Svc("99213", sign * 10000, paid, cas, lcn=l1)],
            payer_claim_number=clp07,
        )

    def send(trace: str, clps: list[Clp], payer: str = "DEMOACME") -> None:
        total = sum(c.paid for c in clps)
        plb = [("FB", total)] if total < 0 else None
        content = build_835(clps, trace=trace, payer=payer, plb=plb, control=len(trace))
        assert receive_and_post(factory, content).status == "posted"

    def x_state() -> tuple[str, str | None, dict[str, str]]:
        session.expire_all()
        x = session.scalar(
            select(ClaimPayment).where(
                ClaimPayment.payer_claim_control_number == "ACME-X", ClaimPayment.ledger_claim_id == claim.id
            )
        )
        found = {
            i.dedupe_key.split(":", 1)[0]: i.status.value
            for i in session.scalars(select(WorkItem).where(WorkItem.claim_payment_id == x.id))
        }
        return x.adjudication_state.value, x.hold_reason.value if x.hold_reason else None, found

    # X: 13.00 paid + PR-2 3.00 = 16.00 on ACME, where Medicare will leave 14.00 open.
    send("FLIP-X", [acme("2", "ACME-X", 1300, 300)])
    assert x_state() == ("held", "would_overdraw", {"would_overdraw": "open"})
    primary = Clp(
        "PCN-FLIP1",
        "19",
        10000,
        5600,
        1400,
        lines=[Svc("99213", 10000, 5600, [("CO", "45", 3000), ("PR", "2", 1400)], lcn=l1)],
        payer_claim_number="MCR-FLIP1",
        crossover="ACME HEALTH",
    )
    send("FLIP-MCR", [primary], payer="DEMOMCRB")
    assert x_state() == ("held", "would_overdraw", {"would_overdraw": "open"})  # 16.00 > 14.00
    a = acme("2", "ACME-A", 1000, 400)  # 10.00 + PR-2 4.00 = the 14.00 open
    r = acme("22", "ACME-A", -1000, -400, sign=-1)
    b = acme("2", "ACME-B", 900, 500)
    send("FLIP-1", [a, r, b])  # BPR02 = 10.00 - 10.00 + 9.00
    assert x_state() == (
        "held",
        "possible_duplicate",
        {"would_overdraw": "resolved", "possible_duplicate": "open"},
    )
    assert ledger(session, claim)[AR_PT] == 500  # B's PR: the patient owes 5.00
    # The payer reverses B (nothing current: X would overdraw again), then sends C.
    send("FLIP-2", [acme("22", "ACME-B", -900, -500, sign=-1)])
    assert x_state() == (
        "held",
        "would_overdraw",
        {"would_overdraw": "open", "possible_duplicate": "resolved"},
    )
    send("FLIP-3", [acme("2", "ACME-C", 800, 600)])
    assert x_state() == (
        "held",
        "possible_duplicate",
        {"would_overdraw": "resolved", "possible_duplicate": "open"},
    )
    (item,) = items(session, WorkQueue.POSSIBLE_DUPLICATE)
    assert item.comments[-1].body.startswith("Held for this reason again.") and item.resolution is None
    assert ledger(session, claim)[AR_PT] == 600
    no_negative_payer_ar(session)


# -- follow-up closes itself --------------------------------------------------------------------


def test_denied_item_closes_when_a_later_835_pays(session, world, factory):
    claim = make_claim(session, world, "PCN-DEN1", [("99215", 25000)])
    (l1,) = lcns(claim)
    denial = build_835(
        [
            Clp(
                "PCN-DEN1",
                "4",
                25000,
                0,
                0,
                lines=[Svc("99215", 25000, 0, [("CO", "16", 25000)], lcn=l1, remarks=["N290"])],
                payer_claim_number="ICN-DEN1",
            )
        ],
        trace="DEN-1",
    )
    assert receive_and_post(factory, denial).status == "posted"
    assert refreshed(session, claim).state == ClaimState.DENIED
    (item,) = items(session, WorkQueue.DENIED, claim)
    assert item.status == WorkItemStatus.OPEN
    # After the appeal: 250.00 = 180.00 paid + CO-45 50.00 + PR-2 20.00 (no reversal of a
    # denial that moved no money: the denial is superseded, this posts as a correction).
    paid = build_835(
        [
            Clp(
                "PCN-DEN1",
                "1",
                25000,
                18000,
                2000,
                lines=[Svc("99215", 25000, 18000, [("CO", "45", 5000), ("PR", "2", 2000)], lcn=l1)],
                payer_claim_number="ICN-DEN1",
            )
        ],
        trace="DEN-2",
    )
    assert receive_and_post(factory, paid).status == "posted"
    assert ledger(session, claim) == {GROSS: -25000, CASH: 18000, CONTRACTUAL: 5000, AR_PT: 2000}
    assert refreshed(session, claim).state == ClaimState.PAID
    assert history(session, claim) == [("original", "superseded", None), ("correction", "current", None)]
    (item,) = items(session, WorkQueue.DENIED, claim)
    assert item.status == WorkItemStatus.RESOLVED and item.resolved_at is not None
    assert item.resolution.startswith("system: a later adjudication of the denied claim posted money")
    no_negative_payer_ar(session)


# -- the file as a whole -----------------------------------------------------------------------


def test_negative_bpr02_is_refused(session, world, factory):
    claim, l1 = _originally_paid(session, world, factory, "PCN-NEG1")
    before = session.scalar(select(func.count()).select_from(JournalEntry))
    report = receive_and_post(factory, build_835([_clp("PCN-NEG1", "22", l1, REVERSAL)], trace="NEG-2"))
    assert report.status == "failed"
    assert report.error["rule"] == "negative_payment"
    assert report.error["errors"][0]["field"] == "BPR02"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == before
    assert remittance(session, "NEG-2") is None
    assert refreshed(session, claim).state == ClaimState.PAID
