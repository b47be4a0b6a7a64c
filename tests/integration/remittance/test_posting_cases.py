"""Each CLP02 status, CAS group, reversal, PLB and crossover posts the right cents.

Expected amounts are computed by hand in each test from the 835 it builds. Conventions:
debit positive, credit negative; ``ledger(claim)`` is Σ postings by account for the claim
dimension; the charge entry (Dr A/R insurance / Cr gross charges) is posted with the
claim's first remittance.
"""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.ledger import account_totals, balance, balances_by
from claims_server.models import (
    AccountCode,
    AuditEvent,
    Claim,
    ClaimPayment,
    ClaimState,
    EdiFile,
    EdiFileStatus,
    JournalEntry,
    JournalEventType,
    LinePayment,
    Remittance,
    WorkItem,
)
from claims_server.models.workqueue import WorkQueue
from claims_server.remittance.services import receive_and_post
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

AR_INS, AR_PT = AccountCode.AR_INSURANCE.value, AccountCode.AR_PATIENT.value
CASH, GROSS = AccountCode.CASH_CLEARING.value, AccountCode.GROSS_CHARGES.value
CONTRACTUAL, OTHER = AccountCode.CONTRACTUAL_ADJUSTMENTS.value, AccountCode.OTHER_ADJUSTMENTS.value
PROVIDER = AccountCode.PROVIDER_ADJUSTMENTS.value
INTEREST, OFFSET = AccountCode.INTEREST_INCOME.value, AccountCode.PAYER_OFFSET.value
UNAPPLIED = "unapplied_payments"


def lcns(claim: Claim) -> list[str]:
    return [line.line_control_number for line in claim.service_lines]


def ledger(session, claim: Claim) -> dict[str, int]:
    session.expire_all()
    return account_totals(session, claim_id=claim.id)


def refreshed(session, claim: Claim) -> Claim:
    session.expire_all()
    return session.get(Claim, claim.id)


def items(session, claim: Claim | None = None, queue: WorkQueue | None = None) -> list[WorkItem]:
    stmt = select(WorkItem).order_by(WorkItem.id)
    if claim is not None:
        stmt = stmt.where(WorkItem.claim_id == claim.id)
    if queue is not None:
        stmt = stmt.where(WorkItem.queue == queue)
    return list(session.scalars(stmt))


def test_primary_paid_with_contractual_coinsurance_and_plb(session, world, factory):
    claim = make_claim(session, world, "PCN-A1", [("99213", 10000), ("85025", 5000)])
    l1, l2 = lcns(claim)
    # Line 1: 100.00 - CO-45 30.00 - PR-2 10.00 = 60.00; line 2: 50.00 - CO-45 20.00 = 30.00.
    # PLB: interest L6 -1.50 (adds), WO 4.00 (keeps): BPR02 = 90.00 - (-1.50 + 4.00) = 87.50.
    content = build_835(
        [
            Clp(
                "PCN-A1",
                "1",
                15000,
                9000,
                1000,
                lines=[
                    Svc("99213", 10000, 6000, [("CO", "45", 3000), ("PR", "2", 1000)], lcn=l1),
                    Svc("85025", 5000, 3000, [("CO", "45", 2000)], lcn=l2),
                ],
            )
        ],
        plb=[("L6", -150), ("WO", 400)],
    )
    report = receive_and_post(factory, content)
    assert report.status == "posted", report.error
    assert ledger(session, claim) == {
        GROSS: -15000,
        CASH: 9000,
        CONTRACTUAL: 5000,
        AR_PT: 1000,  # no other coverage: the coinsurance is the patient's
    }
    assert balance(session, [AR_INS], claim_id=claim.id) == 0
    rem = session.scalar(select(Remittance))
    assert balance(session, [CASH], remittance_id=rem.id) == 8750  # = BPR02
    # L6 interest is interest income (a credit), WO a recoupment against the payer (its offset).
    assert balance(session, [INTEREST], remittance_id=rem.id) == -150
    assert balance(session, [OFFSET], remittance_id=rem.id) == 400
    # Lines: each line's A/R insurance is closed (charge fully explained).
    for line in claim.service_lines:
        assert balance(session, [AR_INS], service_line_id=line.id) == 0
    assert refreshed(session, claim).state == ClaimState.PAID
    assert items(session, claim) == []  # only the PLBs' reconciliation items
    assert {i.queue for i in items(session)} == {WorkQueue.RECONCILIATION}
    result = report.remittances[0]
    assert all(c.ok for c in result.checks) and len(result.checks) == 5
    assert (result.claims_parsed, result.claims_posted, result.claims_held, result.claims_queued) == (
        1,
        1,
        0,
        0,
    )
    # Stored as the payer said it: 1 claim payment, 2 lines, 3 CAS.
    cp = session.scalar(select(ClaimPayment))
    assert cp.claim_id == claim.id and cp.paid_cents == 9000
    assert [lp.service_line_id for lp in cp.line_payments] == [ln.id for ln in claim.service_lines]
    assert sorted(a.amount_cents for lp in cp.line_payments for a in lp.adjustments) == [1000, 2000, 3000]
    # Every money entry is audited: the claim's charge and payment in one event (listing both
    # entries, with the patient), and one event per PLB entry.
    audits = session.scalars(
        select(AuditEvent).where(AuditEvent.event_type.like("ledger.%")).order_by(AuditEvent.id)
    ).all()
    assert [a.event_type for a in audits] == [
        "ledger.entries",
        "ledger.provider_adjustment",
        "ledger.provider_adjustment",
    ]
    assert audits[0].patient_id == claim.patient_id
    assert [e["event_type"] for e in audits[0].details["entries"]] == ["charge", "insurance_payment"]
    assert sum(e["debit_cents"] for e in audits[0].details["entries"]) == 15000 + 15000
    edi = session.scalar(select(EdiFile))
    assert edi.status == EdiFileStatus.PROCESSED


