"""A replacement (CLM05-3 = 7) or void (8) restates the charge on the books when it is sent.

The whole path: the original is batched and marked sent (its charge posts), an 835
adjudicates it (posting engine), the correction is created, batched and marked sent
(the charge correction posts, exactly once), and the payer's answer to the correction is
posted. Amounts are integer cents stated here; every expected balance is computed by
hand from them.
"""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.app import state
from claims_server.claims import services as claim_services
from claims_server.claims import state as claim_state
from claims_server.clearinghouse import services as ch
from claims_server.corrections.services import create_replacement_claim, create_void_claim
from claims_server.ledger import account_totals, balance, unbalanced_entries
from claims_server.ledger.services import post_charge_corrections
from claims_server.models import (
    RECEIVABLE_ACCOUNTS,
    Account,
    AccountCode,
    AuditEvent,
    Claim,
    ClaimState,
    JournalEntry,
    JournalEventType,
    Posting,
    SubmissionBatch,
)
from claims_server.remittance.services import receive_and_post
from claims_server.security.checkpoints import verify_audit_chain
from claims_server.submission.services import build_batches
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

AR_INS, GROSS = AccountCode.AR_INSURANCE, AccountCode.GROSS_CHARGES


def _send(session, claim: Claim) -> SubmissionBatch:
    """Batch the ready ``claim`` and mark its batch sent (where charges post), committed."""
    result = build_batches(session)
    assert result.claims_batched == 1, [h.findings for h in result.held]
    batch = session.get(SubmissionBatch, result.batch_ids[0])
    ch.mark_sent(session, batch, evidence="test upload")
    session.commit()
    return batch


def _entries(session) -> int:
    return session.scalar(select(func.count()).select_from(JournalEntry))


def _ar_by_hand(session, claim_id: int) -> int:
    """Σ of the claim's postings on A/R accounts, summed here rather than by ``ledger.balance``."""
    amounts = session.scalars(
        select(Posting.amount_cents)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.claim_id == claim_id, Account.code.in_([str(a) for a in RECEIVABLE_ACCOUNTS]))
    ).all()
    return sum(amounts)


def _books_are_whole(session) -> None:
    assert sum(account_totals(session).values()) == 0  # trial balance
    assert unbalanced_entries(session) == []


def _chain_verifies(app) -> None:
    ring = app.extensions["claims_security"].cipher.ring
    with state(app).engine.connect() as conn:
        report = verify_audit_chain(conn, ring, None)
    assert report.ok, report.problems[:3]


def _correction(session) -> tuple[JournalEntry, list[tuple[str, int | None, int]]]:
    """The latest charge-correction entry and its legs as (account, service line, cents)."""
    entry = session.scalar(
        select(JournalEntry)
        .where(JournalEntry.event_type == JournalEventType.CHARGE_CORRECTION)
        .order_by(JournalEntry.id.desc())
        .limit(1)
    )
    assert entry is not None
    legs = session.execute(
        select(Account.code, Posting.service_line_id, Posting.amount_cents)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.journal_entry_id == entry.id)
    ).all()
    return entry, [tuple(leg) for leg in legs]


def _lcns(claim: Claim) -> list[str]:
    return [line.line_control_number for line in claim.service_lines]


