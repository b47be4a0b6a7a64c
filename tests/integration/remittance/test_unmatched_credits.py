"""Unmatched payments applied by hand or returned, credit balances refunded, transferred and held
(issue 18, part 3), through the API, with real 835s posted by the engine.

Every amount is computed by hand in the test. The unmatched CLP pays a claim of 150.00
(99213 100.00 + 85025 50.00) under a mistyped claim number: paid 90.00 (60.00 + 30.00), CO-45
30.00 + 20.00, PR-2 10.00. So, once applied: A/R insurance 150.00 - 90.00 - 50.00 - 10.00 = 0,
A/R patient 10.00, unapplied payments of the remittance 0, cash clearing of the remittance
90.00 (its BPR02). Each refusal changes nothing: the trial balance before = after.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from claims_server.ledger.services import UNAPPLIED_PAYMENTS, account_totals, balance
from claims_server.models import AccountCode, Claim, ClaimPayment, ClaimState, Coverage, Patient, WorkItem
from claims_server.models.ledger import Refund, RefundState
from claims_server.models.remittance import AdjudicationState
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.remittance.services import receive_and_post
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

AR_INS, AR_PT = [AccountCode.AR_INSURANCE.value], [AccountCode.AR_PATIENT.value]
CASH, CREDIT = [AccountCode.CASH_CLEARING.value], [AccountCode.PATIENT_CREDIT.value]
OFFSET = [AccountCode.PAYER_OFFSET.value]


def _clp(pcn: str, claim: Claim | None = None) -> Clp:
    lcns = [line.line_control_number for line in claim.service_lines] if claim is not None else [None, None]
    return Clp(
        pcn,
        "1",
        15000,
        9000,
        1000,
        lines=[
            Svc("99213", 10000, 6000, [("CO", "45", 3000), ("PR", "2", 1000)], lcn=lcns[0]),
            Svc("85025", 5000, 3000, [("CO", "45", 2000)], lcn=lcns[1]),
        ],
        payer_claim_number="ICN-7788",
    )


def _named(content: bytes, patient: Patient) -> bytes:
    """The 835 naming ``patient`` in NM1*QC (the builder names a synthetic patient)."""
    return content.replace(
        b"NM1*QC*1*SYNTHETIC*PATIENT", f"NM1*QC*1*{patient.last_name}*{patient.first_name}".encode()
    )


def _post_unmatched(session, world, factory, *, trace="UNM-1", control=1, named=True):
    claim = make_claim(session, world, f"PCN-{trace}", [("99213", 10000), ("85025", 5000)])
    content = build_835([_clp(f"PCN-{trace}-TYPO")], trace=trace, control=control)
    if named:
        content = _named(content, world.single.patient)
    report = receive_and_post(factory, content)
    assert report.status == "posted" and report.summary()["claims_queued"] == 1
    session.rollback()
    item = session.scalar(
        select(WorkItem).where(WorkItem.queue == WorkQueue.UNMATCHED).order_by(WorkItem.id.desc())
    )
    payment = session.get(ClaimPayment, item.claim_payment_id)
    return claim, item, payment


def _unapplied(session, payment) -> int:
    return balance(session, [UNAPPLIED_PAYMENTS], remittance_id=payment.remittance_id)


def test_unmatched_payment_in_full_and_the_tile_shows_money_received(session, world, factory, api_client):
    claim, item, _payment = _post_unmatched(session, world, factory)
    biller = api_client("biller")
    listed = biller.get("/api/v1/unmatched-payments").get_json()
    row = next(r for r in listed["items"] if r["id"] == item.public_id)
    assert row["trace_number"] == "UNM-1" and row["patient_control_number"] == "PCN-UNM-1-TYPO"
    assert row["payer_claim_control_number"] == "ICN-7788" and row["check_date"] == "2026-01-10"
    assert (row["billed"], row["paid"], row["patient_responsibility"]) == ("150.00", "90.00", "10.00")
    patient = world.single.patient
    assert row["patient_name"] == f"{patient.last_name}, {patient.first_name}"
    assert listed["total_paid"] == "90.00"
    detail = biller.get(f"/api/v1/unmatched-payments/{item.public_id}").get_json()
    assert claim.public_id in [s["claim"] for s in detail["suggestions"]]
    counts = {q["queue"]: q for q in biller.get("/api/v1/workqueue/queues").get_json()["queues"]}
    assert counts["unmatched"]["amount"] == "90.00"  # money received, not the 150.00 billed


def test_apply_by_hand_posts_as_if_matched(session, world, factory, api_client):
    claim, item, payment = _post_unmatched(session, world, factory)
    assert _unapplied(session, payment) == -9000
    biller = api_client("biller")
    answer = biller.post(
        f"/api/v1/unmatched-payments/{item.public_id}/apply", json={"claim": claim.patient_control_number}
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["claim"] == claim.public_id and body["claim_state"] == "paid"
    session.expire_all()
    assert balance(session, AR_INS, claim_id=claim.id) == 0
    assert balance(session, AR_PT, claim_id=claim.id) == 1000
    assert _unapplied(session, payment) == 0
    assert balance(session, CASH, remittance_id=payment.remittance_id) == 9000
    payment = session.get(ClaimPayment, payment.id)
    assert payment.adjudication_state is AdjudicationState.CURRENT and payment.claim_id == claim.id
    assert payment.decided_by == biller.principal_info["username"]  # who applied it
    assert session.get(WorkItem, item.id).status is WorkItemStatus.RESOLVED
    assert session.get(Claim, claim.id).state is ClaimState.PAID
    # Applied once: a second apply is refused.
    again = biller.post(f"/api/v1/unmatched-payments/{item.public_id}/apply", json={"claim": claim.public_id})
    assert again.status_code == 409


def _refused(session, biller, item, claim_ref, rule):
    before = account_totals(session)
    answer = biller.post(f"/api/v1/unmatched-payments/{item.public_id}/apply", json={"claim": claim_ref})
    assert answer.status_code == 422, answer.get_json()
    errors = answer.get_json()["errors"]
    assert errors[0]["field"] == "claim" and errors[0]["rule"] == rule, errors
    session.expire_all()
    assert account_totals(session) == before
    payment = session.get(ClaimPayment, item.claim_payment_id)
    assert payment.adjudication_state is AdjudicationState.UNMATCHED and payment.claim_id is None
    return answer.get_json()


def test_apply_refusals_change_nothing(session, world, factory, api_client):
    _claim, item, _payment = _post_unmatched(session, world, factory)
    biller = api_client("biller")
    # Another payer: a patient with no coverage of the remitting payer (ACME).
    acme = world.payers["DEMOACME"]
    patients_with_acme = set(session.scalars(select(Coverage.patient_id).where(Coverage.payer_id == acme)))
    other_cov = next(
        c
        for c in session.scalars(select(Coverage).order_by(Coverage.id))
        if c.patient_id not in patients_with_acme
    )
    other = make_claim(session, world, "PCN-OTHERPAYER", [("99213", 10000)], coverage=other_cov)
    _refused(session, biller, item, other.public_id, "same_payer")
    # A void claim.
    void = make_claim(session, world, "PCN-VOID1", [("99213", 10000)], claim_state=ClaimState.VOIDED)
    _refused(session, biller, item, void.public_id, "not_void")
    # Another patient than the 835 names (same payer): a second ACME patient, if the seed has one.
    other_patient_cov = next(
        (
            c
            for c in session.scalars(select(Coverage).where(Coverage.payer_id == acme).order_by(Coverage.id))
            if c.patient_id != world.single.patient_id
        ),
        None,
    )
    if other_patient_cov is not None:
        wrong = make_claim(session, world, "PCN-OTHERPT", [("99213", 10000)], coverage=other_patient_cov)
        if wrong.patient.last_name != world.single.patient.last_name:
            _refused(session, biller, item, wrong.public_id, "same_patient")
    # A claim already paid by this payer: a possible duplicate.
    paid = make_claim(session, world, "PCN-PAID1", [("99213", 10000), ("85025", 5000)])
    assert (
        receive_and_post(factory, build_835([_clp("PCN-PAID1", paid)], trace="PAID-1", control=7)).status
        == "posted"
    )
    session.rollback()
    body = _refused(session, biller, item, paid.public_id, "possible_duplicate")
    assert "duplicate" in body["errors"][0]["message"]
    # No such claim.
    _refused(session, biller, item, "NO-SUCH-CLAIM", "exists")


def test_apply_to_a_claim_of_a_patient_the_835_does_not_name(session, world, factory, api_client):
    claim, item, _ = _post_unmatched(session, world, factory, named=False)  # NM1*QC: SYNTHETIC PATIENT
    _refused(session, api_client("biller"), item, claim.public_id, "same_patient")


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def test_return_to_payer_by_check_with_a_refund_letter(session, world, factory, api_client):
    _, item, payment = _post_unmatched(session, world, factory)
    biller = api_client("biller")
    cash_before = balance(session, CASH)
    too_much = biller.post(
        f"/api/v1/unmatched-payments/{item.public_id}/refund",
        json={"amount": "90.01", "method": "check"},
        headers=_key(),
    )
    assert too_much.status_code == 422 and too_much.get_json()["errors"][0]["field"] == "amount"
    # Above a biller's 100.00 limit? 90.00 is not: posted at once.
    headers = _key()
    answer = biller.post(
        f"/api/v1/unmatched-payments/{item.public_id}/refund",
        json={"method": "check", "reference": "CHK-5001"},
        headers=headers,
    )
    assert answer.status_code == 201, answer.get_json()
    refund = answer.get_json()
    assert refund["state"] == "issued" and refund["amount"] == "90.00" and refund["kind"] == "payer"
    assert "UNM-1" in refund["letter"] and "CHK-5001" in refund["letter"] and "90.00" in refund["letter"]
    session.expire_all()
    assert _unapplied(session, payment) == 0
    assert balance(session, CASH) == cash_before - 9000
    assert session.get(WorkItem, item.id).status is WorkItemStatus.RESOLVED
    replay = biller.post(
        f"/api/v1/unmatched-payments/{item.public_id}/refund",
        json={"method": "check", "reference": "CHK-5001"},
        headers=headers,
    )
    assert replay.status_code in (200, 201) and replay.get_json()["id"] == refund["id"]
    assert (
        session.scalar(select(Refund).where(Refund.claim_payment_id == payment.id)).state
        is RefundState.ISSUED
    )
    assert len(session.scalars(select(Refund).where(Refund.claim_payment_id == payment.id)).all()) == 1


def test_payer_offset_then_the_payers_plb_links_to_it(session, world, factory, api_client):
    _, item, payment = _post_unmatched(session, world, factory)
    biller = api_client("biller")
    answer = biller.post(
        f"/api/v1/unmatched-payments/{item.public_id}/refund", json={"method": "payer_offset"}, headers=_key()
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["state"] == "awaiting_offset"
    acme = world.payers["DEMOACME"]
    session.expire_all()
    assert _unapplied(session, payment) == 0
    assert balance(session, OFFSET, payer_id=acme) == -9000
    # The payer's next 835 pays another claim 100.00 and takes the 90.00 back: PLB WO 90.00, BPR02 10.00.
    other = make_claim(session, world, "PCN-NEXT1", [("99213", 10000)])
    lcn = other.service_lines[0].line_control_number
    clp = Clp("PCN-NEXT1", "1", 10000, 10000, 0, lines=[Svc("99213", 10000, 10000, [], lcn=lcn)])
    assert (
        receive_and_post(factory, build_835([clp], trace="NEXT-1", control=9, plb=[("WO", 9000)])).status
        == "posted"
    )
    session.rollback()
    refund = session.scalar(select(Refund).where(Refund.claim_payment_id == payment.id))
    assert refund.state is RefundState.OFFSET and refund.provider_adjustment_id is not None
    assert balance(session, OFFSET, payer_id=acme) == 0
    plb_item = session.scalar(
        select(WorkItem).where(WorkItem.dedupe_key == f"plb:{refund.provider_adjustment_id}")
    )
    assert plb_item.status is WorkItemStatus.RESOLVED


def _patient_credit(session, api_client, patient: Patient, amount: str) -> None:
    biller = api_client("biller")
    paid = biller.post(
        f"/api/v1/patients/{patient.public_id}/payments",
        json={"amount": amount, "method": "cash", "source": "front_desk", "allow_credit": True},
        headers=_key(),
    )
    assert paid.status_code == 201, paid.get_json()
    session.expire_all()


def test_patient_credit_refund_by_check_and_card_then_the_item_closes(session, world, factory, api_client):
    patient = world.single.patient
    owed = balance(session, AR_PT, patient_id=patient.id)
    _patient_credit(session, api_client, patient, f"{(owed + 5000) / 100:.2f}")
    credit_id = f"patient.{patient.public_id}"
    biller = api_client("biller")
    listed = biller.get("/api/v1/credit-balances").get_json()["items"]
    credit = next(c for c in listed if c["id"] == credit_id)
    assert credit["amount"] == "50.00" and credit["origin"][0]["kind"] == "patient_payment"
    from claims_server.workqueue.services import sweep

    sweep(session, as_of=date.today())
    session.commit()
    item = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == f"credit_balance:{credit_id}"))
    assert item is not None and item.queue is WorkQueue.CREDIT_BALANCE and item.patient_id == patient.id
    before = account_totals(session)
    over = biller.post(
        f"/api/v1/credit-balances/{credit_id}/refund",
        json={"amount": "50.01", "method": "check"},
        headers=_key(),
    )
    assert over.status_code == 422 and over.get_json()["errors"][0] == {
        "field": "amount",
        "rule": "at_most_credit",
        "message": "is more than the credit of 50.00",
    }
    wrong = biller.post(
        f"/api/v1/credit-balances/{credit_id}/refund",
        json={"amount": "1.00", "method": "payer_offset"},
        headers=_key(),
    )
    assert wrong.status_code == 422 and wrong.get_json()["errors"][0]["field"] == "method"
    session.expire_all()
    assert account_totals(session) == before
    cash = balance(session, CASH, patient_id=patient.id)
    check = biller.post(
        f"/api/v1/credit-balances/{credit_id}/refund",
        json={"amount": "30.00", "method": "check", "reference": "CHK-1"},
        headers=_key(),
    )
    assert check.status_code == 201 and check.get_json()["state"] == "issued"
    session.expire_all()
    assert balance(session, CREDIT, patient_id=patient.id) == -2000
    assert balance(session, CASH, patient_id=patient.id) == cash - 3000
    card = biller.post(
        f"/api/v1/credit-balances/{credit_id}/refund",
        json={"amount": "20.00", "method": "card_reversal", "reference": "REV-9"},
        headers=_key(),
    )
    assert card.status_code == 201
    session.expire_all()
    assert balance(session, CREDIT, patient_id=patient.id) == 0
    assert balance(session, CASH, patient_id=patient.id) == cash - 5000
    assert session.get(WorkItem, item.id).status is WorkItemStatus.RESOLVED
    assert biller.get(f"/api/v1/credit-balances/{credit_id}").status_code == 404


def test_over_limit_refund_waits_for_approval_then_posts(session, world, factory, api_client):
    patient = world.single.patient
    owed = balance(session, AR_PT, patient_id=patient.id)
    _patient_credit(session, api_client, patient, f"{(owed + 15000) / 100:.2f}")
    credit_id = f"patient.{patient.public_id}"
    biller = api_client("biller")
    before = account_totals(session)
    answer = biller.post(
        f"/api/v1/credit-balances/{credit_id}/refund",
        json={"amount": "150.00", "method": "check"},
        headers=_key(),
    )
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert body["state"] == "pending_approval" and body["approval_request"] and body["journal_entry"] is None
    session.expire_all()
    assert account_totals(session) == before  # nothing posted
    # The pending refund reserves the credit: nothing more can be refunded meanwhile.
    more = biller.post(
        f"/api/v1/credit-balances/{credit_id}/refund",
        json={"amount": "1.00", "method": "check"},
        headers=_key(),
    )
    assert more.status_code == 422 and more.get_json()["errors"][0]["field"] == "amount"
    supervisor = api_client("billing_supervisor")
    decided = supervisor.post(
        f"/api/v1/approvals/{body['approval_request']}/decision", json={"decision": "approve"}
    )
    assert decided.status_code == 200, decided.get_json()
    session.expire_all()
    assert balance(session, CREDIT, patient_id=patient.id) == 0
    refund = biller.get(f"/api/v1/refunds/{body['id']}").get_json()
    assert refund["state"] == "issued" and refund["journal_entry"]


def test_transfer_a_credit_to_another_open_balance_of_the_patient(session, world, factory, api_client):
    patient = world.single.patient
    # A claim the patient owes 10.00 on (PR-2 of a matched 835), then a 25.00 credit.
    claim = make_claim(session, world, "PCN-OWE1", [("99213", 10000), ("85025", 5000)])
    assert (
        receive_and_post(factory, build_835([_clp("PCN-OWE1", claim)], trace="OWE-1", control=3)).status
        == "posted"
    )
    session.rollback()
    assert balance(session, AR_PT, claim_id=claim.id) == 1000
    owed = balance(session, AR_PT, patient_id=patient.id)
    _patient_credit(session, api_client, patient, f"{(owed + 2500) / 100:.2f}")
    # The payment paid every open line, PCN-OWE1 included; a new open balance is needed: a fresh claim's PR.
    claim2 = make_claim(session, world, "PCN-OWE2", [("99213", 10000), ("85025", 5000)])
    assert (
        receive_and_post(factory, build_835([_clp("PCN-OWE2", claim2)], trace="OWE-2", control=4)).status
        == "posted"
    )
    session.rollback()
    assert balance(session, AR_PT, claim_id=claim2.id) == 1000
    credit_id = f"patient.{patient.public_id}"
    biller = api_client("biller")
    before = account_totals(session)
    too_much = biller.post(
        f"/api/v1/credit-balances/{credit_id}/transfer",
        json={"amount": "10.01", "claim_id": claim2.public_id},
        headers=_key(),
    )
    assert too_much.status_code == 422 and too_much.get_json()["errors"][0]["field"] == "amount"
    over_credit = biller.post(
        f"/api/v1/credit-balances/{credit_id}/transfer",
        json={"amount": "25.01", "claim_id": claim2.public_id},
        headers=_key(),
    )
    assert over_credit.status_code == 422 and over_credit.get_json()["errors"][0]["rule"] == "at_most_credit"
    acme = world.payers["DEMOACME"]
    other_cov = next(
        c
        for c in session.scalars(select(Coverage).order_by(Coverage.id))
        if c.patient_id != patient.id and c.payer_id == acme
    )
    stranger = make_claim(session, world, "PCN-STRANGER", [("99213", 10000)], coverage=other_cov)
    other_patient = biller.post(
        f"/api/v1/credit-balances/{credit_id}/transfer",
        json={"amount": "5.00", "claim_id": stranger.public_id},
        headers=_key(),
    )
    assert other_patient.status_code == 422
    assert other_patient.get_json()["errors"][0]["field"] == "claim"
    assert other_patient.get_json()["errors"][0]["rule"] == "same_patient"
    session.expire_all()
    assert account_totals(session) == before
    headers = _key()
    done = biller.post(
        f"/api/v1/credit-balances/{credit_id}/transfer",
        json={"amount": "10.00", "claim_id": claim2.public_id},
        headers=headers,
    )
    assert done.status_code == 201, done.get_json()
    session.expire_all()
    assert balance(session, AR_PT, claim_id=claim2.id) == 0
    assert balance(session, CREDIT, patient_id=patient.id) == -1500
    replay = biller.post(
        f"/api/v1/credit-balances/{credit_id}/transfer",
        json={"amount": "10.00", "claim_id": claim2.public_id},
        headers=headers,
    )
    assert replay.status_code in (200, 201)
    session.expire_all()
    assert balance(session, CREDIT, patient_id=patient.id) == -1500


def test_hold_snoozes_the_credit_with_a_note(session, world, factory, api_client):
    patient = world.single.patient
    owed = balance(session, AR_PT, patient_id=patient.id)
    _patient_credit(session, api_client, patient, f"{(owed + 700) / 100:.2f}")
    credit_id = f"patient.{patient.public_id}"
    biller = api_client("biller")
    past = biller.post(
        f"/api/v1/credit-balances/{credit_id}/hold",
        json={"until": date.today().isoformat(), "note": "patient asked to keep it"},
    )
    assert past.status_code == 422 and past.get_json()["errors"][0]["field"] == "until"
    until = (date.today() + timedelta(days=30)).isoformat()
    held = biller.post(
        f"/api/v1/credit-balances/{credit_id}/hold", json={"until": until, "note": "patient asked to keep it"}
    )
    assert held.status_code == 200, held.get_json()
    assert held.get_json()["status"] == "snoozed" and held.get_json()["snoozed_until"] == until


@pytest.mark.parametrize("role", ["auditor"])
def test_auditors_read_but_do_not_act(session, world, factory, api_client, role):
    _, item, _ = _post_unmatched(session, world, factory)
    auditor = api_client(role)
    assert auditor.get("/api/v1/unmatched-payments").status_code == 200
    assert auditor.get("/api/v1/credit-balances").status_code == 200
    assert auditor.get("/api/v1/refunds").status_code == 200
    refused = auditor.post(
        f"/api/v1/unmatched-payments/{item.public_id}/refund", json={"method": "check"}, headers=_key()
    )
    assert refused.status_code == 403


def test_the_cli_lists_and_applies(session, world, factory, database_url, monkeypatch):
    import json

    from click.testing import CliRunner

    from claims_server.cli import main

    claim, item, payment = _post_unmatched(session, world, factory)
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    listed = runner.invoke(main, ["credits", "unmatched", "--json"])
    assert listed.exit_code == 0, listed.output
    row = next(r for r in json.loads(listed.output) if r["id"] == item.public_id)
    assert row["paid"] == "90.00" and "patient_name" not in row
    credits_listed = runner.invoke(main, ["credits", "list", "--json"])
    assert f"payer.{payment.remittance.public_id}.{payment.position}" in credits_listed.output
    refused = runner.invoke(main, ["credits", "apply", item.public_id, "NO-SUCH", "--by", "cli-biller"])
    assert refused.exit_code == 1
    done = runner.invoke(
        main, ["credits", "apply", item.public_id, claim.patient_control_number, "--by", "cli-biller"]
    )
    assert done.exit_code == 0, done.output
    session.expire_all()
    assert session.get(ClaimPayment, payment.id).decided_by == "cli-biller"
    assert balance(session, AR_INS, claim_id=claim.id) == 0


def _negative_patient_balance(session, world, factory) -> Claim:
    """A claim the patient owes 10.00 on (PR-2), paid 15.00 at the desk toward it: A/R patient -5.00."""
    from claims_server.ledger.services import Leg, post_entry
    from claims_server.security.principal import acting_as, system_principal

    claim = make_claim(session, world, "PCN-NEG1", [("99213", 10000), ("85025", 5000)])
    assert (
        receive_and_post(factory, build_835([_clp("PCN-NEG1", claim)], trace="NEG-1", control=11)).status
        == "posted"
    )
    session.rollback()
    line = claim.service_lines[0]
    with acting_as(system_principal("test:credits")):
        post_entry(
            session,
            event_type="patient_payment",
            idempotency_key=f"test:neg:{uuid.uuid4().hex}",
            postings=[
                Leg(AccountCode.CASH_CLEARING.value, 1500, patient_id=claim.patient_id),
                Leg(AccountCode.AR_PATIENT.value, -1500, claim.id, line.id, None, claim.patient_id),
            ],
            effective_date=date.today(),
        )
        session.commit()
    assert balance(session, AR_PT, claim_id=claim.id) == -500
    return claim


def test_a_negative_patient_balance_is_refunded_by_card_reversal(session, world, factory, api_client):
    claim = _negative_patient_balance(session, world, factory)
    credit_id = f"claim.{claim.public_id}"
    biller = api_client("biller")
    credit = biller.get(f"/api/v1/credit-balances/{credit_id}").get_json()
    assert credit["amount"] == "5.00" and credit["origin"][0]["event_type"] == "patient_payment"
    cash = balance(session, CASH, patient_id=claim.patient_id)
    done = biller.post(
        f"/api/v1/credit-balances/{credit_id}/refund",
        json={"amount": "5.00", "method": "card_reversal", "reference": "REV-1"},
        headers=_key(),
    )
    assert done.status_code == 201, done.get_json()
    session.expire_all()
    assert balance(session, AR_PT, claim_id=claim.id) == 0
    assert balance(session, CASH, patient_id=claim.patient_id) == cash - 500


def test_a_negative_patient_balance_is_transferred_to_another_claim(session, world, factory, api_client):
    claim = _negative_patient_balance(session, world, factory)
    other = make_claim(session, world, "PCN-NEG2", [("99213", 10000), ("85025", 5000)])
    assert (
        receive_and_post(factory, build_835([_clp("PCN-NEG2", other)], trace="NEG-2", control=12)).status
        == "posted"
    )
    session.rollback()
    biller = api_client("biller")
    done = biller.post(
        f"/api/v1/credit-balances/claim.{claim.public_id}/transfer",
        json={"amount": "5.00", "claim_id": other.public_id},
        headers=_key(),
    )
    assert done.status_code == 201, done.get_json()
    session.expire_all()
    assert balance(session, AR_PT, claim_id=claim.id) == 0
    assert balance(session, AR_PT, claim_id=other.id) == 500
    same = biller.post(
        f"/api/v1/credit-balances/claim.{other.public_id}/transfer",
        json={"amount": "1.00", "claim_id": other.public_id},
        headers=_key(),
    )
    assert same.status_code == 422 and same.get_json()["errors"][0]["field"] == "amount"  # no credit on it


def test_a_payer_refund_above_the_limit_waits_and_a_decline_frees_it(
    session, world, factory, api_client, app, monkeypatch
):
    import dataclasses

    from claims_server.app import state

    settings = state(app).settings
    monkeypatch.setattr(state(app), "settings", dataclasses.replace(settings, REFUND_BILLER_LIMIT_CENTS=5000))
    # The biller's refund limit is 50.00 here: the 90.00 return waits for a supervisor.
    _, item, payment = _post_unmatched(session, world, factory)
    biller = api_client("biller")
    before = account_totals(session)
    answer = biller.post(
        f"/api/v1/unmatched-payments/{item.public_id}/refund", json={"method": "check"}, headers=_key()
    )
    assert answer.status_code == 202, answer.get_json()
    session.expire_all()
    assert account_totals(session) == before and _unapplied(session, payment) == -9000
    listed = biller.get(f"/api/v1/credit-balances/payer.{payment.remittance.public_id}.{payment.position}")
    assert listed.status_code == 404  # all of it reserved by the pending refund
    supervisor = api_client("billing_supervisor")
    declined = supervisor.post(
        f"/api/v1/approvals/{answer.get_json()['approval_request']}/decision",
        json={"decision": "decline", "note": "apply it to the right claim instead"},
    )
    assert declined.status_code == 200, declined.get_json()
    assert biller.get(f"/api/v1/refunds/{answer.get_json()['id']}").get_json()["state"] == "declined"
    credit = biller.get(f"/api/v1/credit-balances/payer.{payment.remittance.public_id}.{payment.position}")
    assert credit.status_code == 200 and credit.get_json()["amount"] == "90.00"
    session.expire_all()
    assert account_totals(session) == before


def test_a_credit_that_comes_back_reopens_its_item(session, world, factory, api_client):
    from claims_server.workqueue.services import sweep

    patient = world.single.patient
    owed = balance(session, AR_PT, patient_id=patient.id)
    _patient_credit(session, api_client, patient, f"{(owed + 500) / 100:.2f}")
    credit_id = f"patient.{patient.public_id}"
    assert sweep(session, as_of=date.today()).opened["credit_balance"] >= 1
    session.commit()
    biller = api_client("biller")
    refunded = biller.post(
        f"/api/v1/credit-balances/{credit_id}/refund",
        json={"amount": "5.00", "method": "check"},
        headers=_key(),
    )
    assert refunded.status_code == 201
    session.expire_all()
    item = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == f"credit_balance:{credit_id}"))
    assert item.status is WorkItemStatus.RESOLVED
    assert sweep(session, as_of=date.today()).opened["credit_balance"] == 0  # idempotent
    _patient_credit(session, api_client, patient, "3.00")  # the patient overpays again
    sweep(session, as_of=date.today())
    session.commit()
    session.expire_all()
    assert session.get(WorkItem, item.id).status is WorkItemStatus.OPEN
    assert sweep(session, as_of=date.today()).opened["credit_balance"] == 0