def test_patient_responsibility_moves_to_the_secondary_payer(session, world, factory):
    """PR 1/2/3 with a secondary coverage: Dr A/R insurance (secondary) / Cr A/R insurance (primary)."""
    claim = make_claim(
        session,
        world,
        "PCN-B1",
        [("99214", 20000), ("80053", 8000), ("36415", 2000)],
        coverage=world.with_secondary,
    )
    l1, l2, l3 = lcns(claim)
    medicare, acme = world.payers["DEMOMCRB"], world.payers["DEMOACME"]
    # 200.00 = 90.00 paid + CO-45 50.00 + PR-1 deductible 40.00 + PR-2 20.00
    #  80.00 = 48.00 paid + CO-45 20.00 + PR-2 12.00
    #  20.00 =  0.00 paid + CO-45  5.00 + PR-3 copay 15.00
    content = build_835(
        [
            Clp(
                "PCN-B1",
                "1",
                30000,
                13800,
                8700,
                lines=[
                    Svc(
                        "99214",
                        20000,
                        9000,
                        [("CO", "45", 5000), ("PR", "1", 4000), ("PR", "2", 2000)],
                        lcn=l1,
                    ),
                    Svc("80053", 8000, 4800, [("CO", "45", 2000), ("PR", "2", 1200)], lcn=l2),
                    Svc("36415", 2000, 0, [("CO", "45", 500), ("PR", "3", 1500)], lcn=l3),
                ],
            )
        ],
        payer="DEMOMCRB",
        trace="MCR-1",
    )
    assert receive_and_post(factory, content).status == "posted"
    assert ledger(session, claim) == {GROSS: -30000, CASH: 13800, CONTRACTUAL: 7500, AR_INS: 8700}
    by_payer = balances_by(session, "payer_id", [AR_INS], claim_id=claim.id)
    assert by_payer == {acme: 8700}  # Medicare's A/R is closed; 40 + 20 + 12 + 15 now owed by ACME
    assert medicare not in by_payer
    assert balance(session, [AR_PT], claim_id=claim.id) == 0
    # The zero-paid line is not a denial (pricing + patient share only): no work item.
    assert items(session) == []
    assert refreshed(session, claim).state == ClaimState.PAID