def test_replacement_with_a_higher_total_posts_the_difference_once(app, session, world, factory):
    original = make_claim(
        session, world, "PCN-RPL1", [("99213", 10000), ("85025", 5000)], claim_state=ClaimState.READY
    )
    _send(session, original)
    assert balance(session, [AR_INS], claim_id=original.id) == 15000  # the charge, at sending
    l1, l2 = _lcns(original)
    # Line 1 paid 60.00 with CO-45 40.00; line 2 denied (CO-16, held in A/R for correction).
    first_835 = build_835(
        [
            Clp(
                "PCN-RPL1",
                "1",
                15000,
                6000,
                lines=[
                    Svc("99213", 10000, 6000, [("CO", "45", 4000)], lcn=l1),
                    Svc("85025", 5000, 0, [("CO", "16", 5000)], lcn=l2),
                ],
                payer_claim_number="ICN-RPL1",
            )
        ],
        trace="RPL-1",
    )
    assert receive_and_post(factory, first_835).status == "posted"
    session.expire_all()
    original = session.get(Claim, original.id)
    assert balance(session, [AR_INS], claim_id=original.id) == 5000  # the denied line

    replacement = create_replacement_claim(session, original, reason="line 2 corrected")
    replacement.service_lines[1].charge_cents = 6500
    replacement.total_charge_cents = 16500
    claim_services.make_ready(session, replacement)
    session.commit()
    before = _entries(session)
    batch = _send(session, replacement)

    entry, legs = _correction(session)
    assert entry.idempotency_key.startswith(f"charge_correction:claim:{replacement.public_id}:")
    assert entry.claim_id == original.id  # one encounter's A/R stays on the charged claim
    assert _entries(session) == before + 1
    o1, o2 = (line.id for line in original.service_lines)
    r1, r2 = (line.id for line in replacement.service_lines)
    assert sorted(legs, key=str) == sorted(
        [
            (AR_INS.value, o1, -10000),
            (AR_INS.value, o2, -5000),
            (AR_INS.value, r1, 10000),
            (AR_INS.value, r2, 6500),
            (GROSS.value, None, -1500),  # the difference: 165.00 billed now, 150.00 booked
        ],
        key=str,
    )
    assert balance(session, [AR_INS], claim_id=original.id) == 5000 + 1500
    assert balance(session, [GROSS], claim_id=original.id) == -16500
    assert balance(session, claim_id=original.id) == _ar_by_hand(session, original.id)
    _books_are_whole(session)

    # Sending again (a retry marking the batch sent twice, or the service called twice) posts nothing.
    ch.mark_sent(session, batch, evidence="retry")
    assert post_charge_corrections(session, [replacement]) == 0
    session.commit()
    assert _entries(session) == before + 1

    audit = session.scalar(
        select(AuditEvent).where(
            AuditEvent.event_type == "ledger.charge_correction",
            AuditEvent.entity_id == entry.public_id,
        )
    )
    assert audit is not None
    assert audit.details["entity"] == replacement.public_id
    assert audit.details["original_claim"] == original.public_id
    assert (audit.details["booked_cents"], audit.details["new_total_cents"]) == (15000, 16500)
    assert audit.details["difference_cents"] == 1500 and audit.patient_id == original.patient_id

    # The payer answers the replacement and takes back its payment on the original.
    n1, n2 = _lcns(replacement)
    answer = build_835(
        [
            Clp("PCN-RPL1", "22", -15000, -6000, payer_claim_number="ICN-RPL1"),
            Clp(
                replacement.patient_control_number,
                "1",
                16500,
                10000,
                lines=[
                    Svc("99213", 10000, 6000, [("CO", "45", 4000)], lcn=n1),
                    Svc("85025", 6500, 4000, [("CO", "45", 2500)], lcn=n2),
                ],
                payer_claim_number="ICN-RPL2",
            ),
        ],
        trace="RPL-2",
    )
    report = receive_and_post(factory, answer)
    assert report.status == "posted", report.error
    session.expire_all()
    assert balance(session, claim_id=original.id) == 0 == _ar_by_hand(session, original.id)
    for line_id in (o1, o2, r1, r2):  # every line's receivable is explained, old and new
        assert balance(session, [AR_INS], service_line_id=line_id) == 0
    assert account_totals(session, claim_id=original.id)[GROSS.value] == -16500
    _books_are_whole(session)
    _chain_verifies(app)


def test_replacement_with_the_same_total_moves_the_charge_to_its_lines(session, world, factory):
    original = make_claim(session, world, "PCN-RPL3", [("99213", 10000)], claim_state=ClaimState.READY)
    _send(session, original)
    (lcn,) = _lcns(original)
    content = build_835(
        [Clp("PCN-RPL3", "4", 10000, 0, lines=[Svc("99213", 10000, 0, [("CO", "4", 10000)], lcn=lcn)])],
        trace="RPL-3",
    )
    assert receive_and_post(factory, content).status == "posted"
    session.expire_all()
    original = session.get(Claim, original.id)
    replacement = create_replacement_claim(session, original)
    replacement.service_lines[0].modifier1 = "25"
    claim_services.make_ready(session, replacement)
    session.commit()
    _send(session, replacement)
    _, legs = _correction(session)
    assert sorted(legs, key=str) == sorted(
        [
            (AR_INS.value, original.service_lines[0].id, -10000),
            (AR_INS.value, replacement.service_lines[0].id, 10000),
        ],
        key=str,
    )
    assert balance(session, claim_id=original.id) == 10000  # the total did not change
    assert balance(session, [GROSS], claim_id=original.id) == -10000
    _books_are_whole(session)