def test_secondary_payment_on_the_primary_claim_number(session, world, factory):
    """CLP02 = 2 from the secondary payer (crossover answer on the primary's CLP01) closes its A/R."""
    claim = make_claim(session, world, "PCN-C1", [("99213", 10000)], coverage=world.with_secondary)
    (l1,) = lcns(claim)
    acme = world.payers["DEMOACME"]
    # Medicare: 100.00 = 56.00 paid + CO-45 30.00 + PR-2 14.00 (to ACME's A/R).
    first = build_835(
        [
            Clp(
                "PCN-C1",
                "19",
                10000,
                5600,
                1400,
                lines=[Svc("99213", 10000, 5600, [("CO", "45", 3000), ("PR", "2", 1400)], lcn=l1)],
                crossover="ACME HEALTH",
            )
        ],
        payer="DEMOMCRB",
        trace="MCR-2",
    )
    assert receive_and_post(factory, first).status == "posted"
    cp = session.scalar(select(ClaimPayment))
    assert cp.crossover_payer_name == "ACME HEALTH"  # forwarded: the secondary is not billed again
    assert balances_by(session, "payer_id", [AR_INS], claim_id=claim.id) == {acme: 1400}
    # ACME as secondary: 100.00 = 10.00 paid + OA-23 86.00 (the prior payer's 56.00 paid + 30.00
    # CO-45, restated, already posted) + PR-2 4.00. OA-23 is not posted again; what ACME moves
    # is its 14.00: 10.00 cash and 4.00 to the patient (no third coverage).
    second = build_835(
        [
            Clp(
                "PCN-C1",
                "2",
                10000,
                1000,
                400,
                lines=[Svc("99213", 10000, 1000, [("OA", "23", 8600), ("PR", "2", 400)], lcn=l1)],
            )
        ],
        payer="DEMOACME",
        trace="ACME-2",
    )
    assert receive_and_post(factory, second).status == "posted"
    assert ledger(session, claim) == {GROSS: -10000, CASH: 6600, CONTRACTUAL: 3000, AR_PT: 400}
    assert balances_by(session, "payer_id", [AR_INS], claim_id=claim.id) == {}


def test_tertiary_status_and_other_and_payer_initiated_groups(session, world, factory):
    claim = make_claim(session, world, "PCN-D1", [("93000", 12000)])
    (l1,) = lcns(claim)
    # 120.00 = 70.00 paid + OA-94 10.00 + PI-45 25.00 + CO-253 2.00 + PR-3 13.00
    content = build_835(
        [
            Clp(
                "PCN-D1",
                "3",
                12000,
                7000,
                1300,
                lines=[
                    Svc(
                        "93000",
                        12000,
                        7000,
                        [("OA", "94", 1000), ("PI", "45", 2500), ("CO", "253", 200), ("PR", "3", 1300)],
                        lcn=l1,
                    )
                ],
            )
        ],
        trace="T-D1",
    )
    assert receive_and_post(factory, content).status == "posted"
    assert ledger(session, claim) == {GROSS: -12000, CASH: 7000, OTHER: 3500, CONTRACTUAL: 200, AR_PT: 1300}
    assert refreshed(session, claim).state == ClaimState.PAID


def test_denied_claim_is_never_written_off(session, world, factory):
    claim = make_claim(session, world, "PCN-E1", [("99215", 25000)])
    (l1,) = lcns(claim)
    content = build_835(
        [
            Clp(
                "PCN-E1",
                "4",
                25000,
                0,
                0,
                lines=[Svc("99215", 25000, 0, [("CO", "16", 25000)], lcn=l1, remarks=["N290"])],
                moa_remarks=["MA130"],
            )
        ],
        trace="T-E1",
    )
    report = receive_and_post(factory, content)
    assert report.status == "posted"
    # Only the charge: the denial's CO-16 25.00 stays in A/R insurance for a person to work.
    assert ledger(session, claim) == {GROSS: -25000, AR_INS: 25000}
    assert refreshed(session, claim).state == ClaimState.DENIED
    (item,) = items(session, claim)
    assert item.queue == WorkQueue.DENIED
    assert "CO-16" in item.reason_codes and "N290" in item.reason_codes and "MA130" in item.reason_codes
    assert item.recommended_action == "correct_and_resubmit"  # MA130: a new claim, never an appeal
    assert item.comments and "250.00" in item.comments[0].body
    outcome = report.remittances[0].claims[0]
    assert outcome.outcome == "queued" and outcome.held_cents == 25000
    assert (
        session.scalar(
            select(func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.event_type == JournalEventType.INSURANCE_PAYMENT)
        )
        == 0
    )


def test_line_denied_inside_a_paid_claim(session, world, factory):
    claim = make_claim(session, world, "PCN-F1", [("99213", 10000), ("97110", 6000)])
    l1, l2 = lcns(claim)
    # Line 1 paid 70.00 + CO-45 30.00; line 2 paid 0: CO-97 (bundled) 60.00 is a denial, held.
    content = build_835(
        [
            Clp(
                "PCN-F1",
                "1",
                16000,
                7000,
                0,
                lines=[
                    Svc("99213", 10000, 7000, [("CO", "45", 3000)], lcn=l1),
                    Svc("97110", 6000, 0, [("CO", "97", 6000)], lcn=l2, remarks=["M15"]),
                ],
            )
        ],
        trace="T-F1",
    )
    report = receive_and_post(factory, content)
    assert ledger(session, claim) == {GROSS: -16000, CASH: 7000, CONTRACTUAL: 3000, AR_INS: 6000}
    line2 = claim.service_lines[1]
    assert balance(session, [AR_INS], service_line_id=line2.id) == 6000
    assert refreshed(session, claim).state == ClaimState.PARTIALLY_PAID
    (item,) = items(session, claim)
    assert item.queue == WorkQueue.DENIED and "CO-97" in item.reason_codes
    assert report.remittances[0].claims[0].held_cents == 6000


def test_crossover_status_20_and_pr_to_next_payer(session, world, factory):
    claim = make_claim(session, world, "PCN-G1", [("99213", 9000)], coverage=world.with_secondary)
    (l1,) = lcns(claim)
    acme = world.payers["DEMOACME"]
    # 90.00 = 50.00 + CO-45 28.00 + PR-1 12.00
    content = build_835(
        [
            Clp(
                "PCN-G1",
                "20",
                9000,
                5000,
                1200,
                lines=[Svc("99213", 9000, 5000, [("CO", "45", 2800), ("PR", "1", 1200)], lcn=l1)],
                crossover="ACME HEALTH",
            )
        ],
        payer="DEMOMCRB",
        trace="T-G1",
    )
    report = receive_and_post(factory, content)
    assert report.status == "posted"
    assert ledger(session, claim) == {GROSS: -9000, CASH: 5000, CONTRACTUAL: 2800, AR_INS: 1200}
    assert balances_by(session, "payer_id", [AR_INS], claim_id=claim.id) == {acme: 1200}
    cp = session.scalar(select(ClaimPayment))
    assert cp.status_code == "20" and cp.crossover_payer_name == "ACME HEALTH"
    assert refreshed(session, claim).state == ClaimState.PAID


def test_reversal_and_correction(session, world, factory):
    claim = make_claim(session, world, "PCN-H1", [("99214", 15000)])
    (l1,) = lcns(claim)
    # First payment: 150.00 = 100.00 + CO-45 40.00 + PR-2 10.00
    first = build_835(
        [
            Clp(
                "PCN-H1",
                "1",
                15000,
                10000,
                1000,
                lines=[Svc("99214", 15000, 10000, [("CO", "45", 4000), ("PR", "2", 1000)], lcn=l1)],
            )
        ],
        trace="T-H1",
    )
    assert receive_and_post(factory, first).status == "posted"
    original = session.scalar(
        select(JournalEntry).where(JournalEntry.event_type == JournalEventType.INSURANCE_PAYMENT)
    )
    # Reversal (every amount negated) then the corrected claim: 150.00 = 90.00 + CO-45 40.00 + PR-2 20.00.
    # The claims net -100.00 + 90.00 = -10.00: BPR02 is never negative, the payer carries the
    # 10.00 it takes back as a forward balance (PLB FB -10.00), BPR02 = -10.00 - (-10.00) = 0.
    second = build_835(
        [
            Clp(
                "PCN-H1",
                "22",
                -15000,
                -10000,
                -1000,
                lines=[Svc("99214", -15000, -10000, [("CO", "45", -4000), ("PR", "2", -1000)], lcn=l1)],
            ),
            Clp(
                "PCN-H1",
                "1",
                15000,
                9000,
                2000,
                lines=[Svc("99214", 15000, 9000, [("CO", "45", 4000), ("PR", "2", 2000)], lcn=l1)],
            ),
        ],
        trace="T-H2",
        plb=[("FB", -1000)],
    )
    report = receive_and_post(factory, second)
    assert report.status == "posted", report.error
    outcomes = [c.outcome for c in report.remittances[0].claims]
    assert outcomes == ["reversed", "posted"]
    reversal = session.scalar(
        select(JournalEntry).where(JournalEntry.event_type == JournalEventType.REVERSAL)
    )
    assert reversal.reverses_entry_id == original.id
    assert sorted(p.amount_cents for p in reversal.postings) == sorted(
        -p.amount_cents for p in original.postings
    )
    # Net: the corrected payment only.
    assert ledger(session, claim) == {GROSS: -15000, CASH: 9000, CONTRACTUAL: 4000, AR_PT: 2000}
    rem2 = session.scalar(select(Remittance).where(Remittance.trace_number == "T-H2"))
    assert balance(session, [CASH], remittance_id=rem2.id) == 0  # BPR02
    assert refreshed(session, claim).state == ClaimState.PAID
    history = session.scalars(select(ClaimPayment).order_by(ClaimPayment.id)).all()
    assert [(p.adjudication_kind.value, p.adjudication_state.value) for p in history] == [
        ("original", "reversed"),
        ("reversal", "applied"),
        ("correction", "current"),
    ]
    assert history[1].reverses_claim_payment_id == history[0].id
    # Reversed, then corrected in the same file: the reversal's item closed itself.
    (item,) = items(session, claim)
    assert item.status.value == "resolved" and item.resolution.startswith("system: ")