def test_void_reverses_the_charge_on_the_books_once(app, session, world, factory):
    original = make_claim(
        session, world, "PCN-VOID1", [("99213", 10000), ("85025", 5000)], claim_state=ClaimState.READY
    )
    _send(session, original)
    l1, l2 = _lcns(original)
    # Paid in full after CO-45 and a 10.00 coinsurance that the patient owes.
    paid = build_835(
        [
            Clp(
                "PCN-VOID1",
                "1",
                15000,
                8000,
                1000,
                lines=[
                    Svc("99213", 10000, 5000, [("CO", "45", 4000), ("PR", "2", 1000)], lcn=l1),
                    Svc("85025", 5000, 3000, [("CO", "45", 2000)], lcn=l2),
                ],
                payer_claim_number="ICN-VOID1",
            )
        ],
        trace="VOID-1",
    )
    assert receive_and_post(factory, paid).status == "posted"
    session.expire_all()
    original = session.get(Claim, original.id)
    assert balance(session, [AR_INS], claim_id=original.id) == 0
    assert balance(session, [AccountCode.AR_PATIENT], claim_id=original.id) == 1000

    void = create_void_claim(session, original, reason="billed in error")
    claim_services.make_ready(session, void)
    session.commit()
    before = _entries(session)
    batch = _send(session, void)
    assert _entries(session) == before + 1
    # The claim is cancelled: its whole charge (150.00) leaves A/R insurance and gross charges.
    assert balance(session, [GROSS], claim_id=original.id) == 0
    assert balance(session, [AR_INS], claim_id=original.id) == -15000
    assert balance(session, claim_id=original.id) == _ar_by_hand(session, original.id)
    _books_are_whole(session)
    ch.mark_sent(session, batch, evidence="retry")
    session.commit()
    assert _entries(session) == before + 1

    # The payer cancels its adjudication (CLP02 = 22): every receivable of the claim is zero.
    # BPR02 is never negative: the 80.00 taken back is carried as a forward balance (PLB FB
    # -80.00), so BPR02 = -80.00 - (-80.00) = 0.
    reversal = build_835(
        [Clp("PCN-VOID1", "22", -15000, -8000, -1000, payer_claim_number="ICN-VOID1")],
        trace="VOID-2",
        plb=[("FB", -8000)],
    )
    report = receive_and_post(factory, reversal)
    assert report.status == "posted", report.error
    session.expire_all()
    assert balance(session, claim_id=original.id) == 0 == _ar_by_hand(session, original.id)
    for line in original.service_lines:
        assert balance(session, service_line_id=line.id) == 0
    assert account_totals(session, claim_id=original.id).get(GROSS.value, 0) == 0
    _books_are_whole(session)
    _chain_verifies(app)


def test_an_original_claim_gets_no_charge_correction(session, world):
    original = make_claim(session, world, "PCN-RPL4", [("99213", 10000)], claim_state=ClaimState.READY)
    _send(session, original)
    assert post_charge_corrections(session, [original]) == 0
    kinds = session.scalars(select(JournalEntry.event_type)).all()
    assert kinds == [JournalEventType.CHARGE]


def test_a_rejected_original_corrected_in_place_and_resent_restates_its_charge(session, world):
    claim = make_claim(
        session, world, "PCN-RPL5", [("99213", 10000), ("85025", 5000)], claim_state=ClaimState.READY
    )
    _send(session, claim)
    assert balance(session, [AR_INS], claim_id=claim.id) == 15000
    # The payer's front end rejects it (277CA); the biller fixes the second line's charge.
    claim_state.mark_rejected(session, claim, reason="A7:21")
    claim_state.reopen_for_correction(session, claim, reason="charge corrected")
    claim.service_lines[1].charge_cents = 7000
    claim.total_charge_cents = 17000
    claim_services.make_ready(session, claim)
    session.commit()
    before = _entries(session)
    batch = _send(session, claim)
    assert _entries(session) == before + 1
    entry, legs = _correction(session)
    assert entry.claim_id == claim.id
    line_id = claim.service_lines[1].id
    # Same lines (corrected in place): only the changed line moves, by the difference.
    assert sorted(legs, key=str) == sorted(
        [(AR_INS.value, line_id, 2000), (GROSS.value, None, -2000)], key=str
    )
    assert balance(session, [AR_INS], claim_id=claim.id) == 17000
    assert balance(session, [GROSS], claim_id=claim.id) == -17000
    _books_are_whole(session)
    ch.mark_sent(session, batch, evidence="retry")
    session.commit()
    assert _entries(session) == before + 1