def test_reversal_without_a_posted_payment_is_held_in_unapplied(session, world, factory):
    """A reversal naming nothing we posted is held ``reversal_unmatched`` (was: posted as sent,
    which drove A/R insurance to +300.00 and the patient's A/R below zero)."""
    claim = make_claim(session, world, "PCN-H9", [("99214", 15000)])
    (l1,) = lcns(claim)
    content = build_835(
        [
            Clp(
                "PCN-H9",
                "22",
                -15000,
                -10000,
                -1000,
                lines=[Svc("99214", -15000, -10000, [("CO", "45", -4000), ("PR", "2", -1000)], lcn=l1)],
            )
        ],
        trace="T-H9",
        plb=[("FB", -10000)],  # BPR02 = -100.00 - (-100.00) = 0
    )
    report = receive_and_post(factory, content)
    assert report.status == "posted"
    # Only the charge on the claim; the -100.00 waits in unapplied payments.
    assert ledger(session, claim) == {GROSS: -15000, AR_INS: 15000}
    rem = session.scalar(select(Remittance))
    assert balance(session, [UNAPPLIED], remittance_id=rem.id) == 10000
    assert balance(session, [CASH], remittance_id=rem.id) == 0
    cp = session.scalar(select(ClaimPayment))
    assert (cp.adjudication_kind.value, cp.adjudication_state.value, cp.hold_reason.value) == (
        "reversal",
        "held",
        "reversal_unmatched",
    )
    (item,) = items(session, claim)
    assert item.queue == WorkQueue.OTHER and item.reason_codes == ["REVERSAL_UNMATCHED"]
    assert item.claim_payment_id == cp.id
    result = report.remittances[0]
    assert (result.claims_parsed, result.claims_posted, result.claims_held, result.claims_queued) == (
        1,
        0,
        1,
        0,
    )


def test_plb_several_pairs_both_signs(session, world, factory):
    claim = make_claim(session, world, "PCN-I1", [("99213", 10000)])
    (l1,) = lcns(claim)
    # Paid 80.00; PLB: WO 12.34 (recovery), L6 -3.21 (interest), FB 5.00 (forwarding balance),
    # 72 -0.55 (authorized return, negative): ΣPLB = 13.58, BPR02 = 80.00 - 13.58 = 66.42.
    content = build_835(
        [Clp("PCN-I1", "1", 10000, 8000, 0, lines=[Svc("99213", 10000, 8000, [("CO", "45", 2000)], lcn=l1)])],
        plb=[("WO", 1234), ("L6", -321), ("FB", 500), ("72", -55)],
        trace="T-I1",
    )
    report = receive_and_post(factory, content)
    assert report.status == "posted"
    rem = session.scalar(select(Remittance))
    assert rem.payment_amount_cents == 6642
    assert balance(session, [CASH], remittance_id=rem.id) == 6642
    # WO, FB and 72 offset against the payer (12.34 + 5.00 - 0.55), L6 is interest income.
    assert balance(session, [OFFSET], remittance_id=rem.id) == 1679
    assert balance(session, [INTEREST], remittance_id=rem.id) == -321
    assert sorted(a.amount_cents for a in rem.provider_adjustments) == [-321, -55, 500, 1234]
    plb_entries = session.scalars(
        select(JournalEntry).where(JournalEntry.event_type == JournalEventType.PROVIDER_ADJUSTMENT)
    ).all()
    assert len(plb_entries) == 4 and all(e.is_balanced() for e in plb_entries)


def test_unmatched_claim_and_lines_go_to_the_queue(session, world, factory):
    claim = make_claim(session, world, "PCN-J1", [("99213", 10000), ("85025", 5000)], modifiers={1: ["QW"]})
    l1, _ = lcns(claim)
    # Line 2 has no REF*6R: matched on procedure + modifier + date. A third SVC matches nothing.
    content = build_835(
        [
            Clp(
                "PCN-J1",
                "1",
                17000,
                12000,
                0,
                lines=[
                    Svc("99213", 10000, 7000, [("CO", "45", 3000)], lcn=l1),
                    Svc("85025", 5000, 4000, [("CO", "45", 1000)], modifiers=("QW",)),
                    Svc("81002", 2000, 1000, [("CO", "45", 1000)]),
                ],
            ),
            Clp("NOSUCHCLAIM", "1", 5000, 4500, 0, lines=[Svc("99212", 5000, 4500, [("CO", "45", 500)])]),
        ],
        trace="T-J1",
    )
    report = receive_and_post(factory, content)
    assert report.status == "posted", report.error
    lps = session.scalars(select(LinePayment).order_by(LinePayment.id)).all()
    assert [lp.service_line_id for lp in lps[:3]] == [
        claim.service_lines[0].id,
        claim.service_lines[1].id,
        None,
    ]
    # The unmatched line's 10.00 payment reduces the claim's A/R at claim level. Open on ACME:
    # 150.00; paid 120.00, so room = 30.00: the CO-45s (30.00 + 10.00 + 10.00, in file order)
    # post 30.00 and the 20.00 beyond it is a restatement, stored not posted (it used to drive
    # the payer's A/R to -20.00).
    assert ledger(session, claim) == {GROSS: -15000, CASH: 12000, CONTRACTUAL: 3000}
    assert report.remittances[0].claims[0].restated_cents == 2000
    rem = session.scalar(select(Remittance))
    assert balance(session, ["unapplied_payments"], remittance_id=rem.id) == -4500
    assert balance(session, [CASH], remittance_id=rem.id) == 16500
    unmatched = items(session, queue=WorkQueue.UNMATCHED)
    assert sorted(i.reason_codes[0] for i in unmatched) == ["CLAIM_NOT_FOUND", "LINE_NOT_FOUND"]
    result = report.remittances[0]
    assert (result.claims_parsed, result.claims_posted, result.claims_queued) == (2, 1, 1)


def test_payer_that_does_not_cover_the_patient_is_unmatched(session, world, factory):
    claim = make_claim(session, world, "PCN-K1", [("99213", 10000)])  # ACME only
    content = build_835(
        [Clp("PCN-K1", "1", 10000, 8000, 0, lines=[Svc("99213", 10000, 8000, [("CO", "45", 2000)])])],
        payer="DEMOSUMMIT",
        trace="T-K1",
    )
    report = receive_and_post(factory, content)
    assert report.status == "posted"
    # The claim's charge is its receivable; nothing of SUMMIT's payment was applied to it.
    assert ledger(session, claim) == {GROSS: -10000, AR_INS: 10000}
    (item,) = items(session, queue=WorkQueue.UNMATCHED)
    assert item.reason_codes == ["PAYER_MISMATCH"]


def test_claim_submitted_without_acknowledgment_is_accepted_then_paid(session, world, factory):
    claim = make_claim(session, world, "PCN-L1", [("99213", 10000)], claim_state=ClaimState.SUBMITTED)
    content = build_835(
        [Clp("PCN-L1", "1", 10000, 8000, 0, lines=[Svc("99213", 10000, 8000, [("CO", "45", 2000)])])],
        trace="T-L1",
    )
    assert receive_and_post(factory, content).status == "posted"
    assert refreshed(session, claim).state == ClaimState.PAID
    events = session.scalars(
        select(AuditEvent.event_type).where(AuditEvent.entity_id == claim.public_id).order_by(AuditEvent.id)
    ).all()
    assert events[-2:] == ["claim.accepted", "claim.paid"]
